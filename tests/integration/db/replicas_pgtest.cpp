// The embedded PostgreSQL with streaming replicas (issue 17, first step): `liftoff pg` starts
// replicas beside its primary, each a pg_basebackup of it streaming through its own slot.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "liftoff/core/metrics.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/db/embedded_postgres.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"

namespace liftoff::testing {
namespace {
using namespace std::chrono_literals;

// What `sql` answers on `url` once it answers `want`, within 20 s.
bool eventually_answers(const std::string& url, const std::string& sql, const std::string& want) {
  for (auto end = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(50ms)) {
    if (scalar(url, sql) == want) return true;
  }
  return false;
}

TEST(EmbeddedReplicas, AReplicaStreamsThePrimarysWritesThroughItsSlot) {
  auto cluster = start_cluster("liftoff_replicas", 2);
  ASSERT_TRUE(cluster);
  auto& pg = cluster->pg;
  const auto& options = pg->options();
  auto replicas = pg->replicas();
  ASSERT_EQ(replicas.size(), 2u);

  ASSERT_TRUE(run_sql(pg->url(), "CREATE TABLE notes (id int PRIMARY KEY, text text)"));
  ASSERT_TRUE(run_sql(pg->url(), "INSERT INTO notes VALUES (1, 'written on the primary')"));
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    const auto& replica = replicas[i];
    EXPECT_EQ(replica.options().port, options.port + i + 1);
    EXPECT_TRUE(replica.running());
    EXPECT_EQ(scalar(replica.url(), "SELECT pg_is_in_recovery()"), "t");
    EXPECT_TRUE(eventually_answers(replica.url(), "SELECT text FROM notes WHERE id = 1",
                                   "written on the primary"))
        << "replica " << i + 1;
    // A replica is read-only.
    PGconn* conn = PQconnectdb(replica.url().c_str());
    PGresult* refused = PQexec(conn, "INSERT INTO notes VALUES (2, 'x')");
    EXPECT_EQ(PQresultStatus(refused), PGRES_FATAL_ERROR);
    PQclear(refused);
    PQfinish(conn);
    EXPECT_EQ(scalar(pg->url(),
                     "SELECT active FROM pg_replication_slots WHERE slot_name = "
                     "'liftoff_replica_" +
                         std::to_string(i + 1) + "'"),
              "t");
  }

  // Stopped and started again: the same replicas, no new copy, still streaming.
  ASSERT_TRUE(pg->stop());
  EXPECT_FALSE(replicas[0].running());
  EXPECT_FALSE(pg->running());
  ASSERT_TRUE(pg->start());
  ASSERT_TRUE(run_sql(pg->url(), "INSERT INTO notes VALUES (3, 'after a restart')"));
  EXPECT_TRUE(eventually_answers(replicas[1].url(), "SELECT text FROM notes WHERE id = 3",
                                 "after a restart"));
  EXPECT_EQ(scalar(pg->url(), "SELECT count(*) FROM pg_replication_slots"), "2");

