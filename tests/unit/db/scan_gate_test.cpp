// The bound on each organization's scans: who runs, who waits, in which order, and who is refused.
#include "liftoff/db/scan_gate.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <optional>
#include <thread>

#include "support/async.hpp"

namespace liftoff::db {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::until;

const Uuid kOrgA = *Uuid::parse("00000000-0000-4000-8000-00000000000a");
const Uuid kOrgB = *Uuid::parse("00000000-0000-4000-8000-00000000000b");

Deadline in(std::chrono::milliseconds d) {
  return Clock::now() + d;
}

// Enters for `org` and holds the ticket until `release` is set; `order` records each admission.
asio::awaitable<void> scan(ScanGate& gate, Uuid org, std::string name,
                           std::vector<std::string>& order, const bool& release) {
  auto ticket = co_await gate.enter(org, in(10s));
  EXPECT_TRUE(ticket) << name;
  order.push_back(name);
  co_await until([&] { return release; });
}

TEST(ScanGate, BoundsOneOrganizationNotTheOthers) {
  ScanGate gate({.per_org = 1, .total = 2, .queue_per_org = 4}, nullptr);
  testing::block_on([&]() -> asio::awaitable<void> {
    auto first = co_await gate.enter(kOrgA, in(10s));
    CO_ASSERT_TRUE(first);
    // Org B's scan runs at once beside A's.
    auto other = co_await gate.enter(kOrgB, in(10s));
    CO_ASSERT_TRUE(other);
    EXPECT_EQ(gate.running(), 2u);
    *other = {};
    // A's second waits for A's first, although the process has room.
    std::optional<ScanGate::Ticket> second;
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&]() -> asio::awaitable<void> {
          auto t = co_await gate.enter(kOrgA, in(10s));
          EXPECT_TRUE(t);
          if (t) second = std::move(*t);
        },
        asio::detached);
    CO_ASSERT_TRUE(co_await until([&] { return gate.waiting() == 1; }));
    co_await testing::sleep_for(20ms);
    EXPECT_FALSE(second.has_value());
    EXPECT_EQ(gate.running(), 1u);
    *first = {};  // A's first is answered: its second runs
    CO_ASSERT_TRUE(co_await until([&] { return second.has_value(); }));
    EXPECT_EQ(gate.running(), 1u);
    EXPECT_EQ(gate.waiting(), 0u);
  }());
  EXPECT_EQ(gate.running(), 0u);
}

TEST(ScanGate, ServesWaitingOrganizationsRoundRobin) {
  ScanGate gate({.per_org = 1, .total = 1, .queue_per_org = 8}, nullptr);
  std::vector<std::string> order;
  bool release = false;
  testing::block_on([&]() -> asio::awaitable<void> {
    auto held = co_await gate.enter(kOrgA, in(10s));
    CO_ASSERT_TRUE(held);
    auto ex = co_await asio::this_coro::executor;
    // A queues three scans before B queues one: B's runs after A's first, not after all three.
    std::size_t queued = 0;
    for (auto name : {"a1", "a2", "a3"}) {
      asio::co_spawn(ex, scan(gate, kOrgA, name, order, release), asio::detached);
      ++queued;
      CO_ASSERT_TRUE(co_await until([&] { return gate.waiting() == queued; }));
    }
    asio::co_spawn(ex, scan(gate, kOrgB, "b1", order, release), asio::detached);
    CO_ASSERT_TRUE(co_await until([&] { return gate.waiting() == 4; }));
    release = true;  // each scan ends as soon as it is admitted
    *held = {};
    CO_ASSERT_TRUE(co_await until([&] { return order.size() == 4; }));
  }());
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "b1", "a2", "a3"}));
  EXPECT_EQ(gate.running(), 0u);
}

TEST(ScanGate, RefusesAnOrganizationWithAFullQueue) {
  ScanGate gate({.per_org = 1, .total = 4, .queue_per_org = 1}, nullptr);
  testing::block_on([&]() -> asio::awaitable<void> {
    auto held = co_await gate.enter(kOrgA, in(10s));
    CO_ASSERT_TRUE(held);
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&]() -> asio::awaitable<void> { auto t = co_await gate.enter(kOrgA, in(200ms)); },
        asio::detached);
    CO_ASSERT_TRUE(co_await until([&] { return gate.waiting() == 1; }));
    auto refused = co_await gate.enter(kOrgA, in(10s));
    CO_ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::too_many_requests);
    EXPECT_TRUE(refused.error().retry_after.has_value());
    // Another organization is not affected.
    auto other = co_await gate.enter(kOrgB, in(10s));
    EXPECT_TRUE(other);
    CO_ASSERT_TRUE(co_await until([&] { return gate.waiting() == 0; }));
  }());
}

TEST(ScanGate, AWaiterPastItsDeadlineTimesOutAndLeavesNoTrace) {
  ScanGate gate({.per_org = 1, .total = 1, .queue_per_org = 4}, nullptr);
  testing::block_on([&]() -> asio::awaitable<void> {
    auto held = co_await gate.enter(kOrgA, in(10s));
    CO_ASSERT_TRUE(held);
    auto late = co_await gate.enter(kOrgB, in(30ms));
    CO_ASSERT_FALSE(late);
    EXPECT_EQ(late.error().code, Errc::timeout);
    EXPECT_EQ(gate.waiting(), 0u);
    *held = {};
    EXPECT_EQ(gate.running(), 0u);  // the gone waiter was not admitted
    auto next = co_await gate.enter(kOrgB, in(10s));
    EXPECT_TRUE(next);
  }());
}

// A waiter on one worker thread is woken by a scan that ends on another.
TEST(ScanGate, WakesAWaiterOnAnotherThread) {
  ScanGate gate({.per_org = 1, .total = 1, .queue_per_org = 4}, nullptr);
  asio::io_context other(1);
  auto guard = asio::make_work_guard(other);
  std::thread thread([&] { other.run(); });
  std::optional<ScanGate::Ticket> held;
  testing::block_on([&]() -> asio::awaitable<void> {
    auto t = co_await gate.enter(kOrgA, in(10s));
    CO_ASSERT_TRUE(t);
    held = std::move(*t);
  }());
  auto waited = asio::co_spawn(
      other,
      [&]() -> asio::awaitable<bool> {
        auto t = co_await gate.enter(kOrgB, in(20s));
        co_return t.has_value();
      },
      asio::use_future);
  ASSERT_TRUE(testing::eventually([&] { return gate.waiting() == 1; }));
  held.reset();
  EXPECT_EQ(waited.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(waited.get());
  guard.reset();
  thread.join();
  EXPECT_EQ(gate.running(), 0u);
}

}  // namespace
}  // namespace liftoff::db
