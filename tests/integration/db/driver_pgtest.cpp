// The driver against a real PostgreSQL 15 (tests/support/postgres.cpp starts it).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "liftoff/db/connection.hpp"
#include "liftoff/db/database.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"

namespace liftoff::db {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::block_on;

constexpr Statement kEcho{
    Plane::any, "test.echo",
    "SELECT $1::int4, $2::int8, $3::text, $4::bool, $5::timestamptz, $6::jsonb, $7::bytea, "
    "$8::uuid, $9::float8"};
constexpr Statement kAdd{Plane::any, "test.add", "SELECT $1::int8 + $2::int8"};
constexpr Statement kSleep{Plane::any, "test.sleep", "SELECT pg_sleep($1::float8)"};
constexpr Statement kBackendPid{Plane::any, "test.pid", "SELECT pg_backend_pid()"};
constexpr Statement kCreateTable{
    Plane::any, "test.create",
    "CREATE TABLE IF NOT EXISTS driver_items (id int8 PRIMARY KEY, v text)"};
constexpr Statement kInsert{Plane::any, "test.insert",
                            "INSERT INTO driver_items (id, v) VALUES ($1, $2)"};
constexpr Statement kCount{Plane::any, "test.count",
                           "SELECT count(*) FROM driver_items WHERE id = $1"};
constexpr Statement kBadSql{Plane::any, "test.bad", "SELEC 1"};
constexpr Statement kDivide{Plane::any, "test.divide", "SELECT 1 / $1::int4"};

Deadline soon() {
  return deadline_after(5s);
}

TEST(Driver, RoundTripsEveryTypeInBinary) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    auto ts = Timestamp(std::chrono::microseconds(1'700'000'000'123'456));
    auto uuid = *Uuid::parse("0189c0de-1234-7abc-8def-0123456789ab");
    Params p(std::int32_t{-42}, std::int64_t{9'000'000'000}, std::string("héllo 'quoted' \"x\""),
             true, ts, Json{R"({"a": [1, 2]})"}, Bytes{std::string("\0\1\2\xff", 4)}, uuid, 2.5);
    auto rows = co_await conn->query(kEcho, p, soon());
    CO_ASSERT_OK(rows);
    auto row = rows->front();
    EXPECT_EQ(row.get<std::int32_t>(0), -42);
    EXPECT_EQ(row.get<std::int64_t>(1), 9'000'000'000);
    EXPECT_EQ(row.get<std::string>(2), "héllo 'quoted' \"x\"");
    EXPECT_TRUE(row.get<bool>(3));
    EXPECT_EQ(row.get<Timestamp>(4), ts);
    EXPECT_EQ(row.get<Json>(5).text, R"({"a": [1, 2]})");
    EXPECT_EQ(row.get<Bytes>(6).data, std::string("\0\1\2\xff", 4));
    EXPECT_EQ(row.get<Uuid>(7), uuid);
    EXPECT_DOUBLE_EQ(row.get<double>(8), 2.5);
  }());
}

TEST(Driver, NullsAreExplicit) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    Params p(std::optional<std::int32_t>{}, std::optional<std::int64_t>{},
             std::optional<std::string>{}, std::optional<bool>{}, std::optional<Timestamp>{},
             std::optional<Json>{}, std::optional<Bytes>{}, std::optional<Uuid>{},
             std::optional<double>{});
    auto rows = co_await conn->query(kEcho, p, soon());
    CO_ASSERT_TRUE(rows);
    auto row = rows->front();
    for (int i = 0; i < 9; ++i) EXPECT_TRUE(row.is_null(i));
    EXPECT_EQ(row.get<std::optional<std::int64_t>>(1), std::nullopt);
    EXPECT_EQ(row.get<std::optional<std::string>>(2), std::nullopt);
    EXPECT_THROW((void)row.get<std::int64_t>(1), DecodeError);  // NULL into a non-optional is a bug
    EXPECT_THROW((void)row.get<bool>(2), DecodeError);          // so is the wrong type
  }());
}

TEST(Driver, PreparesEachStatementOncePerConnection) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    for (std::int64_t i = 0; i < 5; ++i) {
      Params p(i, std::int64_t{1});
      auto rows = co_await conn->query(kAdd, p, soon());
      EXPECT_EQ(rows->front().get<std::int64_t>(0), i + 1);
    }
    EXPECT_EQ(conn->prepared_statements(), 1u);
  }());
}

