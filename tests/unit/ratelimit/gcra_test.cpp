// GCRA in the process (the fallback when Redis is away), on a clock the test moves.
#include "liftoff/ratelimit/gcra.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace liftoff::ratelimit {
namespace {

constexpr Micros kSecond = 1'000'000;
constexpr Micros kT0 = 1'800'000'000 * kSecond;  // some day in 2027

TEST(Gcra, AnIdleKeyMaySendItsQuotaAtOnceThenOnePerInterval) {
  LocalLimiter limiter;
  const std::vector<Check> checks{{"org:a", {"org", 60}}};  // 60 a minute: one a second
  for (int i = 0; i < 60; ++i) {
    auto d = limiter.check(checks, kT0);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.outcomes[0].remaining, 59 - i);
    EXPECT_EQ(d.outcomes[0].retry_after, 0);
  }
  auto refused = limiter.check(checks, kT0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.outcomes[0].remaining, 0);
  EXPECT_EQ(refused.outcomes[0].retry_after, kSecond);  // the next one in a second
  EXPECT_EQ(refused.outcomes[0].reset, 60 * kSecond);   // the whole quota in a minute
  // A refused request counts nothing: half a second later it is still half a second away.
  EXPECT_EQ(limiter.check(checks, kT0 + kSecond / 2).outcomes[0].retry_after, kSecond / 2);
  EXPECT_TRUE(limiter.check(checks, kT0 + kSecond).allowed);
  EXPECT_FALSE(limiter.check(checks, kT0 + kSecond).allowed);
  // A long pause gives back the quota, never more.
  auto later = limiter.check(checks, kT0 + 3600 * kSecond);
  EXPECT_TRUE(later.allowed);
  EXPECT_EQ(later.outcomes[0].remaining, 59);
}

TEST(Gcra, ARequestIsAllowedByEveryCheckOrCountsAgainstNone) {
  LocalLimiter limiter;
  const std::vector<Check> narrow{{"address:1", {"address", 100}}, {"org:b", {"org", 2}}};
  EXPECT_TRUE(limiter.check(narrow, kT0).allowed);
  EXPECT_TRUE(limiter.check(narrow, kT0).allowed);
  auto refused = limiter.check(narrow, kT0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.outcomes[0].retry_after, 0);  // the address would have allowed it
  EXPECT_GT(refused.outcomes[1].retry_after, 0);
  // The refused request did not spend the address's quota: this third one leaves 97, not 96.
  const std::vector<Check> address_only{{"address:1", {"address", 100}}};
  EXPECT_EQ(limiter.check(address_only, kT0).outcomes[0].remaining, 97);
}

TEST(Gcra, AQuotaPastAMillionASecondIsNoDivisionByZero) {
  // 100,000,000 a minute is under a microsecond apart: the interval is held at one (this crashed
  // the server with SIGFPE, found by bench/run-ratelimit).
  LocalLimiter limiter;
  const std::vector<Check> checks{{"org:huge", {"org", 100'000'000}}};
  auto d = limiter.check(checks, kT0);
  EXPECT_TRUE(d.allowed);
  EXPECT_GT(d.outcomes[0].remaining, 1'000'000);
}

TEST(Gcra, KeysAreIndependentAndTheTableStaysBounded) {
  LocalLimiter limiter(64);  // 4 per shard
  for (int i = 0; i < 10'000; ++i) {
    const std::vector<Check> checks{{"k" + std::to_string(i), {"org", 1}}};
    ASSERT_TRUE(limiter.check(checks, kT0).allowed);
  }
  // Forgetting a key can only let a request through early, never refuse one wrongly.
  const std::vector<Check> fresh{{"fresh", {"org", 1}}};
  EXPECT_TRUE(limiter.check(fresh, kT0).allowed);
  EXPECT_FALSE(limiter.check(fresh, kT0).allowed);
}

TEST(Gcra, ConcurrentRequestsSpendTheQuotaExactly) {
  LocalLimiter limiter;
  const std::vector<Check> checks{{"org:c", {"org", 1000}}};
  std::atomic<int> allowed = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) allowed += limiter.check(checks, kT0).allowed ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  // Two requests that race may both pass a check the second should not have (documented), but
  // each allowed request moves the key on: within a few of the quota, never far past it.
  EXPECT_GE(allowed.load(), 1000);
  EXPECT_LE(allowed.load(), 1010);
}

}  // namespace
}  // namespace liftoff::ratelimit
