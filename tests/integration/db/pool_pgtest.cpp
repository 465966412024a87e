// The pool against a real server: exhaustion, acquire timeout, and recovery after a restart.
#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>

#include "liftoff/db/database.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"

namespace liftoff::db {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::block_on;
using testing::sleep_for;

constexpr Statement kPid{Plane::any, "pooltest.pid", "SELECT pg_backend_pid()"};
constexpr Statement kSleep{Plane::any, "pooltest.sleep", "SELECT pg_sleep($1::float8)"};

std::unique_ptr<Database> make_database(core::Registry& registry, std::size_t size,
                                        std::chrono::milliseconds timeout) {
  DatabaseOptions options;
  options.connect = {testing::test_database_url(), {}, "liftoff-test"};
  options.pool.max_size = size;
  options.pool.acquire_timeout = timeout;
  options.pool.backoff_min = 20ms;
  options.pool.backoff_max = 200ms;
  options.shared_connections = 0;  // these tests are about the pool: every query leases
  return std::make_unique<Database>(options, registry, 1);
}

TEST(PoolWithServer, ConcurrentQueriesShareABoundedPool) {
  core::Registry registry;
  asio::io_context io(1);
  auto db = make_database(registry, 4, 5s);
  std::set<int> pids;
  int done = 0;
  block_on(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < 32; ++i) {
      asio::co_spawn(
          ex,
          [&]() -> asio::awaitable<void> {
            Params p(0.01);
            auto slept = co_await db->query(Intent::write, testing::control_scope(10s), kSleep, p);
            EXPECT_TRUE(slept);
            auto pid = co_await db->query(Intent::write, testing::control_scope(10s), kPid,
                                          Params::none());
            if (pid) pids.insert(pid->front().get<std::int32_t>(0));
            ++done;
          },
          asio::detached);
    }
    co_return;
  }());
  EXPECT_EQ(done, 32);
  EXPECT_LE(pids.size(), 4u);
  EXPECT_GE(pids.size(), 2u);
}

// The pool's acquire timeouts so far, as its metric says.
double acquire_timeouts(const core::Registry& registry) {
  const std::string name = "db_pool_acquire_timeouts_total{database=\"primary\"} ";
  auto text = registry.render();
  auto at = text.find(name);
  return at == std::string::npos ? 0 : std::stod(text.substr(at + name.size()));
}

TEST(PoolWithServer, ExhaustionTimesOutWithUnavailable) {
  core::Registry registry;
  asio::io_context io(1);
  auto db = make_database(registry, 1, 100ms);
  double before = 0;
  block_on(io, [&]() -> asio::awaitable<void> {
    // The pool's one connection. Opening it is bounded by acquire_timeout too, which a loaded
    // machine can exceed (seen in CI beside the e2e suite): then it is tried again, once the pool's
    // backoff after the failed connect is over (during it, acquire fails at once: a fresh clone's
    // run failed all its tries within 25 ms).
    auto held = co_await db->acquire(Intent::write, testing::control_scope(5s));
    for (int tries = 1; !held && tries < 20; ++tries) {
      co_await sleep_for(250ms);  // more than make_database's longest backoff (200 ms)
      held = co_await db->acquire(Intent::write, testing::control_scope(5s));
    }
    CO_ASSERT_TRUE(held);
    before = acquire_timeouts(registry);
    // The pool's acquire_timeout (100 ms) ends the wait, not the caller's 5 s deadline: the answer
    // is unavailable (503), not timeout.
    auto second = co_await db->acquire(Intent::write, testing::control_scope(5s));
    EXPECT_FALSE(second);
    EXPECT_EQ(second.error().code, Errc::unavailable);
  }());
  EXPECT_EQ(acquire_timeouts(registry), before + 1) << registry.render();
}

TEST(PoolWithServer, RecoversAfterTheServerRestarts) {
  core::Registry registry;
  asio::io_context io(1);
  auto db = make_database(registry, 2, 2s);
  int before = 0;
  block_on(io, [&]() -> asio::awaitable<void> {
    auto pid = co_await db->query(Intent::write, testing::control_scope(5s), kPid, Params::none());
    CO_ASSERT_TRUE(pid);
    before = pid->front().get<std::int32_t>(0);
  }());

  ASSERT_TRUE(testing::test_postgres().stop());
  block_on(io, [&]() -> asio::awaitable<void> {
    auto down = co_await db->query(Intent::write, testing::control_scope(2s), kPid, Params::none());
    EXPECT_FALSE(down);
    EXPECT_EQ(down.error().code, Errc::unavailable);
  }());
  ASSERT_TRUE(testing::test_postgres().start());

  block_on(io, [&]() -> asio::awaitable<void> {
    // Backoff after the failed connect lasts at most 200 ms here; retry for a few seconds.
    Result<Rows> pid = make_error(Errc::unavailable, "not tried");
    for (int attempt = 0; attempt < 50 && !pid; ++attempt) {
      pid = co_await db->query(Intent::write, testing::control_scope(2s), kPid, Params::none());
      if (!pid) co_await sleep_for(100ms);
    }
    EXPECT_TRUE(pid) << (pid ? "" : pid.error().detail);
    if (pid) {
      EXPECT_NE(pid->front().get<std::int32_t>(0), before);
    }
  }());
}

}  // namespace
}  // namespace liftoff::db