TEST(Driver, BuiltStatementsArePreparedOncePerShapeAndFailuresForgotten) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    for (int shape = 0; shape < 2; ++shape) {
      // SQL built at run time, in a string that dies after each query.
      for (std::int64_t i = 0; i < 3; ++i) {
        std::string sql = "SELECT $1::int8 + " + std::to_string(shape);
        Statement built{Plane::any, "test.built", sql, false};
        Params p(i);
        auto rows = co_await conn->query(built, p, soon());
        EXPECT_TRUE(rows);
        if (rows) {
          EXPECT_EQ(rows->front().get<std::int64_t>(0), i + shape);
        }
      }
    }
    // A built statement that fails to parse is not remembered: fixed, the same text works.
    std::string bad = "SELEC $1::int8";
    Statement broken{Plane::any, "test.built", bad, false};
    Params p(std::int64_t{1});
    EXPECT_FALSE(co_await conn->query(broken, p, soon()));
    EXPECT_FALSE(co_await conn->query(broken, p, soon()));  // fails again, not "no such statement"
    bad = "SELECT $1::int8";
    Statement fixed{Plane::any, "test.built", bad, false};
    auto rows = co_await conn->query(fixed, p, soon());
    EXPECT_TRUE(rows) << (rows ? "" : rows.error().detail);
  }());
}

constexpr Statement kPlanCounts{
    Plane::any, "test.plan_counts",
    "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1"};
constexpr Statement kPlanCacheMode{Plane::any, "test.plan_cache_mode",
                                   "SELECT current_setting('plan_cache_mode')"};

TEST(Driver, AGenericPlanStatementIsPlannedOnceAndTheSettingEndsWithItsSegment) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    // PostgreSQL plans a prepared statement for its values at its first five executions.
    std::string generic_sql = "SELECT $1::int8 + 7", custom_sql = "SELECT $1::int8 + 8";
    Statement generic{Plane::any, "test.generic", generic_sql, false, true};
    Statement custom{Plane::any, "test.custom", custom_sql, false};
    for (std::int64_t i = 0; i < 3; ++i) {
      Params p(i);
      auto a = co_await conn->query(generic, p, soon());
      auto b = co_await conn->query(custom, p, soon());
      EXPECT_TRUE(a && b);
      if (a) {
        EXPECT_EQ(a->front().get<std::int64_t>(0), i + 7);
      }
    }
    Params of_generic(generic_sql), of_custom(custom_sql);
    auto counted = co_await conn->query(kPlanCounts, of_generic, soon());
    EXPECT_TRUE(counted && counted->size() == 1);
    if (counted && counted->size() == 1) {
      EXPECT_EQ(counted->front().get<std::int64_t>(0), 3);
      EXPECT_EQ(counted->front().get<std::int64_t>(1), 0);
    }
    counted = co_await conn->query(kPlanCounts, of_custom, soon());
    EXPECT_TRUE(counted && counted->size() == 1);
    if (counted && counted->size() == 1) {
      EXPECT_EQ(counted->front().get<std::int64_t>(1), 3);
    }

    // A failing one reports its own error, in a pipeline and multiplexed alike; nothing after it
    // runs with the setting.
    std::string divide_sql = "SELECT 1 / $1::int4";
    Statement divide{Plane::any, "test.generic_divide", divide_sql, false, true};
    std::vector<Query> batch{{&divide, Params(std::int32_t{0})},
                             {&kPlanCacheMode, Params()},
                             {&divide, Params(std::int32_t{1})}};
    auto results = co_await conn->pipeline(batch, soon());
    EXPECT_FALSE(results[0]);
    if (!results[0]) {  // division_by_zero
      EXPECT_EQ(results[0].error().code, Errc::bad_request);
    }
    EXPECT_TRUE(results[1]);
    if (results[1]) {
      EXPECT_EQ(results[1]->front().get<std::string>(0), "auto");
    }
    EXPECT_TRUE(results[2]);
    Params zero(std::int32_t{0});
    auto multiplexed = co_await conn->submit(divide, zero, soon());
    EXPECT_FALSE(multiplexed);
    if (!multiplexed) {
      EXPECT_EQ(multiplexed.error().code, Errc::bad_request);
    }
    Params none;
    auto mode = co_await conn->submit(kPlanCacheMode, none, soon());
    EXPECT_TRUE(mode);
    if (mode) {
      EXPECT_EQ(mode->front().get<std::string>(0), "auto");
    }
    EXPECT_TRUE(conn->usable());
  }());
}

