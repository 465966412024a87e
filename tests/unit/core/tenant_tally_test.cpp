#include "liftoff/core/tenant_tally.hpp"

#include <gtest/gtest.h>

#include <map>

namespace liftoff::core {
namespace {

std::map<std::string, TenantTally::Counts> shown_of(const TenantTally& tally) {
  auto shown = tally.shown();
  return {shown.begin(), shown.end()};
}

TEST(TenantTally, ShowsTheTopOrganizationsByRequestsByServerErrorsAndByDatabaseTime) {
  TenantTally tally(100, 1, 1);
  for (int i = 0; i < 50; ++i) tally.record("busy", false, 0.001, 0.0001);
  for (int i = 0; i < 3; ++i) tally.record("failing", true, 0.002, 0.0);
  tally.record("heavy", false, 2.0, 1.5);
  for (int i = 0; i < 10; ++i) tally.record("ordinary", false, 0.001, 0.0001);
  auto shown = shown_of(tally);
  ASSERT_EQ(shown.size(), 3U) << "one per ranking; `ordinary` tops none";
  EXPECT_EQ(shown.at("busy").requests, 50U);
  EXPECT_EQ(shown.at("failing").server_errors, 3U);
  EXPECT_DOUBLE_EQ(shown.at("heavy").database_seconds, 1.5);
  EXPECT_DOUBLE_EQ(shown.at("heavy").request_seconds, 2.0);

  std::string text;
  tally.render(text);
  EXPECT_NE(text.find("# TYPE tenant_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("tenant_requests_total{org=\"busy\"} 50\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tenant_server_errors_total{org=\"failing\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("tenant_database_seconds_total{org=\"heavy\"} 1.5\n"), std::string::npos);
  EXPECT_EQ(text.find("ordinary"), std::string::npos);
}

TEST(TenantTally, TracksABoundedNumberAndANewcomerStartsFromTheLeastCount) {
  TenantTally tally(2, 10, 1);
  for (int i = 0; i < 10; ++i) tally.record("a", false, 0, 0);
  for (int i = 0; i < 5; ++i) tally.record("b", false, 0, 0);
  tally.record("c", false, 0, 0);  // b (5) makes room; c counts from 5: an upper bound
  auto shown = shown_of(tally);
  ASSERT_EQ(shown.size(), 2U);
  EXPECT_EQ(shown.at("a").requests, 10U);
  EXPECT_EQ(shown.at("c").requests, 6U);
  EXPECT_FALSE(shown.contains("b"));
}

TEST(TenantTally, NothingRecordedShowsNoSeriesButTheFamilies) {
  TenantTally tally(10, 10, 2);
  std::string text;
  tally.render(text);
  EXPECT_NE(text.find("# TYPE tenant_database_seconds_total counter"), std::string::npos);
  EXPECT_EQ(text.find("{org="), std::string::npos);
}

TEST(StatementTimer, AddsItsLifetimeOnlyWhenGivenATotal) {
  StatementTime total;
  { StatementTimer timer(&total); }
  EXPECT_GE(total.nanos.load(), 0);
  { StatementTimer none(nullptr); }
  total.add(std::chrono::milliseconds(1500));
  EXPECT_GE(total.seconds(), 1.5);
}

}  // namespace
}  // namespace liftoff::core
