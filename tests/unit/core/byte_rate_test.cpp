// core::ByteRate: the per-organization read rate, on a clock the test moves.
#include "liftoff/core/byte_rate.hpp"

#include <gtest/gtest.h>

namespace liftoff::core {
namespace {
using namespace std::chrono_literals;

TEST(ByteRate, ANewKeyMayReadItsBurstThenWaitsUntilItsDebtIsRepaid) {
  ByteRate rate(1000, 5000);  // 1,000 bytes a second, 5,000 at once
  auto t0 = ByteRate::Clock::time_point{} + 1h;
  EXPECT_EQ(rate.wait("org", t0), 0ms);
  rate.spend("org", 4000, t0);
  EXPECT_EQ(rate.wait("org", t0), 0ms);  // 1,000 left
  rate.spend("org", 3000, t0);           // a read is never cut short: 2,000 in debt
  EXPECT_EQ(rate.wait("org", t0), 2000ms);
  EXPECT_EQ(rate.wait("org", t0 + 1500ms), 500ms);
  EXPECT_EQ(rate.wait("org", t0 + 2000ms), 0ms);
  // Refilling stops at the burst: a long pause does not save up more than it.
  rate.spend("org", 5000, t0 + 1h);
  EXPECT_EQ(rate.wait("org", t0 + 1h), 0ms);
  rate.spend("org", 1, t0 + 1h);
  EXPECT_EQ(rate.wait("org", t0 + 1h), 1ms);
}

TEST(ByteRate, KeysAreIndependent) {
  ByteRate rate(1000, 1000);
  auto t0 = ByteRate::Clock::time_point{} + 1h;
  rate.spend("a", 3000, t0);
  EXPECT_EQ(rate.wait("a", t0), 2000ms);
  EXPECT_EQ(rate.wait("b", t0), 0ms);
}

TEST(ByteRate, ARateOfZeroIsNoLimit) {
  ByteRate rate(0, 1000);
  rate.spend("a", 1'000'000'000);
  EXPECT_EQ(rate.wait("a"), 0ms);
}

TEST(ByteRate, ItKeepsAtMostItsKeysAndForgetsAFullBucketFirst) {
  ByteRate rate(1000, 1000, 16);  // one key per shard
  auto t0 = ByteRate::Clock::time_point{} + 1h;
  // Many keys in debt: each new one in a full shard displaces another, so memory stays bounded;
  // a key in debt that is forgotten comes back with a full bucket (the cost of the bound).
  for (int i = 0; i < 1000; ++i) rate.spend("k" + std::to_string(i), 2000, t0);
  int in_debt = 0;
  for (int i = 0; i < 1000; ++i) in_debt += rate.wait("k" + std::to_string(i), t0) > 0ms ? 1 : 0;
  EXPECT_LE(in_debt, 16);
}

}  // namespace
}  // namespace liftoff::core
