// Multiplexed statements on shared connections (Connection::submit, Database::query).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>

#include "liftoff/db/database.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"

namespace liftoff::db {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::block_on;

constexpr Statement kAdd{Plane::any, "pipetest.add", "SELECT $1::int8 + $2::int8"};
constexpr Statement kDivide{Plane::any, "pipetest.divide", "SELECT 10 / $1::int4"};
constexpr Statement kSleep{Plane::any, "pipetest.sleep", "SELECT pg_sleep($1::float8)"};
constexpr Statement kPid{Plane::any, "pipetest.pid", "SELECT pg_backend_pid()"};
constexpr Statement kTerminate{Plane::any, "pipetest.terminate",
                               "SELECT pg_terminate_backend($1::int4)"};
constexpr Statement kTerminateOther{
    Plane::any, "pipetest.terminate_other",
    "SELECT pg_terminate_backend($1::int4) WHERE $1::int4 <> pg_backend_pid()"};

TEST(Pipelined, ConcurrentSubmissionsEachGetTheirOwnAnswer) {
  std::vector<std::optional<std::int64_t>> answers(200);
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    auto ex = co_await asio::this_coro::executor;
    for (std::size_t i = 0; i < answers.size(); ++i) {
      asio::co_spawn(
          ex,
          [&, i]() -> asio::awaitable<void> {
            Params p(static_cast<std::int64_t>(i), std::int64_t{1000});
            auto rows = co_await conn->submit(kAdd, p, deadline_after(10s));
            if (rows) answers[i] = rows->front().get<std::int64_t>(0);
          },
          asio::detached);
    }
    co_return;
  }());
  for (std::size_t i = 0; i < answers.size(); ++i) {
    ASSERT_TRUE(answers[i]) << i;
    EXPECT_EQ(*answers[i], static_cast<std::int64_t>(i) + 1000);
  }
}

TEST(Pipelined, AFailingStatementDoesNotDisturbItsNeighbours) {
  std::vector<Result<Rows>> results;
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    auto ex = co_await asio::this_coro::executor;
    std::vector<std::optional<bool>> ok(30);
    for (int i = 0; i < 30; ++i) {
      asio::co_spawn(
          ex,
          [&, i]() -> asio::awaitable<void> {
            Params p(std::int32_t{i % 3});  // every third divides by zero
            auto rows = co_await conn->submit(kDivide, p, deadline_after(10s));
            ok[i] = static_cast<bool>(rows);
            if (!rows) {
              EXPECT_EQ(rows.error().code, Errc::bad_request);
            } else {
              EXPECT_EQ(rows->front().get<std::int32_t>(0), 10 / (i % 3));
            }
          },
          asio::detached);
    }
    EXPECT_TRUE(co_await testing::until([&] {
      return std::all_of(std::begin(ok), std::end(ok), [](const auto& o) { return o.has_value(); });
    }));
    for (int i = 0; i < 30; ++i) {
      EXPECT_TRUE(ok[i].has_value()) << i;
      if (ok[i]) {
        EXPECT_EQ(*ok[i], i % 3 != 0) << i;
      }
    }
    EXPECT_TRUE(conn->usable());
  }());
}

TEST(Pipelined, DeadlineReturnsTimeoutAndTheConnectionCarriesOn) {
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    Params slow(0.5);
    auto r = co_await conn->submit(kSleep, slow, deadline_after(100ms));
    EXPECT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::timeout);
    Params p(std::int64_t{1}, std::int64_t{2});
    auto next = co_await conn->submit(kAdd, p, deadline_after(5s));  // queued behind the sleep
    CO_ASSERT_TRUE(next);
    EXPECT_EQ(next->front().get<std::int64_t>(0), 3);
  }());
}

