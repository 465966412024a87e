// Online moves of an organization between shards (shards::Mover, docs/decisions/0021) against
// real servers: two databases of the test server act as the clusters main and eu-1. Checked: a
// move carries every table's rows of the org and its audit chain, leaves none behind, and the org
// is then read and written on its new shard only; writes during a move all land (the fence makes
// them wait), none lost; a mover stopped at each step leaves the org whole, readable and writable
// on exactly one shard, and running it again finishes the move, or abort() rolls it back; so does
// a kill of the source's or the target's server.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json/parse.hpp>
#include <fstream>
#include <map>
#include <thread>
#include <tuple>

#include "integration/services_support.hpp"
#include "liftoff/audit/audit.hpp"
#include "liftoff/db/migrations.hpp"
#include "liftoff/jobs/queue.hpp"
#include "liftoff/records/service.hpp"
#include "liftoff/shards/move.hpp"
#include "liftoff/usage/report.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"

namespace liftoff::shards {
namespace {
namespace asio = boost::asio;
namespace json = boost::json;
using testing::block_on;
using Owner = testing::ServiceWorld::Owner;
using namespace std::chrono_literals;
const plans::Allowance kAllowance{plans::Limit::collections, 1000, "test"};

// What the mover throws from its progress report at a chosen step: the mover stopped there, as
// if killed (its connections close; nothing after that step ran).
struct Stopped {};

class ShardMoveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new testing::ServiceWorld("shard_move_test", {"eu-1"});
    records_ = new records::RecordService(*world_->database, records::RecordsOptions{});
  }
  static void TearDownTestSuite() {
    delete records_;
    delete world_;
  }
  void SetUp() override { world_->database->shard_cache().listening(false); }

  static db::Scope scope(const Owner& owner) {
    return testing::ServiceWorld::scope_of(owner.principal, owner.org.id);
  }
  static const std::string& main_url() { return world_->url; }
  static const std::string& eu_url() { return world_->shard_urls.front(); }

  static MoveOptions options(std::string stop_at = "") {
    MoveOptions o;
    o.batch_rows = 7;  // many batches of few rows
    o.fence_limit = 1'000ms;
    o.hearing = 20ms;
    if (!stop_at.empty()) {
      o.progress = [stop_at](const MoveProgress& p) {
        if (p.step == stop_at) throw Stopped{};
      };
    }
    return o;
  }
  static Mover mover(MoveOptions o) {
    return Mover({{"main", main_url()}, {"eu-1", eu_url()}}, std::move(o));
  }
  // Runs the mover on its own thread and event loop, as the command does beside the servers.
  template <class T>
  static T on_own_loop(asio::awaitable<T> work) {
    T out{};
    std::thread thread([&] {
      asio::io_context io(1);
      out = block_on(io, std::move(work));
    });
    thread.join();
    return out;
  }
  static Result<MoveReport> move(const Owner& owner, MoveOptions o = options()) {
    auto m = mover(std::move(o));
    Result<MoveReport> out = make_error(Errc::internal, "not run");
    std::thread thread([&] {
      asio::io_context io(1);
      out = block_on(io, m.move(owner.org.id, "eu-1"));
    });
    thread.join();
    return out;
  }
  // The same, for a mover that stops at `step`: true when it did.
  static bool move_stopping_at(const Owner& owner, const std::string& step) {
    auto m = mover(options(step));
    bool stopped = false;
    std::thread thread([&] {
      asio::io_context io(1);
      try {
        auto report = block_on(io, m.move(owner.org.id, "eu-1"));
        ADD_FAILURE() << "the move did not stop at " << step
                      << (report ? "" : ": " + report.error().for_log());
      } catch (const Stopped&) {
        stopped = true;
      }
    });
    thread.join();
    return stopped;
  }

