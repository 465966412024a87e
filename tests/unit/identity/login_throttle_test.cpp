#include "liftoff/identity/login_throttle.hpp"

#include <gtest/gtest.h>

namespace liftoff::identity {
namespace {
using namespace std::chrono_literals;
using Clock = LoginThrottle::Clock;

// An attempt that then fails: its delay (nullopt if it was refused).
std::optional<std::chrono::milliseconds> fail(LoginThrottle& t, const std::string& account,
                                              const std::string& ip, Clock::time_point now) {
  auto attempt = t.attempt(account, ip, now);
  if (attempt.locked) return std::nullopt;
  t.failed(ip, now);
  return attempt.delay;
}

TEST(LoginThrottle, DelaysEscalateThenTheAccountLocks) {
  LoginThrottle t;
  auto now = Clock::now();
  EXPECT_EQ(fail(t, "a@x.io", "1.1.1.1", now), 0ms);  // one typo is free
  EXPECT_EQ(fail(t, "a@x.io", "1.1.1.1", now), 250ms);
  EXPECT_EQ(fail(t, "a@x.io", "1.1.1.1", now), 500ms);
  EXPECT_EQ(fail(t, "a@x.io", "1.1.1.1", now), 1000ms);
  EXPECT_EQ(fail(t, "a@x.io", "1.1.1.1", now), 2000ms);  // the fifth: allowed, and locks
  auto refused = t.attempt("a@x.io", "2.2.2.2", now);    // from any IP
  ASSERT_TRUE(refused.locked);
  EXPECT_EQ(*refused.locked, 30s);
  EXPECT_TRUE(
      fail(t, "a@x.io", "1.1.1.1", now + 31s));  // still within the window: the lock doubles
  EXPECT_EQ(t.attempt("a@x.io", "1.1.1.1", now + 31s).locked, 60s);
}

TEST(LoginThrottle, ParallelGuessesAreCountedBeforeAnyIsChecked) {
  // Ten guesses in flight at once: each is counted as it starts, so only the account's limit of
  // them reach the password check, though none has failed yet.
  LoginThrottle t;
  auto now = Clock::now();
  int checked = 0;
  for (int i = 0; i < 10; ++i) checked += t.attempt("p@x.io", "1.1.1.1", now).locked ? 0 : 1;
  EXPECT_EQ(checked, 5);
}

TEST(LoginThrottle, ManyAccountsFromOneIpLockTheIp) {
  LoginThrottle t;
  auto now = Clock::now();
  for (int i = 0; i < 20; ++i) fail(t, "user" + std::to_string(i) + "@x.io", "6.6.6.6", now);
  EXPECT_TRUE(t.attempt("fresh@x.io", "6.6.6.6", now).locked);
  EXPECT_FALSE(t.attempt("fresh@x.io", "7.7.7.7", now).locked);
}

TEST(LoginThrottle, SuccessClearsTheAccountAndTheWindowForgets) {
  LoginThrottle t;
  auto now = Clock::now();
  for (int i = 0; i < 3; ++i) fail(t, "b@x.io", "1.1.1.1", now);
  ASSERT_FALSE(t.attempt("b@x.io", "1.1.1.1", now).locked);
  t.succeeded("b@x.io");
  EXPECT_EQ(fail(t, "b@x.io", "1.1.1.1", now), 0ms);
  EXPECT_EQ(fail(t, "c@x.io", "9.9.9.9", now), 0ms);
  EXPECT_EQ(fail(t, "c@x.io", "9.9.9.9", now + 16min), 0ms);  // a new window

  // An office behind one address: its users' successful logins, even at once, never lock it.
  for (int i = 0; i < 100; ++i)
    ASSERT_FALSE(t.attempt("u" + std::to_string(i) + "@office.io", "5.5.5.5", now).locked) << i;
}

TEST(LoginThrottle, MemoryIsBounded) {
  LoginThrottleOptions o;
  o.max_keys = 10;
  LoginThrottle t(o);
  auto now = Clock::now();
  for (unsigned i = 0; i < o.account_limit; ++i) fail(t, "victim@x.io", "1.1.1.1", now);
  ASSERT_TRUE(t.attempt("victim@x.io", "1.1.1.1", now).locked);
  for (int i = 0; i < 1000; ++i) {
    fail(t, "u" + std::to_string(i) + "@x.io", std::to_string(i), now);
    ASSERT_LE(t.size(), o.max_keys) << i;
  }
  // The least recently touched keys went first: the lock was forgotten (the price of the bound).
  EXPECT_FALSE(t.attempt("victim@x.io", "1.1.1.1", now).locked);
}

}  // namespace
}  // namespace liftoff::identity
