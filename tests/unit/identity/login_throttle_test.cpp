#include "liftoff/identity/login_throttle.hpp"

#include <gtest/gtest.h>

namespace liftoff::identity {
namespace {
using namespace std::chrono_literals;
using Clock = LoginThrottle::Clock;

TEST(LoginThrottle, DelaysEscalateThenTheAccountLocks) {
  LoginThrottle t;
  auto now = Clock::now();
  EXPECT_EQ(t.failed("a@x.io", "1.1.1.1", now), 0ms);  // one typo is free
  EXPECT_EQ(t.failed("a@x.io", "1.1.1.1", now), 250ms);
  EXPECT_EQ(t.failed("a@x.io", "1.1.1.1", now), 500ms);
  EXPECT_EQ(t.failed("a@x.io", "1.1.1.1", now), 1000ms);
  EXPECT_FALSE(t.locked("a@x.io", "1.1.1.1", now));
  t.failed("a@x.io", "1.1.1.1", now);              // the fifth: locked
  auto wait = t.locked("a@x.io", "2.2.2.2", now);  // from any IP
  ASSERT_TRUE(wait);
  EXPECT_EQ(*wait, 30s);
  EXPECT_FALSE(t.locked("a@x.io", "1.1.1.1", now + 31s));
  t.failed("a@x.io", "1.1.1.1", now + 31s);  // still within the window: the lock doubles
  EXPECT_EQ(t.locked("a@x.io", "1.1.1.1", now + 31s), 60s);
}

TEST(LoginThrottle, ManyAccountsFromOneIpLockTheIp) {
  LoginThrottle t;
  auto now = Clock::now();
  for (int i = 0; i < 20; ++i) t.failed("user" + std::to_string(i) + "@x.io", "6.6.6.6", now);
  EXPECT_TRUE(t.locked("fresh@x.io", "6.6.6.6", now));
  EXPECT_FALSE(t.locked("fresh@x.io", "7.7.7.7", now));
}

TEST(LoginThrottle, SuccessClearsTheAccountAndTheWindowForgets) {
  LoginThrottle t;
  auto now = Clock::now();
  for (int i = 0; i < 3; ++i) t.failed("b@x.io", "1.1.1.1", now);
  t.succeeded("b@x.io");
  EXPECT_EQ(t.failed("b@x.io", "1.1.1.1", now), 0ms);
  EXPECT_EQ(t.failed("c@x.io", "9.9.9.9", now), 0ms);
  EXPECT_EQ(t.failed("c@x.io", "9.9.9.9", now + 16min), 0ms);  // a new window
}

TEST(LoginThrottle, MemoryIsBounded) {
  LoginThrottleOptions o;
  o.max_keys = 10;
  LoginThrottle t(o);
  auto now = Clock::now();
  for (unsigned i = 0; i < o.account_limit; ++i) t.failed("victim@x.io", "1.1.1.1", now);
  ASSERT_TRUE(t.locked("victim@x.io", "1.1.1.1", now));
  for (int i = 0; i < 1000; ++i) {
    t.failed("u" + std::to_string(i) + "@x.io", std::to_string(i), now);
    ASSERT_LE(t.size(), o.max_keys) << i;
  }
  // The least recently touched keys went first: the lock was forgotten (the price of the bound).
  EXPECT_FALSE(t.locked("victim@x.io", "1.1.1.1", now));
}

}  // namespace
}  // namespace liftoff::identity
