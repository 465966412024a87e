// The pool's state machine, without a database: a fake connection type and a scripted connector.
#include "liftoff/db/pool.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "support/async.hpp"

namespace liftoff::db {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::sleep_for;
using testing::until;

struct FakeConnection {
  enum class TxState { idle, in_transaction };
  int id = 0;
  bool broken = false;
  bool alive = true;
  TxState tx = TxState::idle;
  std::vector<std::string>* scripts = nullptr;

  bool usable() const { return !broken; }
  TxState transaction_state() const { return tx; }
  bool check_alive() const { return alive; }
  asio::awaitable<Result<void>> execute_script(std::string_view sql, Clock::time_point) {
    if (scripts) scripts->emplace_back(sql);
    tx = TxState::idle;
    co_return Result<void>{};
  }
};

using FakePool = BasicPool<FakeConnection>;

struct Harness {
  asio::io_context io{1};
  int connects = 0;
  bool fail_connects = false;
  std::vector<std::string> scripts;

  std::shared_ptr<FakePool> pool(std::size_t max, std::chrono::milliseconds acquire_timeout = 100ms,
                                 PoolMetrics metrics = {}) {
    PoolOptions o;
    o.max_size = max;
    o.acquire_timeout = acquire_timeout;
    o.backoff_min = 50ms;
    return FakePool::create(
        io.get_executor(), o,
        [this](Clock::time_point) -> asio::awaitable<Result<std::unique_ptr<FakeConnection>>> {
          if (fail_connects) co_return make_error(Errc::unavailable, "refused");
          auto c = std::make_unique<FakeConnection>();
          c->id = ++connects;
          c->scripts = &scripts;
          co_return c;
        },
        metrics);
  }

  template <class T>
  T run(asio::awaitable<T> task) {
    return testing::block_on(io, std::move(task));
  }
};

TEST(Pool, ReusesIdleConnectionsLifo) {
  Harness h;
  auto pool = h.pool(4);
  h.run([&]() -> asio::awaitable<void> {
    int first = 0;
    {
      auto a = co_await pool->acquire();
      CO_ASSERT_TRUE(a);
      first = (*a)->id;
    }
    auto b = co_await pool->acquire();
    EXPECT_EQ((*b)->id, first);
    EXPECT_EQ(pool->stats().in_use, 1u);
  }());
  EXPECT_EQ(h.connects, 1);
  EXPECT_EQ(pool->stats().idle, 1u);
}

TEST(Pool, ExhaustedPoolTimesOutWithUnavailable) {
  Harness h;
  auto pool = h.pool(2, 50ms);
  h.run([&]() -> asio::awaitable<void> {
    auto a = co_await pool->acquire();
    auto b = co_await pool->acquire();
    // It waits (a waiter while it does), then gives up with unavailable.
    std::size_t waiters_seen = 0;
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&]() -> asio::awaitable<void> {
          co_await testing::until([&] { return pool->stats().waiters > 0; });
          waiters_seen = pool->stats().waiters;
        },
        asio::detached);
    auto c = co_await pool->acquire();
    EXPECT_FALSE(c);
    EXPECT_EQ(c.error().code, Errc::unavailable);
    EXPECT_EQ(waiters_seen, 1u);
    EXPECT_EQ(pool->stats().waiters, 0u);
  }());
  EXPECT_EQ(pool->stats().acquire_timeouts, 1u);
  EXPECT_EQ(h.connects, 2);
}

TEST(Pool, ReturnedConnectionGoesToTheFirstWaiter) {
  Harness h;
  auto pool = h.pool(1, 1000ms);
  std::vector<int> order;
  h.run([&]() -> asio::awaitable<void> {
    auto held = co_await pool->acquire();
    auto ex = co_await asio::this_coro::executor;
    for (int w = 1; w <= 2; ++w) {
      asio::co_spawn(
          ex,
          [&, w]() -> asio::awaitable<void> {
            auto lease = co_await pool->acquire();
            EXPECT_TRUE(lease);
            order.push_back(w);
            co_await sleep_for(5ms);
          },
          asio::detached);
    }
    CO_ASSERT_TRUE(co_await until([&] { return pool->stats().waiters == 2u; }));
    held = FakePool::Lease{};  // return it
    CO_ASSERT_TRUE(co_await until([&] { return order.size() == 2; }));
  }());
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(h.connects, 1);
}