TEST(Driver, TheEmbeddedClusterCompressesItsWalAndCheckpointsLessOften) {
  static constexpr Statement kWalSettings{
      Plane::any, "test.wal_settings",
      "SELECT current_setting('wal_compression') || ' ' || current_setting('max_wal_size') || ' ' "
      "|| current_setting('checkpoint_timeout')"};
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    Params none;
    auto rows = co_await conn->query(kWalSettings, none, soon());
    EXPECT_TRUE(rows);
    if (rows) {
      EXPECT_EQ(rows->front().get<std::string>(0), "lz4 4GB 15min");
    }
  }());
}

// The embedded cluster's own URL goes over its Unix socket (no TCP between a server and the
// database on its host), and the cluster still listens on 127.0.0.1 for everything else.
TEST(Driver, TheEmbeddedClusterIsReachedOverItsUnixSocketAndStillListensOnTcp) {
  static constexpr Statement kServerAddress{Plane::any, "test.server_address",
                                            "SELECT coalesce(host(inet_server_addr()), 'unix')"};
  auto url = testing::test_postgres().url();
  EXPECT_NE(url.find("@/liftoff_test?host=%2F"), std::string::npos) << url;
  constexpr std::string_view kUser = "postgresql://liftoff:";
  auto password = url.substr(kUser.size(), url.find('@') - kUser.size());
  auto tcp_url = fmt::format("postgresql://liftoff:{}@127.0.0.1:{}/liftoff_test", password,
                             testing::test_postgres().options().port);
  block_on([&]() -> asio::awaitable<void> {
    Params none;
    for (const auto& [to, expected] : {std::pair{url, "unix"}, std::pair{tcp_url, "127.0.0.1"}}) {
      auto conn = co_await testing::connect_test(to);
      if (!conn) continue;
      auto rows = co_await conn->query(kServerAddress, none, soon());
      EXPECT_TRUE(rows);
      if (rows) {
        EXPECT_EQ(rows->front().get<std::string>(0), expected);
      }
    }
  }());
}

TEST(Driver, PipelineRunsIndependentStatementsAndIsolatesFailures) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    std::vector<Query> batch;
    for (std::int64_t i = 0; i < 50; ++i) batch.push_back({&kAdd, Params(i, std::int64_t{100})});
    batch.push_back({&kDivide, Params(std::int32_t{0})});  // division by zero in the middle
    batch.push_back({&kAdd, Params(std::int64_t{1}, std::int64_t{1})});
    auto results = co_await conn->pipeline(batch, soon());
    EXPECT_EQ(results.size(), batch.size());
    for (std::int64_t i = 0; i < 50; ++i)
      EXPECT_EQ(results[i]->front().get<std::int64_t>(0), i + 100);
    EXPECT_FALSE(results[50]);
    EXPECT_EQ(results[50].error().code, Errc::bad_request);  // 22012 division_by_zero
    EXPECT_EQ(results[51]->front().get<std::int64_t>(0), 2);
    EXPECT_TRUE(conn->usable());
  }());
}

TEST(Driver, AMisnamedStatementInAPipelineFailsAloneAndLeavesNothingUnread) {
  // Same name as kAdd, other SQL: a bug in the caller, refused before anything is sent for it.
  static constexpr Statement kImpostor{Plane::any, "test.add", "SELECT 42"};
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    Params warm(std::int64_t{1}, std::int64_t{1});
    EXPECT_TRUE(co_await conn->query(kAdd, warm, soon()));  // kAdd is now prepared
    std::vector<Query> batch;
    batch.push_back({&kAdd, Params(std::int64_t{1}, std::int64_t{2})});
    batch.push_back({&kImpostor, Params{}});
    batch.push_back({&kAdd, Params(std::int64_t{3}, std::int64_t{4})});
    auto results = co_await conn->pipeline(batch, soon());
    EXPECT_EQ(results[0]->front().get<std::int64_t>(0), 3);
    EXPECT_FALSE(results[1]);
    EXPECT_EQ(results[1].error().code, Errc::internal);
    EXPECT_EQ(results[2]->front().get<std::int64_t>(0), 7);
    Params next(std::int64_t{10}, std::int64_t{20});
    auto after = co_await conn->query(kAdd, next, soon());  // reads its own result, not a leftover
    EXPECT_EQ(after->front().get<std::int64_t>(0), 30);
  }());
}