  static Owner new_owner(const std::string& email) {
    return block_on(world_->io, world_->new_owner(email));
  }
  // An org with a collection of `n` records (one created with an idempotency key), a job that
  // ran and one that waits, and audit events sealed and pending.
  static Owner org_with_data(const std::string& email, int n) {
    auto owner = new_owner(email);
    block_on(world_->io, [&]() -> asio::awaitable<void> {
      auto fields = json::parse(R"([{"name":"title","type":"text","required":true}])");
      auto created =
          co_await records_->create_collection(scope(owner), "tasks", fields, kAllowance);
      EXPECT_TRUE(created) << (created ? "" : created.error().for_log());
      for (int i = 0; i < n; ++i) {
        json::object data{{"title", "task " + std::to_string(i)}};
        std::optional<records::Idempotency> key;
        if (i == 0) key = records::Idempotency{"first-task", std::string(32, 'h')};
        auto record = co_await records_->create_record(scope(owner), "tasks", data, key);
        EXPECT_TRUE(record) << (record ? "" : record.error().for_log());
      }
      auto at = scope(owner);
      auto sealed = co_await audit::seal_committed(*world_->database, at);
      EXPECT_TRUE(sealed) << (sealed ? "" : sealed.error().for_log());
      // One more event, left pending.
      json::object last{{"title", "pending"}};
      std::optional<records::Idempotency> no_key;
      auto record = co_await records_->create_record(scope(owner), "tasks", last, no_key);
      EXPECT_TRUE(record) << (record ? "" : record.error().for_log());
      jobs::Queue queue(*world_->database);
      std::vector<jobs::NewJob> batch(2);
      for (auto& job : batch) {
        job.queue = "moved";
        job.kind = "test.moved";
      }
      auto ids = co_await queue.enqueue(scope(owner), batch);
      EXPECT_TRUE(ids) << (ids ? "" : ids.error().for_log());
    }());
    const auto org = owner.org.id.to_string();
    EXPECT_TRUE(testing::run_sql(main_url(),
                                 "UPDATE jobs SET state = 'completed' WHERE id = "
                                 "(SELECT id FROM jobs WHERE org_id = '" +
                                     org + "' ORDER BY id LIMIT 1)"));
    return owner;
  }

  // The org's rows of each moved table on the cluster at `url`, as one line.
  static std::string rows_of(const std::string& url, const Owner& owner) {
    const auto org = "'" + owner.org.id.to_string() + "'";
    std::string out;
    for (const auto* table : {"collections", "idempotency_keys", "audit_chains", "audit_events",
                              "audit_pending", "jobs", "usage_hourly", "shard_inbox"}) {
      out += std::string(table) + "=" +
             testing::scalar(
                 url, std::string("SELECT count(*) FROM ") + table + " WHERE org_id = " + org) +
             " ";
    }
    out += "records=" + testing::scalar(url, "SELECT count(*) FROM records WHERE org_id = " + org);
    return out;
  }
  static std::string shard_of(const Owner& owner) {
    return testing::scalar(main_url(),
                           "SELECT shard FROM orgs WHERE id = '" + owner.org.id.to_string() + "'");
  }
  static std::string records_on(const std::string& url, const Owner& owner) {
    return testing::scalar(
        url, "SELECT count(*) FROM records WHERE org_id = '" + owner.org.id.to_string() + "'");
  }
  static std::string empty_rows() {
    return "collections=0 idempotency_keys=0 audit_chains=0 audit_events=0 audit_pending=0 "
           "jobs=0 usage_hourly=0 shard_inbox=0 records=0";
  }
  // Creates a record through the service, routed as requests are; whether it was acknowledged.
  static bool write_record(const Owner& owner, const std::string& title, Errc* error = nullptr) {
    return block_on(world_->io, [&]() -> asio::awaitable<bool> {
      json::object data{{"title", title}};
      std::optional<records::Idempotency> no_key;
      auto record = co_await records_->create_record(scope(owner), "tasks", data, no_key);
      if (!record && error) *error = record.error().code;
      co_return static_cast<bool>(record);
    }());
  }
  static std::string audit_on(const std::string& url, const Owner& owner) {
    auto org = owner.org.id;
    return block_on(world_->io, [&]() -> asio::awaitable<std::string> {
      auto executor = co_await asio::this_coro::executor;
      db::ConnectOptions connect{url};
      auto conn = co_await db::Connection::connect(executor, connect, db::deadline_after(5s));
      if (!conn) co_return conn.error().for_log();
      auto report = co_await audit::verify(**conn, org, 5s);
      if (!report) co_return report.error().for_log();
      co_return std::to_string(report->events) + (report->intact() ? " intact" : " TAMPERED");
    }());
  }

  static testing::ServiceWorld* world_;
  static records::RecordService* records_;
};
testing::ServiceWorld* ShardMoveTest::world_ = nullptr;
records::RecordService* ShardMoveTest::records_ = nullptr;