// Found under load (10,000 connections, queries past their deadline): the reader touched the
// Statement of a caller that had timed out and returned, whose built SQL was gone (a crash in
// release builds; heap-use-after-free under ASan).
TEST(Pipelined, ABuiltStatementIsAnsweredAfterItsCallerGaveUpAndLeft) {
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    {
      auto sql = std::make_unique<std::string>("SELECT pg_sleep($1::float8), 'built'");
      auto built =
          std::make_unique<Statement>(Statement{Plane::any, "pipetest.built", *sql, false});
      Params slow(0.3);
      auto r = co_await conn->submit(*built, slow, deadline_after(50ms));
      EXPECT_FALSE(r);
      EXPECT_EQ(r.error().code, Errc::timeout);
      sql->assign(sql->size(), '?');  // what a reused buffer would hold
      built.reset();
      sql.reset();
    }
    Params p(std::int64_t{1}, std::int64_t{2});
    auto next = co_await conn->submit(kAdd, p, deadline_after(5s));  // read after the late answer
    EXPECT_TRUE(next) << next.error().detail;
    if (next) {
      EXPECT_EQ(next->front().get<std::int64_t>(0), 3);
    }
  }());
}

// Found under load: a Parse cancelled by statement_timeout left every execute pipelined behind it
// failing with "prepared statement does not exist" (500s); they answer with the Parse's error.
TEST(Pipelined, StatementsBehindAFailedPrepareAnswerWithItsError) {
  static constexpr Statement kBroken{Plane::any, "pipetest.broken",
                                     "SELECT no_such_column FROM pg_class"};
  std::vector<std::optional<Error>> errors(10);
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    auto ex = co_await asio::this_coro::executor;
    for (std::size_t i = 0; i < errors.size(); ++i) {  // one flush: one Parse, ten executes
      asio::co_spawn(
          ex,
          [&, i]() -> asio::awaitable<void> {
            auto r = co_await conn->submit(kBroken, Params::none(), deadline_after(5s));
            errors[i] = r ? Error{Errc::internal, "succeeded", {}} : r.error();
          },
          asio::detached);
    }
    co_return;
  }());
  for (const auto& e : errors) {
    ASSERT_TRUE(e);
    EXPECT_NE(e->cause.find("SQLSTATE 42703"), std::string::npos) << e->cause;
  }
}

TEST(Pipelined, AKilledBackendFailsInFlightStatementsAsUnavailable) {
  block_on([&]() -> asio::awaitable<void> {
    auto victim = co_await testing::connect_test();
    auto killer = co_await testing::connect_test();
    auto pid = co_await victim->submit(kPid, Params::none(), deadline_after(5s));
    Params slow(2.0);
    auto ex = co_await asio::this_coro::executor;
    std::optional<Errc> outcome;
    bool answered = false;
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          auto r = co_await victim->submit(kSleep, slow, deadline_after(10s));
          outcome = r ? std::optional<Errc>{} : r.error().code;
          answered = true;
        },
        asio::detached);
    Params target(pid->front().get<std::int32_t>(0));
    // The sleep is on its way when the victim's backend is terminated.
    EXPECT_TRUE(co_await testing::until([&] { return victim->in_flight() == 1; }));
    EXPECT_TRUE(co_await killer->submit(kTerminate, target, deadline_after(5s)));
    EXPECT_TRUE(co_await testing::until([&] { return !victim->usable(); }));
    // The connection breaks before its submitter is resumed with the answer (once in 20 runs the
    // outcome was read too early, and the submitter then wrote into this frame after it ended).
    CO_ASSERT_TRUE(co_await testing::until([&] { return answered; }));
    EXPECT_EQ(outcome, Errc::unavailable);
    EXPECT_FALSE(victim->usable());
    auto after = co_await victim->submit(kPid, Params::none(), deadline_after(1s));
    EXPECT_FALSE(after);
  }());
}