TEST(Driver, SyntaxErrorIsInternalAndTheConnectionStaysUsable) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    auto bad = co_await conn->query(kBadSql, Params::none(), soon());
    EXPECT_FALSE(bad);
    EXPECT_EQ(bad.error().code, Errc::internal);
    EXPECT_NE(bad.error().cause.find("42601"), std::string::npos);
    Params p(std::int64_t{2}, std::int64_t{3});
    auto good = co_await conn->query(kAdd, p, soon());
    EXPECT_EQ(good->front().get<std::int64_t>(0), 5);
  }());
}

TEST(Driver, DeadlineCancelsTheQueryAsTimeout) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    Params p(5.0);
    auto slow = co_await conn->query(kSleep, p, deadline_after(200ms));
    EXPECT_FALSE(slow);
    EXPECT_EQ(slow.error().code, Errc::timeout);
    // The cancel ended the statement, not the connection.
    EXPECT_TRUE(conn->usable());
    Params q(std::int64_t{1}, std::int64_t{1});
    auto next = co_await conn->query(kAdd, q, soon());
    EXPECT_TRUE(next);
  }());
}

TEST(Driver, UniqueViolationIsConflict) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    EXPECT_TRUE(co_await conn->query(kCreateTable, Params::none(), soon()));
    Params row(std::int64_t{1001}, std::string("a"));
    EXPECT_TRUE(co_await conn->query(kInsert, row, soon()));
    auto dup = co_await conn->query(kInsert, row, soon());
    CO_ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, Errc::conflict);
    EXPECT_EQ(dup.error().constraint, "driver_items_pkey");
    EXPECT_EQ(dup.error().detail, "the change conflicts with existing data");
  }());
}

// The SQLSTATEs of constraints and locks, each mapped to what the caller does next: an exclusion
// violation is a conflict (409), a check violation invalid input (422), a lock not available (a
// NOWAIT, a lock_timeout) worth retrying (503 with Retry-After: 0).
TEST(Driver, ExclusionViolationIsConflict) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    EXPECT_TRUE(co_await conn->execute_script(
        "CREATE TEMP TABLE driver_bookings (during int4range, EXCLUDE USING gist (during WITH &&))",
        soon()));
    constexpr Statement kBook{Plane::any, "test.book",
                              "INSERT INTO driver_bookings VALUES (int4range($1::int4, $2::int4))"};
    EXPECT_TRUE(co_await conn->query(kBook, Params(std::int32_t{1}, std::int32_t{5}), soon()));
    auto overlap = co_await conn->query(kBook, Params(std::int32_t{3}, std::int32_t{8}), soon());
    CO_ASSERT_FALSE(overlap);
    EXPECT_EQ(overlap.error().code, Errc::conflict);
    EXPECT_NE(overlap.error().cause.find("23P01"), std::string::npos) << overlap.error().cause;
  }());
}

TEST(Driver, CheckViolationIsValidationFailed) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    EXPECT_TRUE(co_await conn->execute_script(
        "CREATE TEMP TABLE driver_checked (n int4 CHECK (n > 0))", soon()));
    constexpr Statement kPut{Plane::any, "test.put_checked",
                             "INSERT INTO driver_checked VALUES ($1::int4)"};
    auto negative = co_await conn->query(kPut, Params(std::int32_t{-1}), soon());
    CO_ASSERT_FALSE(negative);
    EXPECT_EQ(negative.error().code, Errc::validation_failed);
    EXPECT_NE(negative.error().cause.find("23514"), std::string::npos);
    // The constraint's name comes from libpq's field, and PostgreSQL's text stays out of the
    // detail a client may see.
    EXPECT_EQ(negative.error().constraint, "driver_checked_n_check");
    EXPECT_EQ(negative.error().detail, "a value is not acceptable to the database");
  }());
}