TEST_F(ShardMoveTest, AMoveCarriesEveryRowOfTheOrgAndLeavesNoneBehind) {
  auto owner = org_with_data("carried@example.com", 20);
  auto before = rows_of(main_url(), owner);
  auto audit_before = audit_on(main_url(), owner);
  ASSERT_EQ(rows_of(eu_url(), owner), empty_rows());

  auto report = move(owner);
  ASSERT_TRUE(report) << report.error().for_log();
  EXPECT_TRUE(report->moved);
  EXPECT_EQ(report->source, "main");
  EXPECT_EQ(shard_of(owner), "eu-1");
  EXPECT_EQ(rows_of(eu_url(), owner), before);
  EXPECT_EQ(rows_of(main_url(), owner), empty_rows());
  // The chain verifies on its new shard: every event copied as it was (hashes recomputed).
  EXPECT_EQ(audit_on(eu_url(), owner), audit_before);
  EXPECT_EQ(testing::scalar(main_url(), "SELECT count(*) FROM shard_moves"), "0");
  EXPECT_EQ(testing::scalar(main_url(), "SELECT phase FROM shard_move_marks WHERE org_id = '" +
                                            owner.org.id.to_string() + "'"),
            "moved");

  // Served from eu-1 now: read back, and written there.
  ASSERT_TRUE(write_record(owner, "after the move"));
  EXPECT_EQ(records_on(eu_url(), owner), "22");
  EXPECT_EQ(records_on(main_url(), owner), "0");
  // A write that still reaches the old shard is refused, retryably.
  auto stray = block_on(world_->io, [&]() -> asio::awaitable<Errc> {
    auto executor = co_await asio::this_coro::executor;
    db::ConnectOptions connect{main_url()};
    auto conn = co_await db::Connection::connect(executor, connect, db::deadline_after(5s));
    if (!conn) co_return conn.error().code;
    const auto sql =
        "INSERT INTO collections (id, org_id, name, fields) VALUES "
        "(gen_random_uuid(), '" +
        owner.org.id.to_string() + "', 'stray', '[]')";
    db::Statement statement{db::Plane::tenant, "test.stray", sql, false};
    auto done = co_await (*conn)->query(statement, db::Params::none(), db::deadline_after(5s));
    co_return done ? Errc::internal : done.error().code;
  }());
  EXPECT_EQ(stray, Errc::retryable);

  // Moving it to where it is does nothing.
  auto again = move(owner);
  ASSERT_TRUE(again) << again.error().for_log();
  EXPECT_FALSE(again->moved);
}

// The copy reads each batch by a statement of its own: between batches the mover holds no
// snapshot on the source (one held for the whole copy of a large org would keep vacuum from the
// rows the serving load updates meanwhile, and slow every read of them).
TEST_F(ShardMoveTest, TheCopyHoldsNoSnapshotOnTheSourceBetweenItsBatches) {
  auto owner = org_with_data("unheld@example.com", 40);
  auto o = options();
  int looked = 0;
  std::vector<std::string> held;
  o.progress = [&](const MoveProgress& p) {
    if (p.step != "copy" || p.done == 0) return;
    ++looked;
    held.push_back(testing::scalar(
        main_url(),
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'liftoff-mover' "
        "AND (state = 'idle in transaction' OR backend_xmin IS NOT NULL)"));
  };
  auto report = move(owner, o);
  ASSERT_TRUE(report) << report.error().for_log();
  EXPECT_GT(looked, 5);  // 40 records in batches of 7, and the other tables
  EXPECT_EQ(held, std::vector<std::string>(held.size(), "0"));
}

TEST_F(ShardMoveTest, WritesDuringAMoveAllLand) {
  auto owner = org_with_data("busy@example.com", 30);
  std::atomic<bool> done{false};
  Result<MoveReport> report = make_error(Errc::internal, "not run");
  auto m = mover(options());
  std::thread mover_thread([&] {
    asio::io_context io(1);
    report = block_on(io, m.move(owner.org.id, "eu-1"));
    done = true;
  });
  int acknowledged = 0, refused = 0;
  auto longest = 0ms;
  while (!done || acknowledged < 5) {
    auto start = std::chrono::steady_clock::now();
    Errc error = Errc::internal;
    if (write_record(owner, "during " + std::to_string(acknowledged), &error)) {
      ++acknowledged;
    } else {
      // A straggler's write that reached the old shard after its fence: retryable, never lost.
      EXPECT_EQ(error, Errc::retryable);
      ++refused;
    }
    longest = std::max(longest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - start));
  }
  mover_thread.join();
  ASSERT_TRUE(report) << report.error().for_log();
  EXPECT_EQ(shard_of(owner), "eu-1");
  EXPECT_EQ(records_on(eu_url(), owner), std::to_string(31 + acknowledged));
  EXPECT_EQ(records_on(main_url(), owner), "0");
  EXPECT_LT(longest, 5'000ms) << "a write waited longer than its fence";
  std::cout << "[ move ] " << acknowledged << " writes during the move, " << refused
            << " refused; longest " << longest.count() << " ms; fence " << report->fence.count()
            << " ms\n";
}

