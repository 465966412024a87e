#include "liftoff/plans/plans.hpp"

#include <gtest/gtest.h>

namespace liftoff::plans {
namespace {

TEST(Plans, TheCatalogueHasTheSeedsTiersCheapestFirst) {
  ASSERT_EQ(catalogue().size(), 4u);
  EXPECT_EQ(default_plan().name, "free");
  const auto* starter = find_plan("starter");
  const auto* pro = find_plan("pro");
  const auto* enterprise = find_plan("enterprise");
  ASSERT_TRUE(starter && pro && enterprise);
  EXPECT_EQ(starter->monthly_price_cents, 2'900);
  EXPECT_EQ(starter->limits[Limit::seats], 100);
  EXPECT_EQ(pro->monthly_price_cents, 9'900);
  EXPECT_EQ(pro->limits[Limit::seats], 1'000);
  EXPECT_EQ(enterprise->monthly_price_cents, 49'900);
  EXPECT_FALSE(enterprise->self_serve);
  EXPECT_EQ(find_plan("platinum"), nullptr);
  // Each plan allows at least what the one before it does.
  for (std::size_t i = 1; i < catalogue().size(); ++i) {
    for (auto limit : kLimits) {
      EXPECT_GE(catalogue()[i].limits[limit], catalogue()[i - 1].limits[limit])
          << catalogue()[i].name << " " << to_string(limit);
    }
  }
}

TEST(Plans, LimitNamesRoundTrip) {
  for (auto limit : kLimits) EXPECT_EQ(parse_limit(to_string(limit)), limit);
  EXPECT_FALSE(parse_limit("bananas"));
}

TEST(Plans, OverridesAreCheckedAndLaidOverThePlan) {
  auto canonical = parse_overrides(R"({"seats": 5000, "api_requests_per_minute": 1000000})");
  ASSERT_TRUE(canonical) << canonical.error().detail;
  const auto& enterprise = *find_plan("enterprise");
  auto limits = effective_limits(enterprise, *canonical);
  EXPECT_EQ(limits[Limit::seats], 5'000);
  EXPECT_EQ(limits[Limit::api_requests_per_minute], 1'000'000);
  EXPECT_EQ(limits[Limit::records], enterprise.limits[Limit::records]);
  EXPECT_EQ(effective_limits(enterprise, "{}"), enterprise.limits);
  EXPECT_EQ(*parse_overrides(""), "{}");

  auto bad = parse_overrides(R"({"seats": -1, "bananas": 3, "records": 1.5})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::validation_failed);
  ASSERT_EQ(bad.error().fields.size(), 3u);
  EXPECT_EQ(bad.error().fields[0].field, "limits.seats");
  EXPECT_EQ(bad.error().fields[1].field, "limits.bananas");
  EXPECT_EQ(bad.error().fields[2].field, "limits.records");
  EXPECT_FALSE(parse_overrides("[1]"));
  EXPECT_FALSE(parse_overrides("{"));
}

TEST(Plans, OverLimitsNamesEachLimitHeldBeyond) {
  Holdings holdings;
  holdings[Limit::seats] = 12;
  holdings[Limit::collections] = 3;
  holdings[Limit::storage_bytes] = 200LL << 20;
  auto over = over_limits(default_plan().limits, holdings);
  ASSERT_EQ(over.size(), 2u);
  EXPECT_EQ(over[0].field, "seats");
  EXPECT_EQ(over[0].message, "12 in use; the plan allows 5");
  EXPECT_EQ(over[1].field, "storage_bytes");
  EXPECT_TRUE(over_limits(find_plan("pro")->limits, holdings).empty());
}

TEST(Plans, TheErrorNamesTheLimitItsValueAndThePlanThatLiftsIt) {
  auto error = limit_reached(Limit::seats, 5, "free", "every seat is taken");
  EXPECT_EQ(error.code, Errc::payment_required);
  EXPECT_EQ(info(error.code).http_status, 402);
  ASSERT_TRUE(error.limit);
  EXPECT_EQ(error.limit->name, "seats");
  EXPECT_EQ(error.limit->value, 5);
  EXPECT_EQ(error.limit->plan, "free");
  EXPECT_EQ(error.limit->lifted_by, "starter");
  // Past Pro's seats only Enterprise lifts it; a limit a contract set lower is lifted by the
  // cheapest plan above the current one that allows more.
  EXPECT_EQ(plan_lifting(Limit::seats, 1'000, "pro"), "enterprise");
  EXPECT_EQ(plan_lifting(Limit::seats, 50, "starter"), "pro");
  EXPECT_EQ(plan_lifting(Limit::seats, 100'000, "enterprise"), "enterprise");
}

}  // namespace
}  // namespace liftoff::plans
