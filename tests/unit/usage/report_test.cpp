// Usage read back: periods, CSV, and the monthly invoice's proration by plan.
#include "liftoff/usage/report.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "liftoff/core/time.hpp"

namespace liftoff::usage {
namespace {
using namespace std::chrono_literals;

db::Timestamp at(std::string_view text) {
  return *core::parse_rfc3339(text);
}

const db::Uuid kOrg = *db::Uuid::parse("0190f5e0-0000-7000-8000-000000000001");

TEST(Usage, MonthsParseAndRoundTrip) {
  auto december = parse_month("2026-12");
  ASSERT_TRUE(december);
  EXPECT_EQ(december->start, at("2026-12-01T00:00:00Z"));
  EXPECT_EQ(december->end, at("2027-01-01T00:00:00Z"));
  auto february = parse_month("2028-02");  // a leap year
  ASSERT_TRUE(february);
  EXPECT_EQ(february->end - february->start, std::chrono::days(29));
  EXPECT_EQ(month_of(at("2026-12-31T23:59:59Z")).name, "2026-12");
  for (auto bad : {"2026-13", "2026-00", "2026-1", "26-12", "2026/12", "1969-12", "2026-1x", ""})
    EXPECT_FALSE(parse_month(bad)) << bad;
}

TEST(Usage, PeriodsAreBoundedByTheirGranularity) {
  auto from = at("2026-12-01T00:00:00Z");
  EXPECT_TRUE(check_period(from, from + std::chrono::days(31), Granularity::hour));
  EXPECT_FALSE(check_period(from, from + std::chrono::days(32), Granularity::hour));
  EXPECT_TRUE(check_period(from, from + std::chrono::days(365), Granularity::day));
  auto backwards = check_period(from, from, Granularity::day);
  ASSERT_FALSE(backwards);
  EXPECT_EQ(backwards.error().code, Errc::validation_failed);
  EXPECT_EQ(parse_granularity("week"), std::nullopt);
  EXPECT_EQ(parse_granularity("hour"), Granularity::hour);
}

TEST(Usage, CsvHasAHeaderAndEmptyCellsForUnmeasuredGauges) {
  std::vector<UsageRow> rows{{at("2026-12-01T00:00:00Z"), 10, 2, 1, 5, 700},
                             {at("2026-12-02T00:00:00Z"), 3, 0, 0, std::nullopt, std::nullopt}};
  EXPECT_EQ(usage_csv(rows),
            "start,api_requests,events,jobs,records,storage_bytes\r\n"
            "2026-12-01T00:00:00.000Z,10,2,1,5,700\r\n"
            "2026-12-02T00:00:00.000Z,3,0,0,,\r\n");
}

InvoiceFacts facts(std::string plan, std::vector<PlanChange> changes,
                   db::Timestamp created = at("2025-01-01T00:00:00Z")) {
  return {kOrg,
          "Acme <Corp>",
          created,
          std::move(plan),
          std::move(changes),
          {at("2026-11-01T00:00:00Z"), 1234, 56, 7, 890, 12345},
          100'000,
          1'000'000};
}

TEST(Usage, AWholeMonthOnOnePlanCostsItsPrice) {
  auto month = *parse_month("2026-11");
  auto invoice = make_invoice(facts("pro", {}), month, at("2026-12-02T00:00:00Z"));
  EXPECT_TRUE(invoice.final);
  ASSERT_EQ(invoice.lines.size(), 6u);  // the subscription, five usage lines
  EXPECT_EQ(invoice.lines[0].kind, "subscription");
  EXPECT_EQ(invoice.lines[0].item, "pro");
  EXPECT_EQ(invoice.lines[0].amount_cents, 9900);
  EXPECT_EQ(invoice.lines[1].item, "api_requests");
  EXPECT_EQ(invoice.lines[1].quantity, 1234);
  EXPECT_EQ(invoice.lines[4].quantity, 890);
  EXPECT_EQ(invoice.lines[4].included, 100'000);
  EXPECT_EQ(invoice.total_cents, 9900);
  EXPECT_EQ(invoice.number, kOrg.to_string() + "-2026-11");
}

TEST(Usage, PlanChangesSplitTheMonthInProportion) {
  auto month = *parse_month("2026-11");  // 30 days
  // Starter for the first 10 days, pro for the next 10, starter again (a later change, after the
  // month, says what the plan was before it).
  std::vector<PlanChange> changes{{at("2026-11-11T00:00:00Z"), "starter", "pro"},
                                  {at("2026-11-21T00:00:00Z"), "pro", "starter"},
                                  {at("2026-12-15T00:00:00Z"), "starter", "enterprise"}};
  auto invoice = make_invoice(facts("enterprise", changes), month, at("2026-12-20T00:00:00Z"));
  ASSERT_GE(invoice.lines.size(), 3u);
  EXPECT_EQ(invoice.lines[0].item, "starter");
  EXPECT_EQ(invoice.lines[0].amount_cents, 967);  // 2900 / 3, rounded
  EXPECT_EQ(invoice.lines[1].item, "pro");
  EXPECT_EQ(invoice.lines[1].amount_cents, 3300);
  EXPECT_EQ(invoice.lines[2].item, "starter");
  EXPECT_EQ(invoice.lines[2].amount_cents, 967);
  EXPECT_EQ(invoice.lines[3].kind, "usage");
  EXPECT_EQ(invoice.total_cents, 967 + 3300 + 967);
}

TEST(Usage, AnOrgCreatedInTheMonthPaysFromItsCreation) {
  auto month = *parse_month("2026-11");
  auto invoice =
      make_invoice(facts("pro", {}, at("2026-11-16T00:00:00Z")), month, at("2026-11-20T00:00:00Z"));
  EXPECT_FALSE(invoice.final);
  EXPECT_EQ(invoice.period_start, at("2026-11-16T00:00:00Z"));
  EXPECT_EQ(invoice.lines[0].amount_cents, 4950);  // 15 of 30 days
  auto json = invoice_json(invoice);
  EXPECT_EQ(json.at("status"), "open");
  EXPECT_EQ(json.at("total_cents"), 4950);
}

TEST(Usage, TheHtmlInvoiceEscapesWhatTheOrgNamed) {
  auto invoice =
      make_invoice(facts("pro", {}), *parse_month("2026-11"), at("2026-12-02T00:00:00Z"));
  auto html = invoice_html(invoice);
  EXPECT_NE(html.find("Acme &lt;Corp&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<Corp>"), std::string::npos);
  EXPECT_NE(html.find("$99.00"), std::string::npos);
}

}  // namespace
}  // namespace liftoff::usage