// A value too large for a btree index (SQLSTATE 54000) is the client's to fix: 422, not 500.
TEST(Driver, AValueTooLargeToIndexIsValidationFailed) {
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    EXPECT_TRUE(co_await conn->execute_script(
        "CREATE TEMP TABLE driver_indexed (t text); CREATE INDEX ON driver_indexed (t)", soon()));
    constexpr Statement kPut{Plane::any, "test.put_indexed",
                             "INSERT INTO driver_indexed SELECT string_agg(md5(i::text), '') "
                             "FROM generate_series(1, $1::int4) i"};
    auto huge = co_await conn->query(kPut, Params(std::int32_t{400}), soon());  // 12.8 kB
    CO_ASSERT_FALSE(huge);
    EXPECT_EQ(huge.error().code, Errc::validation_failed);
    EXPECT_NE(huge.error().cause.find("54000"), std::string::npos) << huge.error().cause;
    EXPECT_EQ(huge.error().detail.find("driver_indexed"), std::string::npos);
  }());
}

TEST(Driver, LockNotAvailableIsRetryable) {
  block_on([]() -> asio::awaitable<void> {
    auto holder = co_await testing::connect_test();
    auto other = co_await testing::connect_test();
    EXPECT_TRUE(co_await holder->execute_script(
        "CREATE TABLE IF NOT EXISTS driver_locked (id int8 PRIMARY KEY); "
        "INSERT INTO driver_locked VALUES (1) ON CONFLICT DO NOTHING",
        soon()));
    EXPECT_TRUE(co_await holder->execute_script(
        "BEGIN; SELECT id FROM driver_locked WHERE id = 1 FOR UPDATE", soon()));
    constexpr Statement kTake{Plane::any, "test.take_nowait",
                              "SELECT id FROM driver_locked WHERE id = 1 FOR UPDATE NOWAIT"};
    auto taken = co_await other->query(kTake, Params::none(), soon());
    CO_ASSERT_FALSE(taken);
    EXPECT_EQ(taken.error().code, Errc::retryable);
    EXPECT_NE(taken.error().cause.find("55P03"), std::string::npos);
    EXPECT_TRUE(co_await holder->execute_script("ROLLBACK", soon()));
    EXPECT_TRUE(co_await other->query(kTake, Params::none(), soon()));
  }());
}

// A deferred constraint is checked when a statement's implicit transaction commits: at the sync
// that ends its segment, after the statement itself reported success. The write is then rolled
// back, so the caller must get the error; it was told "inserted" before (an acknowledged write
// that was never stored).
TEST(Driver, AnErrorAtTheSegmentsSyncFailsItsStatement) {
  static constexpr Statement kDeferred{
      Plane::any, "test.deferred",
      "CREATE TEMP TABLE driver_deferred (id int8 UNIQUE DEFERRABLE INITIALLY DEFERRED)"};
  static constexpr Statement kInsertDeferred{Plane::any, "test.insert_deferred",
                                             "INSERT INTO driver_deferred (id) VALUES ($1)"};
  static constexpr Statement kCountDeferred{Plane::any, "test.count_deferred",
                                            "SELECT count(*) FROM driver_deferred"};
  block_on([]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test();
    EXPECT_TRUE(co_await conn->query(kDeferred, Params::none(), soon()));
    Params row(std::int64_t{7});
    EXPECT_TRUE(co_await conn->query(kInsertDeferred, row, soon()));
    auto exclusive = co_await conn->query(kInsertDeferred, row, soon());
    EXPECT_FALSE(exclusive);
    if (!exclusive) {
      EXPECT_EQ(exclusive.error().code, Errc::conflict) << exclusive.error().detail;
    }
    auto pipelined = co_await conn->submit(kInsertDeferred, row, soon());
    EXPECT_FALSE(pipelined);
    if (!pipelined) {
      EXPECT_EQ(pipelined.error().code, Errc::conflict) << pipelined.error().detail;
    }
    auto count = co_await conn->query(kCountDeferred, Params::none(), soon());
    EXPECT_TRUE(count);
    if (count) {
      EXPECT_EQ(count->front().get<std::int64_t>(0), 1);
    }
  }());
}