// A mover stopped at each step leaves the org on the source, whole, read and written there;
// running it again finishes the move, with what was written in between.
TEST_F(ShardMoveTest, AMoverStoppedAtAnyStepIsFinishedByRunningItAgain) {
  for (const auto* step : {"prepare", "copy", "catch up", "fence"}) {
    SCOPED_TRACE(step);
    auto owner = org_with_data(std::string("stopped-") + step + "@example.com", 10);
    ASSERT_TRUE(move_stopping_at(owner, step));
    EXPECT_EQ(shard_of(owner), "main");
    // Writable at once, or once the fence it left expires (its limit and a second: 2 s).
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(write_record(owner, "in between"));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
    EXPECT_EQ(records_on(main_url(), owner), "12");
    auto report = move(owner);
    ASSERT_TRUE(report) << report.error().for_log();
    EXPECT_TRUE(report->resumed);
    EXPECT_EQ(shard_of(owner), "eu-1");
    EXPECT_EQ(records_on(eu_url(), owner), "12");
    EXPECT_EQ(records_on(main_url(), owner), "0");
    EXPECT_NE(audit_on(eu_url(), owner).find(" intact"), std::string::npos);
  }
}

TEST_F(ShardMoveTest, AnUnfinishedMoveIsRolledBack) {
  auto owner = org_with_data("rolled-back@example.com", 10);
  auto before = rows_of(main_url(), owner);
  ASSERT_TRUE(move_stopping_at(owner, "catch up"));
  EXPECT_NE(rows_of(eu_url(), owner), empty_rows());
  auto m = mover(options());
  auto aborted = on_own_loop([&]() -> asio::awaitable<bool> {
    auto done = co_await m.abort(owner.org.id);
    EXPECT_TRUE(done) << (done ? "" : done.error().for_log());
    co_return static_cast<bool>(done);
  }());
  ASSERT_TRUE(aborted);
  EXPECT_EQ(shard_of(owner), "main");
  EXPECT_EQ(rows_of(main_url(), owner), before);
  EXPECT_EQ(rows_of(eu_url(), owner), empty_rows());
  EXPECT_EQ(testing::scalar(main_url(), "SELECT count(*) FROM shard_move_marks WHERE org_id = '" +
                                            owner.org.id.to_string() + "'"),
            "0");
  EXPECT_EQ(testing::scalar(main_url(), "SELECT count(*) FROM shard_move_changes"), "0");
  // Captured no more: a write leaves no change behind.
  ASSERT_TRUE(write_record(owner, "after the abort"));
  EXPECT_EQ(testing::scalar(main_url(), "SELECT count(*) FROM shard_move_changes"), "0");
  // After the switch there is nothing to roll back.
  auto report = move(owner);
  ASSERT_TRUE(report) << report.error().for_log();
  auto again = on_own_loop([&]() -> asio::awaitable<Errc> {
    auto done = co_await m.abort(owner.org.id);
    co_return done ? Errc::internal : done.error().code;
  }());
  EXPECT_EQ(again, Errc::not_found);
}

// What `liftoff shard rebalance` weighs orgs by: their API requests over the window, per shard.
TEST_F(ShardMoveTest, RebalancingWeighsEachOrgByItsRequestsOnItsShard) {
  auto busy = new_owner("weighed-busy@example.com");
  auto idle = new_owner("weighed-idle@example.com");
  auto hour = [](int ago) {
    return "date_trunc('hour', now()) - interval '" + std::to_string(ago) + " hours'";
  };
  for (const auto& [owner, requests, ago] :
       {std::tuple{&busy, 700, 1}, std::tuple{&busy, 300, 2}, std::tuple{&busy, 5000, 30},
        std::tuple{&idle, 0, 1}}) {
    ASSERT_TRUE(testing::run_sql(eu_url(),
                                 "INSERT INTO usage_hourly (org_id, hour, api_requests) "
                                 "VALUES ('" +
                                     owner->org.id.to_string() + "', " + hour(ago) + ", " +
                                     std::to_string(requests) + ")"));
  }
  auto loads = block_on(world_->io, [&]() -> asio::awaitable<std::vector<usage::OrgRequests>> {
    auto conn = co_await testing::connect_test(eu_url());
    const auto since = std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now() - std::chrono::hours(24));
    auto got = co_await usage::requests_per_org(*conn, since, db::deadline_after(5s));
    EXPECT_TRUE(got) << (got ? "" : got.error().for_log());
    co_return got ? *got : std::vector<usage::OrgRequests>{};
  }());
  std::map<std::string, std::int64_t> by_org;
  for (const auto& l : loads) by_org[l.org.to_string()] = l.requests;
  EXPECT_EQ(by_org[busy.org.id.to_string()], 1000) << "the last 24 hours only";
  EXPECT_FALSE(by_org.contains(idle.org.id.to_string()))
      << "an org without requests weighs nothing";
}