  // Moved to other ports (embedded_pg_port changed, or a retry on a taken port): the replicas
  // follow the primary to its new port instead of dialing the old one forever.
  ASSERT_TRUE(pg->stop());
  auto moved_options = options;
  Result<void> moved = make_error(Errc::unavailable, "not started");
  for (int attempt = 0; attempt < 5 && !moved; ++attempt) {
    moved_options.port = free_port();
    if (moved_options.port > 65000 || moved_options.port == options.port) continue;
    *pg = db::EmbeddedPostgres(moved_options);
    moved = pg->start();
    if (!moved) (void)pg->stop();
  }
  ASSERT_TRUE(moved) << moved.error().for_log();
  ASSERT_TRUE(run_sql(pg->url(), "INSERT INTO notes VALUES (4, 'after a move')"));
  for (const auto& replica : pg->replicas()) {
    EXPECT_TRUE(
        eventually_answers(replica.url(), "SELECT text FROM notes WHERE id = 4", "after a move"))
        << replica.options().port;
  }
}

// Database over a primary and two replicas: reads on replicas, writes on the primary, reads of
// one's own writes never stale, replicas that lag or die out of the rotation (issue 17; docs/
// decisions/0010-read-your-writes.md).
class ReplicaRouting : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = start_cluster("liftoff_routing", 2).release();
    if (cluster_) {
      pg_ = cluster_->pg.get();
      ASSERT_TRUE(run_sql(pg_->url(), "CREATE TABLE notes (id int PRIMARY KEY)"));
    }
  }
  static void TearDownTestSuite() { delete cluster_; }
  void SetUp() override { ASSERT_TRUE(pg_); }
  static void delay_replicas(const std::string& delay) { delay_replay(*pg_, delay); }

  static db::DatabaseOptions options(std::chrono::milliseconds max_lag) {
    db::DatabaseOptions options;
    options.connect = {pg_->url(), {}, "liftoff-test"};
    for (const auto& replica : pg_->replicas()) options.replicas.conninfos.push_back(replica.url());
    options.replicas.max_lag = max_lag;
    options.replicas.probe_interval = 20ms;
    options.shared_connections = 1;
    options.pool.backoff_min = 10ms;
    return options;
  }

  // Runs `body` with the database's replica watcher beside it, until the body ends; the database
  // is not used after.
  static void with_watcher(db::Database& database,
                           const std::function<boost::asio::awaitable<void>()>& body) {
    boost::asio::io_context io(1);
    std::atomic<bool> stopping{false};
    block_on(io, [&]() -> boost::asio::awaitable<void> {
      auto executor = co_await boost::asio::this_coro::executor;
      boost::asio::co_spawn(executor, database.watch_replicas(stopping), boost::asio::detached);
      co_await body();
      stopping = true;
      database.stop_worker(0);  // its connections go with this io_context
    }());
  }

  static inline OwnCluster* cluster_ = nullptr;
  static inline db::EmbeddedPostgres* pg_ = nullptr;
};

constexpr db::Statement kInsert{db::Plane::any, "test.insert_note",
                                "INSERT INTO notes VALUES ($1)"};
// Where a read ran (a replica is in recovery) and whether it saw note $1.
constexpr db::Statement kWhere{
    db::Plane::any, "test.where",
    "SELECT pg_is_in_recovery(), (SELECT count(*) FROM notes WHERE id = $1)::int4"};

struct Seen {
  bool on_replica = false;
  bool note = false;
};

boost::asio::awaitable<Result<Seen>> where(db::Database& database, db::Intent intent,
                                           const db::Scope& scope, std::int32_t id) {
  db::Params params(id);
  auto rows = co_await database.query(intent, scope, kWhere, params);
  if (!rows) co_return rows.error();
  co_return Seen{rows->front().get<bool>(0), rows->front().get<std::int32_t>(1) == 1};
}

// Inserts note `id` in a transaction of its own for `scope`; whether it committed.
boost::asio::awaitable<bool> insert_in_transaction(db::Database& database, const db::Scope& scope,
                                                   std::int32_t id) {
  auto tx = co_await database.begin(scope);
  if (!tx) co_return false;
  db::Params note(id);
  if (!co_await tx->execute(kInsert, note)) co_return false;
  co_return static_cast<bool>(co_await tx->commit());
}

// A request's scope with read-your-writes over `clusters` clusters, for `tenant`.
db::Scope consistent_scope(std::size_t clusters = 1, db::Tenant tenant = db::Tenant::control()) {
  auto scope = control_scope(10s).for_tenant(tenant);
  scope.consistency = std::make_shared<db::Consistency>(clusters);
  return scope;
}

boost::asio::awaitable<bool> all_in_rotation(db::Database& database, bool in) {
  co_return co_await until([&] {
    auto replicas = database.replicas();
    return std::all_of(replicas.begin(), replicas.end(),
                       [&](const auto& r) { return r.in_rotation == in; });
  });
}