TEST(Driver, ConnectFailureIsUnavailable) {
  block_on([]() -> asio::awaitable<void> {
    ConnectOptions options{
        "postgresql://nobody:wrong@127.0.0.1:" + std::to_string(testing::free_port()) + "/x",
        {},
        "liftoff-test"};
    auto conn = co_await Connection::connect(co_await asio::this_coro::executor, options, soon());
    EXPECT_FALSE(conn);
    EXPECT_EQ(conn.error().code, Errc::unavailable);
  }());
}

class TransactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DatabaseOptions options;
    options.connect = {testing::test_database_url(), {}, "liftoff-test"};
    options.pool.max_size = 1;  // forces the same connection to be reused
    db = std::make_unique<Database>(options, registry, 1);
  }
  // The io_context outlives the database: pooled connections hold descriptors registered with it.
  asio::io_context io{1};
  core::Registry registry;
  std::unique_ptr<Database> db;
};

TEST_F(TransactionTest, CommitPersistsRollbackDiscards) {
  block_on(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(
        co_await db->query(Intent::write, testing::control_scope(), kCreateTable, Params::none()));
    {
      auto tx = co_await db->begin(testing::control_scope());
      CO_ASSERT_TRUE(tx);
      Params row(std::int64_t{2001}, std::string("committed"));
      EXPECT_TRUE(co_await tx->query(kInsert, row));
      EXPECT_TRUE(co_await tx->commit());
    }
    {
      auto tx = co_await db->begin(testing::control_scope());
      Params row(std::int64_t{2002}, std::string("rolled back"));
      EXPECT_TRUE(co_await tx->query(kInsert, row));
      EXPECT_TRUE(co_await tx->rollback());
    }
    Params a(std::int64_t{2001});
    Params b(std::int64_t{2002});
    auto committed =
        co_await db->query(Intent::read_your_writes, testing::control_scope(), kCount, a);
    auto discarded =
        co_await db->query(Intent::read_your_writes, testing::control_scope(), kCount, b);
    EXPECT_EQ(committed->front().get<std::int64_t>(0), 1);
    EXPECT_EQ(discarded->front().get<std::int64_t>(0), 0);
  }());
}

TEST_F(TransactionTest, AbandonedTransactionIsRolledBackBeforeReuse) {
  block_on(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(
        co_await db->query(Intent::write, testing::control_scope(), kCreateTable, Params::none()));
    int pid = 0;
    {
      auto tx = co_await db->begin(testing::control_scope());
      Params row(std::int64_t{3001}, std::string("abandoned"));
      EXPECT_TRUE(co_await tx->query(kInsert, row));
      auto p = co_await tx->query(kBackendPid, Params::none());
      pid = p->front().get<std::int32_t>(0);
      // Leaves scope without commit or rollback: an early return on some error path.
    }
    auto timer = asio::steady_timer(co_await asio::this_coro::executor, 50ms);
    co_await timer.async_wait(asio::use_awaitable);
    auto lease = co_await db->acquire(Intent::write, testing::control_scope());
    auto p = co_await (*lease)->query(kBackendPid, Params::none(), soon());
    EXPECT_EQ(p->front().get<std::int32_t>(0), pid);  // same pooled connection (pool size 1)
    EXPECT_EQ((*lease)->transaction_state(), TransactionState::idle);
    Params id(std::int64_t{3001});
    auto count = co_await (*lease)->query(kCount, id, soon());
    EXPECT_EQ(count->front().get<std::int64_t>(0), 0);
  }());
}

TEST_F(TransactionTest, ErrorInsideTransactionFailsCommit) {
  block_on(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(
        co_await db->query(Intent::write, testing::control_scope(), kCreateTable, Params::none()));
    {
      auto tx = co_await db->begin(testing::control_scope());
      Params row(std::int64_t{4001}, std::string("x"));
      EXPECT_TRUE(co_await tx->query(kInsert, row));
      EXPECT_FALSE(co_await tx->query(kInsert, row));  // duplicate: aborts the transaction
      auto committed = co_await tx->commit();
      EXPECT_FALSE(committed);
    }  // the transaction owns the only connection until here
    Params id(std::int64_t{4001});
    auto count = co_await db->query(Intent::write, testing::control_scope(), kCount, id);
    EXPECT_TRUE(count) << (count ? "" : count.error().detail);
    if (count) {
      EXPECT_EQ(count->front().get<std::int64_t>(0), 0);
    }
  }());
}