// The server of the source or of the target killed (SIGKILL of its postmaster) in the middle of a
// move: the move fails, the org stays whole and writable on its shard, and once the server is back
// running the move again finishes it. ap-1 is a cluster of its own, the target of the first move
// and the source of the second.
TEST_F(ShardMoveTest, AServerKilledMidMoveLeavesTheOrgWholeAndTheMoveResumes) {
  auto own = testing::start_cluster("liftoff_move_ap", 0);
  ASSERT_TRUE(own);
  const auto ap_url = own->pg->url();
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(ap_url);
    CO_ASSERT_TRUE(conn);
    auto migrated =
        co_await db::migrate_up(*conn, db::embedded_migrations(), db::deadline_after(30s));
    EXPECT_TRUE(migrated) << (migrated ? "" : migrated.error().for_log());
  }());
  auto kill_server = [&] {
    std::ifstream pid_file(own->pg->options().data_dir / "pgdata" / "postmaster.pid");
    pid_t pid = 0;
    pid_file >> pid;
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
  };
  auto restart_server = [&] {
    // Its backends notice their postmaster's death and exit; until then the restart is refused.
    for (int i = 0; i < 100; ++i) {
      if (own->pg->start()) return;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "the killed server did not start again";
  };
  const std::vector<ClusterAddress> clusters{
      {"main", main_url()}, {"eu-1", eu_url()}, {"ap-1", ap_url}};
  auto move_to = [&](const Owner& owner, const std::string& target, const std::string& kill_at) {
    auto o = options();
    bool killed = false;
    if (!kill_at.empty()) {
      o.progress = [&](const MoveProgress& p) {
        if (p.step != kill_at || killed) return;
        killed = true;
        kill_server();
      };
    }
    Mover m(clusters, o);
    Result<MoveReport> out = make_error(Errc::internal, "not run");
    std::thread thread([&] {
      asio::io_context io(1);
      out = block_on(io, m.move(owner.org.id, target));
    });
    thread.join();
    EXPECT_EQ(killed, !kill_at.empty());
    return out;
  };
  // A write of the org's on `url`, as a request routed there makes it; whether it was kept.
  auto write_on = [&](const std::string& url, const Owner& owner, const std::string& name) {
    return testing::run_sql(url,
                            "INSERT INTO collections (id, org_id, name, fields) VALUES "
                            "(gen_random_uuid(), '" +
                                owner.org.id.to_string() + "', '" + name + "', '[]')");
  };
  auto collections_on = [&](const std::string& url, const Owner& owner) {
    return testing::scalar(
        url, "SELECT count(*) FROM collections WHERE org_id = '" + owner.org.id.to_string() + "'");
  };
  auto owner = org_with_data("killed@example.com", 10);

  // The target killed while the mover catches up.
  auto failed = move_to(owner, "ap-1", "catch up");
  ASSERT_FALSE(failed);
  EXPECT_EQ(shard_of(owner), "main");
  EXPECT_TRUE(write_on(main_url(), owner, "while ap-1 is down"));
  restart_server();
  auto report = move_to(owner, "ap-1", "");
  ASSERT_TRUE(report) << report.error().for_log();
  EXPECT_TRUE(report->resumed);
  EXPECT_EQ(shard_of(owner), "ap-1");
  EXPECT_EQ(collections_on(ap_url, owner), "2");
  EXPECT_EQ(records_on(ap_url, owner), "11");
  EXPECT_EQ(rows_of(main_url(), owner), empty_rows());

  // The source killed in the fence: the fence it left lifts by itself.
  failed = move_to(owner, "eu-1", "fence");
  ASSERT_FALSE(failed);
  restart_server();
  EXPECT_EQ(shard_of(owner), "ap-1");
  std::this_thread::sleep_for(1'500ms);  // past the source's fence (1 s from its start)
  EXPECT_TRUE(write_on(ap_url, owner, "after the restart"));
  report = move_to(owner, "eu-1", "");
  ASSERT_TRUE(report) << report.error().for_log();
  EXPECT_EQ(shard_of(owner), "eu-1");
  EXPECT_EQ(collections_on(eu_url(), owner), "3");
  EXPECT_EQ(records_on(eu_url(), owner), "11");
  EXPECT_EQ(rows_of(ap_url, owner), empty_rows());
  EXPECT_NE(audit_on(eu_url(), owner).find(" intact"), std::string::npos);
}

}  // namespace
}  // namespace liftoff::shards
