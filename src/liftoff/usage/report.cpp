#include "liftoff/usage/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <cmath>

#include "liftoff/audit/audit.hpp"
#include "liftoff/core/text.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/db/statement.hpp"
#include "liftoff/plans/plans.hpp"

namespace liftoff::usage {
namespace json = boost::json;
namespace asio = boost::asio;
using db::Statement;
using std::chrono::days;
using std::chrono::duration_cast;
using std::chrono::microseconds;

namespace {
constexpr Statement kReadUsage{
    db::Plane::tenant, "usage.read",
    "SELECT date_trunc($4, hour), sum(api_requests)::int8, sum(events)::int8, sum(jobs)::int8, "
    "max(records), max(storage_bytes) FROM usage_hourly "
    "WHERE org_id = $1 AND hour >= $2 AND hour < $3 GROUP BY 1 ORDER BY 1"};
constexpr Statement kRequestsPerOrg{
    db::Plane::tenant,
    "usage.requests_per_org",
    "SELECT org_id, sum(api_requests)::int8 FROM usage_hourly WHERE hour >= $1 "
    "GROUP BY org_id HAVING sum(api_requests) > 0",
    true,
    false,
    true};
// The plan an org.plan_changed event's before or after names ("" when it names none).
std::string plan_named(const std::optional<std::string>& text) {
  if (!text) return "";
  boost::system::error_code ec;
  auto value = json::parse(*text, ec);
  if (ec || !value.is_object()) return "";
  const auto* plan = value.as_object().if_contains("plan");
  return plan && plan->is_string() ? std::string(plan->get_string()) : "";
}

std::string csv_field(const std::optional<std::int64_t>& value) {
  return value ? std::to_string(*value) : "";
}
}  // namespace

std::optional<Granularity> parse_granularity(std::string_view text) {
  if (text == "hour") return Granularity::hour;
  if (text == "day") return Granularity::day;
  if (text == "month") return Granularity::month;
  return std::nullopt;
}

std::string_view to_string(Granularity granularity) {
  switch (granularity) {
    case Granularity::hour:
      return "hour";
    case Granularity::day:
      return "day";
    case Granularity::month:
      return "month";
  }
  return "day";
}

Result<void> check_period(db::Timestamp from, db::Timestamp to, Granularity granularity) {
  if (to <= from)
    return Error{Errc::validation_failed, "invalid period", {{"to", "must be after from"}}};
  auto longest = granularity == Granularity::hour  ? days(31)
                 : granularity == Granularity::day ? days(400)
                                                   : days(3653);
  if (to - from > longest) {
    return Error{Errc::validation_failed,
                 "the period is too long for its granularity",
                 {{"to", fmt::format("at most {} days after from with granularity={}",
                                     longest.count(), to_string(granularity))}}};
  }
  return {};
}

asio::awaitable<Result<std::vector<UsageRow>>> read_usage(db::Database& database,
                                                          const db::Scope& scope,
                                                          db::Timestamp from, db::Timestamp to,
                                                          Granularity granularity) {
  db::Params params(scope.org(), from, to, to_string(granularity));
  auto rows = co_await database.query(db::Intent::read, scope, kReadUsage, params);
  if (!rows) co_return rows.error();
  std::vector<UsageRow> out;
  out.reserve(static_cast<std::size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) {
    auto row = (*rows)[i];
    out.push_back({row.get<db::Timestamp>(0), row.get<std::int64_t>(1), row.get<std::int64_t>(2),
                   row.get<std::int64_t>(3), row.get<std::optional<std::int64_t>>(4),
                   row.get<std::optional<std::int64_t>>(5)});
  }
  co_return out;
}

json::object usage_json(const UsageRow& row) {
  json::object o{{"start", core::format_rfc3339(row.start)},
                 {"api_requests", row.api_requests},
                 {"events", row.events},
                 {"jobs", row.jobs}};
  o["records"] = row.records ? json::value(*row.records) : json::value(nullptr);
  o["storage_bytes"] = row.storage_bytes ? json::value(*row.storage_bytes) : json::value(nullptr);
  return o;
}

std::string usage_csv(const std::vector<UsageRow>& rows) {
  std::string out = "start,api_requests,events,jobs,records,storage_bytes\r\n";
  for (const auto& row : rows) {
    out += fmt::format("{},{},{},{},{},{}\r\n", core::format_rfc3339(row.start), row.api_requests,
                       row.events, row.jobs, csv_field(row.records), csv_field(row.storage_bytes));
  }
  return out;
}

asio::awaitable<Result<std::vector<PlanChange>>> plan_changes(db::Database& database,
                                                              const db::Scope& scope,
                                                              db::Timestamp since) {
  // The audit log, asked as any reader asks it: every change committed so far sealed, then newest
  // first, a page at a time.
  auto sealed = co_await audit::seal_committed(database, scope);
  if (!sealed) co_return sealed.error();
  audit::Filter filter;
  filter.action = "org.plan_changed";
  filter.since = since;
  filter.limit = 500;
  std::vector<PlanChange> out;
  for (;;) {
    auto page = co_await audit::list(database, scope, filter);
    if (!page) co_return page.error();
    for (const auto& event : *page) {
      out.push_back(
          {event.occurred_at, plan_named(event.change.before), plan_named(event.change.after)});
    }
    if (static_cast<std::int32_t>(page->size()) < filter.limit) break;
    filter.before_seq = page->back().seq;
  }
  std::reverse(out.begin(), out.end());  // in the order they happened
  co_return out;
}

std::optional<Month> parse_month(std::string_view text) {
  // YYYY-MM, 1970-01 to 9999-12.
  if (text.size() != 7 || text[4] != '-') return std::nullopt;
  for (std::size_t i : {0, 1, 2, 3, 5, 6})
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  int year = std::stoi(std::string(text.substr(0, 4)));
  unsigned month = static_cast<unsigned>(std::stoi(std::string(text.substr(5, 2))));
  if (year < 1970 || month < 1 || month > 12) return std::nullopt;
  std::chrono::year_month_day first{std::chrono::year(year), std::chrono::month(month),
                                    std::chrono::day(1)};
  std::chrono::year_month_day next = first + std::chrono::months(1);
  auto at = [](std::chrono::sys_days day) {
    return db::Timestamp{duration_cast<microseconds>(day.time_since_epoch())};
  };
  return Month{at(first), at(next), std::string(text)};
}

Month month_of(db::Timestamp t) {
  std::chrono::year_month_day date{std::chrono::floor<days>(t)};
  return *parse_month(fmt::format("{:04d}-{:02d}", static_cast<int>(date.year()),
                                  static_cast<unsigned>(date.month())));
}

Invoice make_invoice(const InvoiceFacts& facts, const Month& month, db::Timestamp now) {
  Invoice invoice;
  invoice.number = facts.org_id.to_string() + "-" + month.name;
  invoice.org_id = facts.org_id;
  invoice.org_name = facts.org_name;
  invoice.month = month;
  invoice.period_start = std::clamp(facts.org_created, month.start, month.end);
  invoice.final = now >= month.end;

  // The plan at the period's start: the one the first later change left, else today's.
  const auto& changes = facts.changes;
  std::string plan = facts.current_plan;
  for (const auto& change : changes) {
    if (change.at > invoice.period_start) {
      plan = change.from;
      break;
    }
  }
  const double month_us = static_cast<double>((month.end - month.start).count());
  auto from = invoice.period_start;
  auto subscription = [&](const std::string& name, db::Timestamp to) {
    if (to <= from) return;
    const auto* found = plans::find_plan(name);
    std::int64_t price = found ? found->monthly_price_cents : 0;
    auto amount = static_cast<std::int64_t>(std::llround(
        static_cast<double>(price) * static_cast<double>((to - from).count()) / month_us));
    invoice.lines.push_back(
        {"subscription",
         fmt::format("{} plan, {} to {}", name, core::format_rfc3339(from).substr(0, 10),
                     core::format_rfc3339(to - microseconds(1)).substr(0, 10)),
         name, 1, std::nullopt, from, to, amount});
  };
  for (const auto& change : changes) {
    if (change.at <= from) continue;
    if (change.at >= month.end) break;
    subscription(plan, change.at);
    from = change.at;
    plan = change.to;
  }
  subscription(plan, month.end);

  auto usage = [&](std::string_view item, std::string_view description, std::int64_t quantity,
                   std::optional<std::int64_t> included) {
    invoice.lines.push_back({"usage", std::string(description), std::string(item), quantity,
                             included, std::nullopt, std::nullopt, 0});
  };
  usage("api_requests", "API requests", facts.usage.api_requests, std::nullopt);
  usage("events", "Realtime events delivered", facts.usage.events, std::nullopt);
  usage("jobs", "Background jobs", facts.usage.jobs, std::nullopt);
  usage("records", "Records stored (most in the month)", facts.usage.records.value_or(0),
        facts.records_limit);
  usage("storage_bytes", "Storage in bytes (most in the month)",
        facts.usage.storage_bytes.value_or(0), facts.storage_limit);
  for (const auto& line : invoice.lines) invoice.total_cents += line.amount_cents;
  return invoice;
}

json::object invoice_json(const Invoice& invoice) {
  json::array lines;
  for (const auto& line : invoice.lines) {
    json::object o{{"kind", line.kind},
                   {"item", line.item},
                   {"description", line.description},
                   {"quantity", line.quantity},
                   {"amount_cents", line.amount_cents}};
    if (line.included) o["included"] = *line.included;
    if (line.from) o["from"] = core::format_rfc3339(*line.from);
    if (line.to) o["to"] = core::format_rfc3339(*line.to);
    lines.push_back(std::move(o));
  }
  return {{"number", invoice.number},
          {"org_id", invoice.org_id.to_string()},
          {"org_name", invoice.org_name},
          {"month", invoice.month.name},
          {"period_start", core::format_rfc3339(invoice.period_start)},
          {"period_end", core::format_rfc3339(invoice.month.end)},
          {"status", invoice.final ? "final" : "open"},
          {"currency", "usd"},
          {"lines", std::move(lines)},
          {"total_cents", invoice.total_cents}};
}

std::string invoice_html(const Invoice& invoice) {
  auto dollars = [](std::int64_t cents) {
    return fmt::format("${}.{:02d}", cents / 100, std::abs(cents % 100));
  };
  std::string rows;
  for (const auto& line : invoice.lines) {
    std::string quantity = std::to_string(line.quantity);
    if (line.included) quantity += " of " + std::to_string(*line.included) + " included";
    rows += fmt::format("<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
                        core::escape_html(line.description), core::escape_html(quantity),
                        dollars(line.amount_cents));
  }
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>Invoice {number}</title><style>body{{font-family:sans-serif;margin:2em}}"
      "table{{border-collapse:collapse}}td,th{{padding:.3em 1em;border-bottom:1px solid #ddd}}"
      ".n{{text-align:right}}</style></head><body>\n"
      "<h1>Invoice {number}</h1>\n<p>{org}<br>{month} ({status}), from {start} to {end}</p>\n"
      "<table><thead><tr><th>Item</th><th class=\"n\">Quantity</th><th class=\"n\">Amount</th>"
      "</tr></thead><tbody>\n{rows}</tbody><tfoot><tr><th>Total (USD)</th><td></td>"
      "<td class=\"n\">{total}</td></tr></tfoot></table>\n</body></html>\n",
      fmt::arg("number", core::escape_html(invoice.number)),
      fmt::arg("org", core::escape_html(invoice.org_name)), fmt::arg("month", invoice.month.name),
      fmt::arg("status", invoice.final ? "final" : "open, to date"),
      fmt::arg("start", core::format_rfc3339(invoice.period_start)),
      fmt::arg("end", core::format_rfc3339(invoice.month.end)), fmt::arg("rows", rows),
      fmt::arg("total", dollars(invoice.total_cents)));
}

boost::asio::awaitable<Result<std::vector<OrgRequests>>> requests_per_org(db::Connection& conn,
                                                                          db::Timestamp since,
                                                                          db::Deadline deadline) {
  db::Params params(since);
  auto rows = co_await conn.query(kRequestsPerOrg, params, deadline);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, [](const db::Row& row) {
    return OrgRequests{row.get<db::Uuid>(0), row.get<std::int64_t>(1)};
  });
}

}  // namespace liftoff::usage