TEST(Pipelined, DatabaseQueriesShareAFewConnectionsAndRecoverFromALostOne) {
  core::Registry registry;
  asio::io_context io(1);
  DatabaseOptions options;
  options.connect = {testing::test_database_url(), {}, "liftoff-test"};
  options.shared_connections = 2;
  options.pool.backoff_min = 10ms;
  // A statement spills to the pool while both shared connections have one waiting at their head
  // for a few milliseconds, which a loaded machine makes likely: the pool's two are the bound.
  options.pool.max_size = 2;
  Database db(options, registry, 1);
  block_on(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    // Warm up: the first queries fall back to the pool while the shared connections connect.
    for (int i = 0; i < 5; ++i) {
      (void)co_await db.query(Intent::read, testing::control_scope(5s), kPid, Params::none());
      asio::steady_timer t(ex, 20ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    std::set<std::int32_t> pids;
    int answered = 0;
    for (int i = 0; i < 100; ++i) {
      asio::co_spawn(
          ex,
          [&]() -> asio::awaitable<void> {
            auto r =
                co_await db.query(Intent::read, testing::control_scope(5s), kPid, Params::none());
            if (r) {
              pids.insert(r->front().get<std::int32_t>(0));
              ++answered;
            }
          },
          asio::detached);
    }
    EXPECT_TRUE(co_await testing::until([&] { return answered == 100; }));
    EXPECT_EQ(answered, 100);
    // 100 concurrent statements over the two shared connections (and, spilled, the pool's two).
    EXPECT_LE(pids.size(), 4u);

    for (auto pid : pids) {
      Params target(pid);
      auto lease = co_await db.acquire(Intent::write, testing::control_scope(5s));
      // Not the lease's own backend (a spilled statement may have run on it).
      EXPECT_TRUE(co_await (*lease)->query(kTerminateOther, target, deadline_after(5s)));
    }
    // Statements fail while the loss is discovered, then succeed on new connections.
    Result<Rows> r = make_error(Errc::unavailable, "not tried");
    for (auto end = Clock::now() + 30s; !r && Clock::now() < end;) {
      r = co_await db.query(Intent::read, testing::control_scope(5s), kPid, Params::none());
      if (!r) co_await testing::sleep_for(20ms);
    }
    EXPECT_TRUE(r);
  }());
}

// A worker stopped while one of its shared connections is still connecting: that connection is
// dropped when it arrives, not left in its slot to outlive the worker's event loop (CI once saw
// its destructor touch the destroyed loop's reactor, under ASan, when the Database outlived it).
TEST(Pipelined, AConnectionStillConnectingWhenItsWorkerStopsIsDropped) {
  core::Registry registry;
  DatabaseOptions options;
  options.connect = {testing::test_database_url(), {}, "liftoff-test"};
  options.shared_connections = 1;
  Database db(options, registry, 1);
  bool answered = false;
  {
    asio::io_context io(1);  // ends before the Database, as a worker's loop does
    block_on(io, [&]() -> asio::awaitable<void> {
      auto ex = co_await asio::this_coro::executor;
      // The first query finds no shared connection: it starts one, then leases from the pool.
      asio::co_spawn(
          ex,
          [&]() -> asio::awaitable<void> {
            (void)co_await db.query(Intent::read, testing::control_scope(5s), kPid, Params::none());
            answered = true;
          },
          asio::detached);
      db.stop_worker(0);  // before the shared connection is made
      co_return;
    }());
  }
  EXPECT_TRUE(answered);
}

}  // namespace
}  // namespace liftoff::db

namespace liftoff::db {
namespace {
// A server that stops answering without closing the connection (its backend frozen with SIGSTOP,
// as a half-open connection after a failover looks from here): the watchdog closes the connection
// and the waiting statement fails with unavailable, instead of every statement timing out until
// TCP gives up.
TEST(Pipelined, AConnectionWhoseServerFallsSilentIsClosedByTheWatchdog) {
  std::optional<Result<Rows>> answer;
  bool usable_after = true;
  int backend = 0;
  block_on([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    ConnectOptions options{testing::test_database_url(), {}, "watchdog-test"};
    options.silence_limit = std::chrono::milliseconds(500);
    auto connected = co_await Connection::connect(executor, options, deadline_after(10s));
    EXPECT_TRUE(connected);
    if (!connected) co_return;
    std::shared_ptr<Connection> conn(std::move(*connected));
    auto pid = co_await conn->submit(kPid, Params::none(), deadline_after(10s));
    EXPECT_TRUE(pid);
    if (!pid) co_return;
    backend = pid->front().get<std::int32_t>(0);
    EXPECT_EQ(::kill(backend, SIGSTOP), 0);
    // A deadline far past the watchdog: what ends the wait must be the watchdog.
    answer =
        co_await conn->submit(kAdd, Params(std::int64_t{1}, std::int64_t{2}), deadline_after(60s));
    usable_after = conn->usable();
  }());
  if (backend > 0) ::kill(backend, SIGCONT);
  ASSERT_TRUE(answer);
  ASSERT_FALSE(*answer);
  EXPECT_EQ(answer->error().code, Errc::unavailable) << answer->error().detail;
  EXPECT_FALSE(usable_after);
}
}  // namespace
}  // namespace liftoff::db