TEST_F(ReplicaRouting, AWriterReadsItsWritesWhileEveryReplicaLagsOthersReadTheReplicas) {
  delay_replicas("1500ms");
  core::Registry metrics;
  db::Database database(options(60s), metrics, 1);
  with_watcher(database, [&]() -> boost::asio::awaitable<void> {
    CO_ASSERT_TRUE(co_await all_in_rotation(database, true));
    auto writer = consistent_scope();
    db::Params note(1);
    CO_ASSERT_TRUE(co_await database.query(db::Intent::write, writer, kInsert, note));
    auto wrote = writer.consistency->at(0).written;
    EXPECT_TRUE(wrote);

    // The writer's read goes to the primary: both replicas are 1.5 s behind its write.
    auto own = co_await where(database, db::Intent::read_your_writes, writer, 1);
    CO_ASSERT_TRUE(own);
    EXPECT_FALSE(own->on_replica);
    EXPECT_TRUE(own->note);
    // Anyone else reads a replica, which has not applied the write yet: the lag is real.
    auto other_scope = consistent_scope();
    auto other = co_await where(database, db::Intent::read_your_writes, other_scope, 1);
    CO_ASSERT_TRUE(other);
    EXPECT_TRUE(other->on_replica);
    EXPECT_FALSE(other->note);
    // A credential check must see every commit: the primary.
    auto latest = co_await where(database, db::Intent::latest, other_scope, 1);
    CO_ASSERT_TRUE(latest);
    EXPECT_FALSE(latest->on_replica);

    // Once the replicas have applied it, the writer's next request (its token echoed) reads one.
    co_await sleep_for(2500ms);
    auto later = consistent_scope();
    later.consistency->at(0).read_after = wrote;
    auto echoed = co_await where(database, db::Intent::read_your_writes, later, 1);
    CO_ASSERT_TRUE(echoed);
    EXPECT_TRUE(echoed->on_replica);
    EXPECT_TRUE(echoed->note);

    // A transaction's commit moves the writer's position too, in the COMMIT's round trip.
    CO_ASSERT_TRUE(co_await insert_in_transaction(database, later, 2));
    EXPECT_GT(later.consistency->at(0).written, wrote);
    auto after_tx = co_await where(database, db::Intent::read_your_writes, later, 2);
    CO_ASSERT_TRUE(after_tx);
    EXPECT_FALSE(after_tx->on_replica);
    EXPECT_TRUE(after_tx->note);
  });
  delay_replicas("0");
}

// The replicated cluster as shard eu-1 beside a main without replicas: a request's position on
// eu-1 is its own (logs of different clusters cannot be compared), kept, echoed by name and
// honoured like main's.
TEST_F(ReplicaRouting, AShardsReplicasServeReadYourWritesByThatShardsOwnPosition) {
  delay_replicas("1500ms");
  core::Registry metrics;
  auto sharded = options(60s);
  sharded.shards.push_back({"eu-1", sharded.connect.conninfo, sharded.replicas.conninfos});
  sharded.connect.conninfo = fresh_database("liftoff_routing_main");
  sharded.replicas.conninfos.clear();
  db::Database database(sharded, metrics, 1);
  const auto on_shard = db::Tenant::every_org_on(1);
  with_watcher(database, [&]() -> boost::asio::awaitable<void> {
    CO_ASSERT_TRUE(co_await all_in_rotation(database, true));
    auto writer = consistent_scope(2, on_shard);
    db::Params note(10);
    CO_ASSERT_TRUE(co_await database.query(db::Intent::write, writer, kInsert, note));
    auto wrote = writer.consistency->at(1).written;
    EXPECT_TRUE(wrote);
    EXPECT_FALSE(writer.consistency->at(0).written);
    auto token = database.token_of(*writer.consistency);
    EXPECT_EQ(db::to_string(token), "eu-1:" + wrote.to_string());

    auto own = co_await where(database, db::Intent::read_your_writes, writer, 10);
    CO_ASSERT_TRUE(own);
    EXPECT_FALSE(own->on_replica);
    EXPECT_TRUE(own->note);
    auto other_scope = consistent_scope(2, on_shard);
    auto other = co_await where(database, db::Intent::read_your_writes, other_scope, 10);
    CO_ASSERT_TRUE(other);
    EXPECT_TRUE(other->on_replica);
    EXPECT_FALSE(other->note);

    // The token echoed on a later request: the same routing, from the header's text.
    auto echoed_token = db::parse_consistency_token(db::to_string(token));
    CO_ASSERT_TRUE(echoed_token.has_value());
    auto later = consistent_scope(2, on_shard);
    later.consistency = database.consistency_for(0, *echoed_token);
    CO_ASSERT_TRUE(later.consistency != nullptr);
    EXPECT_EQ(later.consistency->at(1).read_after, wrote);
    auto echoed = co_await where(database, db::Intent::read_your_writes, later, 10);
    CO_ASSERT_TRUE(echoed);
    EXPECT_FALSE(echoed->on_replica);

    // A transaction on the shard moves the shard's position, in the COMMIT's round trip.
    CO_ASSERT_TRUE(co_await insert_in_transaction(database, later, 11));
    EXPECT_GT(later.consistency->at(1).written, wrote);
    EXPECT_FALSE(later.consistency->at(0).written);

    // What this node remembers of a writer is per cluster, too.
    constexpr std::uint64_t kWriter = 77;
    database.remember_writes(kWriter, *later.consistency);
    auto recalled = database.consistency_for(kWriter, {});
    CO_ASSERT_TRUE(recalled != nullptr);
    EXPECT_EQ(recalled->at(1).read_after, later.consistency->at(1).written);
    EXPECT_FALSE(recalled->at(0).read_after);
  });
}