TEST(Pool, BrokenConnectionIsDiscardedAndAWaiterReplacesIt) {
  Harness h;
  auto pool = h.pool(1, 1000ms);
  h.run([&]() -> asio::awaitable<void> {
    auto held = co_await pool->acquire();
    auto ex = co_await asio::this_coro::executor;
    bool got = false;
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          auto lease = co_await pool->acquire();
          got = static_cast<bool>(lease) && (*lease)->id == 2;
        },
        asio::detached);
    CO_ASSERT_TRUE(co_await until([&] { return pool->stats().waiters == 1u; }));
    (*held)->broken = true;
    held = FakePool::Lease{};
    EXPECT_TRUE(co_await until([&] { return got; }));
  }());
  EXPECT_EQ(pool->stats().discarded, 1u);
  EXPECT_EQ(h.connects, 2);
}

TEST(Pool, DeadIdleConnectionIsReplacedOnAcquire) {
  Harness h;
  auto pool = h.pool(2);
  h.run([&]() -> asio::awaitable<void> {
    {
      auto a = co_await pool->acquire();
      (*a)->alive = false;  // e.g. the server restarted while it sat idle
    }
    auto b = co_await pool->acquire();
    EXPECT_EQ((*b)->id, 2);
  }());
  EXPECT_EQ(pool->stats().size, 1u);
}

TEST(Pool, ConnectionReturnedInsideATransactionIsRolledBack) {
  Harness h;
  auto pool = h.pool(1);
  h.run([&]() -> asio::awaitable<void> {
    {
      auto a = co_await pool->acquire();
      (*a)->tx = FakeConnection::TxState::in_transaction;
    }
    CO_ASSERT_TRUE(co_await until([&] { return pool->stats().idle == 1u; }));  // rolled back
    auto b = co_await pool->acquire();
    EXPECT_EQ((*b)->tx, FakeConnection::TxState::idle);
    EXPECT_EQ((*b)->id, 1);
  }());
  EXPECT_EQ(h.scripts, (std::vector<std::string>{"ROLLBACK"}));
}

TEST(Pool, ConnectFailureBacksOffThenRecovers) {
  Harness h;
  auto pool = h.pool(2);
  h.fail_connects = true;
  h.run([&]() -> asio::awaitable<void> {
    auto a = co_await pool->acquire();
    EXPECT_FALSE(a);
    h.fail_connects = false;
    // Within the backoff window, nothing to wait for: it fails at once, without an attempt (which
    // would now succeed), and leaves no waiter behind.
    auto b = co_await pool->acquire();
    EXPECT_FALSE(b);
    EXPECT_EQ(h.connects, 0);
    EXPECT_EQ(pool->stats().waiters, 0u);
    // After the window, a new attempt, which succeeds.
    bool connected = false;
    for (auto end = Clock::now() + 30s; !connected && Clock::now() < end;) {
      connected = static_cast<bool>(co_await pool->acquire());
      if (!connected) co_await sleep_for(5ms);
    }
    EXPECT_TRUE(connected);
  }());
  EXPECT_EQ(pool->stats().connect_failures, 1u);
}

TEST(Pool, CloseFailsWaitersAndDiscardsReturns) {
  Harness h;
  auto pool = h.pool(1, 1000ms);
  h.run([&]() -> asio::awaitable<void> {
    auto held = co_await pool->acquire();
    auto ex = co_await asio::this_coro::executor;
    std::optional<Errc> waiter_error;
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          auto lease = co_await pool->acquire();
          if (!lease) waiter_error = lease.error().code;
        },
        asio::detached);
    CO_ASSERT_TRUE(co_await until([&] { return pool->stats().waiters == 1u; }));
    pool->close();
    CO_ASSERT_TRUE(co_await until([&] { return waiter_error.has_value(); }));
    EXPECT_EQ(waiter_error, Errc::unavailable);
    held = FakePool::Lease{};
    EXPECT_EQ(pool->stats().size, 0u);
  }());
}

TEST(Pool, PublishesGauges) {
  Harness h;
  core::Registry registry;
  PoolMetrics m{&registry.gauge("size", "h"),       &registry.gauge("in_use", "h"),
                &registry.gauge("waiters", "h"),    &registry.histogram("wait", "h"),
                &registry.counter("timeouts", "h"), &registry.counter("fails", "h")};
  auto pool = h.pool(2, 100ms, m);
  h.run([&]() -> asio::awaitable<void> {
    auto a = co_await pool->acquire();
    auto b = co_await pool->acquire();
    EXPECT_EQ(m.size->value(), 2);
    EXPECT_EQ(m.in_use->value(), 2);
  }());
  EXPECT_EQ(m.in_use->value(), 0);
  EXPECT_EQ(m.acquire_wait->snapshot().count, 2u);
  pool.reset();
  EXPECT_EQ(m.size->value(), 0);
}

}  // namespace
}  // namespace liftoff::db
