// Noisy neighbours on the database (docs/decisions/0018-noisy-neighbours.md): a statement that
// scans runs on a connection of its own, in its organization's turn, and a statement stuck at the
// head of the shared connection does not hold up the statements behind it. The assertions are on
// which backend answered and on the server's own clock for when statements ran, never on how fast.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "liftoff/core/metrics.hpp"
#include "liftoff/db/database.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"

namespace liftoff::db {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::block_on;

constexpr Statement kPid{Plane::any, "scantest.pid", "SELECT pg_backend_pid()"};
// When the statement started and ended by the server's clock (FROM runs before the select list).
constexpr Statement kSlowScan{Plane::any,
                              "scantest.slow_scan",
                              "SELECT pg_backend_pid(), extract(epoch FROM statement_timestamp())"
                              "::float8, extract(epoch FROM clock_timestamp())::float8 "
                              "FROM pg_sleep($1::float8)",
                              true,
                              false,
                              true};
// The same statement, not marked as a scan: it goes to the shared connection.
constexpr Statement kSlowUnmarked{Plane::any, "scantest.slow_unmarked",
                                  "SELECT pg_backend_pid() FROM pg_sleep($1::float8)"};

const Uuid kOrgA = *Uuid::parse("00000000-0000-4000-8000-0000000000aa");
const Uuid kOrgB = *Uuid::parse("00000000-0000-4000-8000-0000000000bb");

Scope org_scope(const Uuid& org) {
  return Scope{Tenant::org(org), deadline_after(20s), {}, std::nullopt};
}

struct Ran {
  std::int32_t pid = 0;
  double started = 0, ended = 0;
};

DatabaseOptions one_shared_connection() {
  DatabaseOptions options;
  options.connect = {testing::test_database_url(), {}, "liftoff-test"};
  options.shared_connections = 1;
  options.scans = {.per_org = 1, .total = 2, .queue_per_org = 8};
  return options;
}

// The shared connection's backend, once it is connected (the first statements take the pool while
// it connects).
asio::awaitable<std::int32_t> shared_backend(Database& db) {
  std::int32_t pid = 0;
  for (int i = 0; i < 5; ++i) {
    auto rows = co_await db.query(Intent::read, testing::control_scope(5s), kPid, Params::none());
    if (rows) pid = rows->front().get<std::int32_t>(0);
    co_await testing::sleep_for(20ms);
  }
  co_return pid;
}

asio::awaitable<void> scan(Database& db, Uuid org, double seconds, std::optional<Ran>& out) {
  auto scope = org_scope(org);
  Params params(seconds);
  auto rows = co_await db.query(Intent::read, scope, kSlowScan, params);
  EXPECT_TRUE(rows) << (rows ? "" : rows.error().for_log());
  if (!rows) co_return;
  auto row = rows->front();
  out = Ran{row.get<std::int32_t>(0), row.get<double>(1), row.get<double>(2)};
}

TEST(Scans, AScanRunsApartFromTheSharedConnection) {
  core::Registry registry;
  asio::io_context io(1);  // outlives the database's connections
  Database db(one_shared_connection(), registry, 1);
  block_on(io, [&]() -> asio::awaitable<void> {
    auto shared = co_await shared_backend(db);
    std::optional<Ran> scanned;
    asio::co_spawn(co_await asio::this_coro::executor, scan(db, kOrgA, 1.0, scanned),
                   asio::detached);
    co_await testing::sleep_for(50ms);
    // Authentication's kind of statement, on the shared connection, answered while the scan runs.
    auto rows = co_await db.query(Intent::read, testing::control_scope(5s), kPid, Params::none());
    CO_ASSERT_TRUE(rows);
    EXPECT_FALSE(scanned.has_value());
    EXPECT_EQ(rows->front().get<std::int32_t>(0), shared);
    CO_ASSERT_TRUE(co_await testing::until([&] { return scanned.has_value(); }));
    EXPECT_NE(scanned->pid, shared);
  }());
}

TEST(Scans, StatementsBehindAStuckSharedConnectionTakeThePool) {
  core::Registry registry;
  asio::io_context io(1);  // outlives the database's connections
  Database db(one_shared_connection(), registry, 1);
  block_on(io, [&]() -> asio::awaitable<void> {
    auto shared = co_await shared_backend(db);
    bool slow_done = false;
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&]() -> asio::awaitable<void> {
          Params params(1.0);
          auto r =
              co_await db.query(Intent::read, testing::control_scope(10s), kSlowUnmarked, params);
          EXPECT_TRUE(r);
          if (r) {
            EXPECT_EQ(r->front().get<std::int32_t>(0), shared);
          }
          slow_done = true;
        },
        asio::detached);
    co_await testing::sleep_for(100ms);  // past the age at which the shared connection is stuck
    auto rows = co_await db.query(Intent::read, testing::control_scope(5s), kPid, Params::none());
    CO_ASSERT_TRUE(rows);
    EXPECT_FALSE(slow_done);
    EXPECT_NE(rows->front().get<std::int32_t>(0), shared);
    CO_ASSERT_TRUE(co_await testing::until([&] { return slow_done; }));
  }());
}

TEST(Scans, OneOrganizationsScansTakeTurnsWhileAnothersRunBeside) {
  core::Registry registry;
  asio::io_context io(1);  // outlives the database's connections
  Database db(one_shared_connection(), registry, 1);
  std::optional<Ran> a1, a2, b1;
  block_on(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, scan(db, kOrgA, 0.3, a1), asio::detached);
    asio::co_spawn(ex, scan(db, kOrgA, 0.3, a2), asio::detached);
    asio::co_spawn(ex, scan(db, kOrgB, 0.3, b1), asio::detached);
    CO_ASSERT_TRUE(co_await testing::until([&] { return a1 && a2 && b1; }));
  }());
  // A's two never ran at the same time; B's ran beside A's first.
  auto [first, second] = a1->started < a2->started ? std::pair{*a1, *a2} : std::pair{*a2, *a1};
  EXPECT_GE(second.started, first.ended);
  EXPECT_LT(b1->started, first.ended);
  EXPECT_LT(first.started, b1->ended);
}

}  // namespace
}  // namespace liftoff::db