TEST_F(ReplicaRouting, AReplicaBeyondMaxLagLeavesTheRotationAndReturnsOnceCaughtUp) {
  delay_replicas("1500ms");
  core::Registry metrics;
  db::Database database(options(300ms), metrics, 1);
  with_watcher(database, [&]() -> boost::asio::awaitable<void> {
    // In the rotation first (before their first probe they are out of it, which is not leaving).
    CO_ASSERT_TRUE(co_await all_in_rotation(database, true));
    // Writes keep the primary moving; the replicas fall 1.5 s behind.
    std::int32_t id = 1000;
    bool left = false;
    int failed = 0;
    for (auto end = std::chrono::steady_clock::now() + 20s;
         !left && std::chrono::steady_clock::now() < end;) {
      db::Params note(++id);
      if (!co_await database.query(db::Intent::write, control_scope(), kInsert, note)) ++failed;
      auto seen = co_await where(database, db::Intent::read, control_scope(), id);
      if (!seen) ++failed;
      auto replicas = database.replicas();
      left = std::none_of(replicas.begin(), replicas.end(),
                          [](const auto& r) { return r.in_rotation; });
      co_await sleep_for(50ms);
    }
    EXPECT_TRUE(left);
    EXPECT_EQ(failed, 0);
    // With no replica in rotation, reads go to the primary.
    auto seen = co_await where(database, db::Intent::read, control_scope(), id);
    CO_ASSERT_TRUE(seen);
    EXPECT_FALSE(seen->on_replica);
    EXPECT_TRUE(seen->note);
    for (const auto& replica : database.replicas()) EXPECT_GT(replica.lag, 300ms);
    // Writes stop; the replicas apply what they hold and come back.
    CO_ASSERT_TRUE(co_await all_in_rotation(database, true));
    auto back = co_await where(database, db::Intent::read, control_scope(), id);
    CO_ASSERT_TRUE(back);
    EXPECT_TRUE(back->on_replica);
  });
  delay_replicas("0");
}

TEST_F(ReplicaRouting, ReadsSurviveAReplicaThatStopsAndUseItAgainWhenItReturns) {
  core::Registry metrics;
  db::Database database(options(10s), metrics, 1);
  auto replicas = pg_->replicas();
  with_watcher(database, [&]() -> boost::asio::awaitable<void> {
    CO_ASSERT_TRUE(co_await all_in_rotation(database, true));
    // The first replica is shut down (its connections closed) while reads keep coming.
    std::thread stopper([&] {
      std::this_thread::sleep_for(300ms);
      (void)replicas[0].stop();
    });
    int reads = 0;
    int failed = 0;
    for (auto end = std::chrono::steady_clock::now() + 2s; std::chrono::steady_clock::now() < end;
         ++reads) {
      auto seen = co_await where(database, db::Intent::read, control_scope(), 1);
      if (!seen) {
        ++failed;
        ADD_FAILURE() << seen.error().for_log();
      }
      co_await sleep_for(2ms);
    }
    stopper.join();
    EXPECT_GT(reads, 100);
    EXPECT_EQ(failed, 0);
    EXPECT_FALSE(database.replicas()[0].in_rotation);
    // Its reads went to the other replica.
    auto seen = co_await where(database, db::Intent::read, control_scope(), 1);
    CO_ASSERT_TRUE(seen);
    EXPECT_TRUE(seen->on_replica);
    // Started again (the primary's start() starts what is not running), it rejoins.
    std::thread starter([&] { EXPECT_TRUE(pg_->start()); });
    starter.join();
    CO_ASSERT_TRUE(co_await all_in_rotation(database, true));
  });
}

}  // namespace
}  // namespace liftoff::testing
