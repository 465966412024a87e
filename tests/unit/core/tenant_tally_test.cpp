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

// Space-saving's guarantees through heavy churn (every light org's first request replaces the
// least counted): the tracked counts sum to the requests seen, and an org with more than
// 1/tracked of them is tracked with a count at least its own and at most N/tracked above it.
TEST(TenantTally, UnderChurnHeavyOrganizationsStayTrackedWithinTheAlgorithmsBound) {
  constexpr std::size_t kTracked = 16;
  constexpr int kRequests = 10'000;
  TenantTally tally(kTracked, kTracked, 1);
  std::map<std::string, std::uint64_t> truth;
  for (int i = 0; i < kRequests; ++i) {
    // 3 heavy orgs take 20% each; the rest go round 1,000 light ones.
    auto org = i % 5 < 3 ? "heavy-" + std::to_string(i % 5) : "light-" + std::to_string(i % 1000);
    ++truth[org];
    tally.record(org, false, 0, 0);
  }
  auto shown = shown_of(tally);
  ASSERT_LE(shown.size(), kTracked);
  std::uint64_t sum = 0;
  for (const auto& [org, counts] : shown) sum += counts.requests;
  EXPECT_EQ(sum, static_cast<std::uint64_t>(kRequests));
  for (int h = 0; h < 3; ++h) {
    const auto org = "heavy-" + std::to_string(h);
    ASSERT_TRUE(shown.contains(org)) << org;
    EXPECT_GE(shown.at(org).requests, truth.at(org));
    EXPECT_LE(shown.at(org).requests, truth.at(org) + kRequests / kTracked);
  }
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