// BEGIN goes out with the first statement: the statement runs inside the transaction BEGIN opened
// (its isolation level), a failing first statement fails the commit, and a transaction that ran
// nothing commits and rolls back without a word to the server.
TEST_F(TransactionTest, BeginTravelsWithTheFirstStatement) {
  static constexpr Statement kIsolation{Plane::any, "test.isolation",
                                        "SELECT current_setting('transaction_isolation')"};
  block_on(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(
        co_await db->query(Intent::write, testing::control_scope(), kCreateTable, Params::none()));
    {
      auto tx = co_await db->begin(testing::control_scope(), Isolation::repeatable_read);
      auto level = co_await tx->query(kIsolation, Params::none());
      EXPECT_TRUE(level);
      if (level) {
        EXPECT_EQ(level->front().get<std::string>(0), "repeatable read");
      }
      EXPECT_TRUE(co_await tx->commit());
    }
    {
      auto tx = co_await db->begin(testing::control_scope());
      Params row(std::int64_t{6001}, std::string("first"));
      EXPECT_FALSE(co_await tx->query(kDivide, Params(std::int32_t{0})));
      EXPECT_FALSE(co_await tx->query(kInsert, row));  // the transaction is aborted
      EXPECT_FALSE(co_await tx->commit());
    }
    {
      auto tx = co_await db->begin(testing::control_scope());
      EXPECT_TRUE(co_await tx->commit());
    }
    {
      auto tx = co_await db->begin(testing::control_scope());
      EXPECT_TRUE(co_await tx->rollback());
    }
    auto lease = co_await db->acquire(Intent::write, testing::control_scope());
    EXPECT_EQ((*lease)->transaction_state(), TransactionState::idle);
    Params id(std::int64_t{6001});
    auto count = co_await (*lease)->query(kCount, id, soon());
    EXPECT_TRUE(count);
    if (count) {
      EXPECT_EQ(count->front().get<std::int64_t>(0), 0);
    }
  }());
}

TEST_F(TransactionTest, StatementMetricsAreLabelledByName) {
  block_on(io, [&]() -> asio::awaitable<void> {
    Params p(std::int64_t{1}, std::int64_t{2});
    EXPECT_TRUE(co_await db->query(Intent::read, testing::control_scope(), kAdd, p));
  }());
  auto text = registry.render();
  EXPECT_NE(text.find("db_query_duration_seconds_count{statement=\"test.add\"} 1"),
            std::string::npos)
      << text;
}

TEST_F(TransactionTest, CommitAfterRunsTheLastStatementAndCommitsInOneGo) {
  block_on(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(
        co_await db->query(Intent::write, testing::control_scope(), kCreateTable, Params::none()));
    {
      auto tx = co_await db->begin(testing::control_scope());
      Params row(std::int64_t{5001}, std::string("last"));
      auto done = co_await tx->commit_after(kInsert, row);
      EXPECT_TRUE(done) << (done ? "" : done.error().detail);
      EXPECT_FALSE(tx->open());
    }
    {
      // The last statement fails: nothing of the transaction survives.
      auto tx = co_await db->begin(testing::control_scope());
      Params fresh(std::int64_t{5002}, std::string("x"));
      EXPECT_TRUE(co_await tx->query(kInsert, fresh));
      Params duplicate(std::int64_t{5001}, std::string("again"));
      auto failed = co_await tx->commit_after(kInsert, duplicate);
      EXPECT_FALSE(failed);
      if (!failed) co_return;
      EXPECT_EQ(failed.error().code, Errc::conflict);
    }
    Params a(std::int64_t{5001});
    Params b(std::int64_t{5002});
    auto kept = co_await db->query(Intent::write, testing::control_scope(), kCount, a);
    auto gone = co_await db->query(Intent::write, testing::control_scope(), kCount, b);
    EXPECT_EQ(kept->front().get<std::int64_t>(0), 1);
    EXPECT_EQ(gone->front().get<std::int64_t>(0), 0);
  }());
}

}  // namespace
}  // namespace liftoff::db
