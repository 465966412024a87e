// Routing by tenant shard (docs/decisions/0021-tenant-shards.md) against real servers: two
// databases of the test server act as two clusters, main and eu-1, and the shard directory in
// main's `orgs.shard` sends each org's statements to its shard. Checked: an org's data lands on
// its shard only and is read back from there, a sweep reaches the shard it names, the directory's
// cache is used only while it is trusted and forgets an org that moved, an unknown shard is
// refused; a change over both planes for an org away from main posts its audit event and jobs to
// the org's shard through the outbox, written there once, and kept while the shard fails; the
// sealer chains every shard's events, the job runner runs each shard's jobs, once, and finishes
// them where they are, and the meter writes each org's usage on its shard.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <mutex>
#include <set>

#include "integration/services_support.hpp"
#include "liftoff/audit/audit.hpp"
#include "liftoff/audit/sealer.hpp"
#include "liftoff/db/shard_placement.hpp"
#include "liftoff/jobs/runner.hpp"
#include "liftoff/records/service.hpp"
#include "liftoff/usage/meter.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"

namespace liftoff::db {
namespace {
namespace asio = boost::asio;
namespace json = boost::json;
using testing::block_on;
using Owner = testing::ServiceWorld::Owner;
const plans::Allowance kAllowance{plans::Limit::collections, 1000, "test"};

// Tenant-plane statements of the test's own.
constexpr Statement kCountCollections{Plane::tenant, "test.count_collections",
                                      "SELECT count(*) FROM collections"};

class ShardsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new testing::ServiceWorld("shards_test", {"eu-1"});
    records_ = new records::RecordService(*world_->database, records::RecordsOptions{});
  }
  static void TearDownTestSuite() {
    delete records_;
    delete world_;
  }
  void SetUp() override { database().shard_cache().listening(false); }

  static Database& database() { return *world_->database; }
  static Scope scope(const Owner& owner) {
    return testing::ServiceWorld::scope_of(owner.principal, owner.org.id);
  }
  static Owner new_owner(const std::string& email) {
    return block_on(world_->io, world_->new_owner(email));
  }
  // Points the directory at `shard` for the org, as a move's switch does; of what a move copies,
  // only the org's audit chain head (a new chain: its events stay behind), which its requests read.
  static void place(const Owner& owner, const std::string& shard) {
    const auto id = owner.org.id.to_string();
    ASSERT_TRUE(testing::run_sql(
        world_->url, "UPDATE orgs SET shard = '" + shard + "' WHERE id = '" + id + "'"));
    for (std::size_t i = 0; i < world_->shard_urls.size(); ++i) {
      if (database().shards()[i + 1] != shard) continue;
      ASSERT_TRUE(
          testing::run_sql(world_->shard_urls[i],
                           "INSERT INTO audit_chains (org_id, last_seq, last_hash) VALUES ('" + id +
                               "', 0, ''::bytea) ON CONFLICT DO NOTHING"));
    }
  }
  // The org's org.renamed events on a cluster, sealed or not.
  static std::string renames_of(const std::string& url, const Owner& owner) {
    const auto org = owner.org.id.to_string();
    return testing::scalar(
        url, "SELECT (SELECT count(*) FROM audit_events WHERE org_id = '" + org +
                 "' AND action = 'org.renamed') + (SELECT count(*) FROM audit_pending WHERE "
                 "org_id = '" +
                 org + "' AND action = 'org.renamed')");
  }
  static std::string collections_of(const std::string& url, const Owner& owner) {
    return testing::scalar(
        url, "SELECT count(*) FROM collections WHERE org_id = '" + owner.org.id.to_string() + "'");
  }
  // The org's shard as the Database finds it; kFailed when it cannot (`error` tells why).
  static constexpr std::size_t kFailed = 99;
  static std::size_t shard_of(const Owner& owner, Errc* error = nullptr) {
    return block_on(world_->io, [&]() -> asio::awaitable<std::size_t> {
      auto at = scope(owner);
      auto shard = co_await database().shard_of(owner.org.id, at);
      if (!shard && error) *error = shard.error().code;
      co_return shard ? *shard : kFailed;
    }());
  }
  static void create_tasks(const Owner& owner) {
    block_on(world_->io, [&]() -> asio::awaitable<void> {
      auto fields = json::parse(R"([{"name":"title","type":"text","required":true}])");
      auto created =
          co_await records_->create_collection(scope(owner), "tasks", fields, kAllowance);
      EXPECT_TRUE(created) << (created ? "" : created.error().for_log());
      // Named locals, not braced temporaries, in co_await expressions (see Params::none()).
      json::object data{{"title", "on " + owner.org.name}};
      std::optional<records::Idempotency> no_key;
      auto record = co_await records_->create_record(scope(owner), "tasks", data, no_key);
      EXPECT_TRUE(record) << (record ? "" : record.error().for_log());
    }());
  }

  static testing::ServiceWorld* world_;
  static records::RecordService* records_;
};
testing::ServiceWorld* ShardsTest::world_ = nullptr;
records::RecordService* ShardsTest::records_ = nullptr;

TEST_F(ShardsTest, ShardsAreNamedMainFirst) {
  EXPECT_EQ(database().shards(), (std::vector<std::string>{"main", "eu-1"}));
}

TEST_F(ShardsTest, AnOrgsDataLandsOnItsShardOnlyAndIsReadBackFromThere) {
  auto stays = new_owner("stays@example.com");
  auto moves = new_owner("moves@example.com");
  place(moves, "eu-1");
  create_tasks(stays);
  create_tasks(moves);
  const auto& shard = world_->shard_urls.front();
  EXPECT_EQ(collections_of(world_->url, stays), "1");
  EXPECT_EQ(collections_of(shard, stays), "0");
  EXPECT_EQ(collections_of(world_->url, moves), "0");
  EXPECT_EQ(collections_of(shard, moves), "1");
  auto records_of = [&](const std::string& url) {
    return testing::scalar(
        url, "SELECT count(*) FROM records WHERE org_id = '" + moves.org.id.to_string() + "'");
  };
  EXPECT_EQ(records_of(shard), "1");
  EXPECT_EQ(records_of(world_->url), "0");

  block_on(world_->io, [&]() -> asio::awaitable<void> {
    records::ListQuery everything;
    auto page = co_await records_->list(scope(moves), "tasks", everything, "");
    EXPECT_TRUE(page) << (page ? "" : page.error().for_log());
    CO_ASSERT_TRUE(page);
    CO_ASSERT_TRUE(page->body.has_value());
    EXPECT_NE(page->body->find("on Org of moves@example.com"), std::string::npos) << *page->body;
  }());
}

TEST_F(ShardsTest, ASweepReachesTheShardItNamesOnly) {
  auto swept = new_owner("swept@example.com");
  place(swept, "eu-1");
  create_tasks(swept);
  auto count_on = [&](std::size_t shard) {
    return block_on(world_->io, [&]() -> asio::awaitable<std::int64_t> {
      auto sweep = Scope::background(Tenant::every_org_on(shard), std::chrono::seconds(5));
      auto rows = co_await database().query(Intent::write, sweep, kCountCollections, Params());
      EXPECT_TRUE(rows) << (rows ? "" : rows.error().for_log());
      co_return rows ? rows->front().get<std::int64_t>(0) : -1;
    }());
  };
  EXPECT_EQ(std::to_string(count_on(0)),
            testing::scalar(world_->url, "SELECT count(*) FROM collections"));
  EXPECT_EQ(std::to_string(count_on(1)),
            testing::scalar(world_->shard_urls.front(), "SELECT count(*) FROM collections"));
  EXPECT_GE(count_on(1), 1);
}

TEST_F(ShardsTest, TheDirectoryIsCachedOnlyWhileTrustedAndForgetsAnOrgThatMoved) {
  auto owner = new_owner("cached@example.com");
  auto& cache = database().shard_cache();
  // Not trusted (the session channel is not heard): every lookup reads the directory.
  EXPECT_EQ(shard_of(owner), 0u);
  place(owner, "eu-1");
  EXPECT_EQ(shard_of(owner), 1u);
  EXPECT_EQ(cache.size(), 0u);

  cache.stale_all();
  cache.listening(true);
  EXPECT_EQ(shard_of(owner), 1u);
  EXPECT_EQ(cache.size(), 1u);
  place(owner, "main");
  EXPECT_EQ(shard_of(owner), 1u) << "served from the cache";
  cache.stale(owner.org.id);  // the move's notification
  EXPECT_EQ(shard_of(owner), 0u);

  place(owner, "eu-1");
  cache.listening(false);  // the channel was lost: the cache is bypassed
  EXPECT_EQ(shard_of(owner), 1u);
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(ShardsTest, AnOrgOnAShardThisProcessDoesNotNameIsUnavailable) {
  auto owner = new_owner("elsewhere@example.com");
  place(owner, "ap-9");
  Errc error = Errc::internal;
  EXPECT_EQ(shard_of(owner, &error), kFailed);
  EXPECT_EQ(error, Errc::unavailable);
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto listed = co_await records_->collections(scope(owner));
    CO_ASSERT_FALSE(listed);
    EXPECT_EQ(listed.error().code, Errc::unavailable);
  }());
}

TEST_F(ShardsTest, AChangeOverBothPlanesPostsItsEventToTheOrgsShard) {
  auto home = new_owner("home@example.com");
  auto away = new_owner("away@example.com");
  place(away, "eu-1");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto renamed = co_await world_->orgs->rename(scope(away), away.principal, "Renamed away");
    EXPECT_TRUE(renamed) << (renamed ? "" : renamed.error().for_log());
    renamed = co_await world_->orgs->rename(scope(home), home.principal, "Renamed home");
    EXPECT_TRUE(renamed) << (renamed ? "" : renamed.error().for_log());
    // Relayed before rename() returned: the org's own audit listing reads it back.
    auto at = scope(away);
    auto sealed = co_await audit::seal_committed(database(), at);
    EXPECT_TRUE(sealed) << (sealed ? "" : sealed.error().for_log());
    audit::Filter renames;
    renames.action = "org.renamed";
    auto events = co_await audit::list(database(), at, renames);
    CO_ASSERT_TRUE(events);
    CO_ASSERT_TRUE(events->size() == 1u);
    EXPECT_EQ(events->front().change.after, R"({"name":"Renamed away"})");
    EXPECT_EQ(events->front().actor.id, away.principal.actor_id());
  }());
  EXPECT_EQ(testing::scalar(world_->url,
                            "SELECT name FROM orgs WHERE id = '" + away.org.id.to_string() + "'"),
            "Renamed away");
  EXPECT_EQ(renames_of(world_->url, away), "0");
  EXPECT_EQ(renames_of(world_->shard_urls.front(), away), "1");
  EXPECT_EQ(renames_of(world_->url, home), "1");
  EXPECT_EQ(testing::scalar(world_->url, "SELECT count(*) FROM shard_outbox"), "0");
}

TEST_F(ShardsTest, AnItemRelayedAgainIsWrittenOnce) {
  auto away = new_owner("again@example.com");
  place(away, "eu-1");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto renamed = co_await world_->orgs->rename(scope(away), away.principal, "Renamed again");
    EXPECT_TRUE(renamed) << (renamed ? "" : renamed.error().for_log());
  }());
  const auto& shard = world_->shard_urls.front();
  ASSERT_EQ(renames_of(shard, away), "1");
  // A relay that stopped after the shard's commit, before the outbox's delete, left it there.
  auto id = testing::scalar(
      shard, "SELECT id FROM shard_inbox WHERE org_id = '" + away.org.id.to_string() + "'");
  ASSERT_TRUE(testing::run_sql(
      world_->url, "INSERT INTO shard_outbox (id, org_id, shard, kind, body) VALUES ('" + id +
                       "', '" + away.org.id.to_string() + "', 'eu-1', 'audit', '{}')"));
  auto relayed = block_on(world_->io, database().outbox().relay(std::nullopt));
  ASSERT_TRUE(relayed) << relayed.error().for_log();
  EXPECT_EQ(*relayed, 1u);
  EXPECT_EQ(renames_of(shard, away), "1");
  EXPECT_EQ(testing::scalar(world_->url, "SELECT count(*) FROM shard_outbox"), "0");
}

TEST_F(ShardsTest, AnItemForAShardThatFailsWaitsInTheOutbox) {
  auto away = new_owner("waits@example.com");
  place(away, "eu-1");
  const auto& shard = world_->shard_urls.front();
  // The shard refuses its inbox for a moment, as an unreachable shard would.
  ASSERT_TRUE(testing::run_sql(shard, "ALTER TABLE shard_inbox RENAME TO shard_inbox_away"));
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto renamed = co_await world_->orgs->rename(scope(away), away.principal, "Renamed later");
    EXPECT_TRUE(renamed) << (renamed ? "" : renamed.error().for_log());
  }());
  EXPECT_EQ(testing::scalar(world_->url, "SELECT count(*) FROM shard_outbox WHERE org_id = '" +
                                             away.org.id.to_string() + "'"),
            "1");
  EXPECT_EQ(renames_of(shard, away), "0");
  ASSERT_TRUE(testing::run_sql(shard, "ALTER TABLE shard_inbox_away RENAME TO shard_inbox"));
  auto swept = block_on(world_->io, database().outbox().sweep());
  ASSERT_TRUE(swept) << swept.error().for_log();
  EXPECT_EQ(*swept, 1u);
  EXPECT_EQ(renames_of(shard, away), "1");
}

TEST_F(ShardsTest, ThePurgeOfAnOrgAwayFromMainRecordsItOnItsShard) {
  auto away = new_owner("purged@example.com");
  place(away, "eu-1");
  const auto org = away.org.id.to_string();
  ASSERT_TRUE(testing::run_sql(world_->url,
                               "UPDATE orgs SET deleted_at = now(), purge_after = now() - interval "
                               "'1 second' WHERE id = '" +
                                   org + "'"));
  auto purged = block_on(world_->io, world_->orgs->purge_expired(10));
  ASSERT_TRUE(purged) << purged.error().for_log();
  EXPECT_GE(*purged, 1u);
  EXPECT_EQ(testing::scalar(world_->url, "SELECT count(*) FROM orgs WHERE id = '" + org + "'"),
            "0");
  EXPECT_EQ(testing::scalar(world_->shard_urls.front(),
                            "SELECT count(*) FROM audit_pending WHERE org_id = '" + org +
                                "' AND action = 'org.purged'"),
            "1");
  EXPECT_EQ(testing::scalar(world_->url, "SELECT count(*) FROM audit_pending WHERE org_id = '" +
                                             org + "' AND action = 'org.purged'"),
            "0");
}

TEST_F(ShardsTest, AJobEnqueuedWithAChangeOverBothPlanesRunsOnTheOrgsShard) {
  auto away = new_owner("enqueued@example.com");
  place(away, "eu-1");
  jobs::Queue queue(database());
  std::vector<jobs::NewJob> batch(2);
  for (auto& job : batch) {
    job.queue = "relayed";
    job.kind = "test.relayed";
    job.unique = jobs::NewJob::Unique{"once", std::chrono::seconds(60)};
  }
  batch[1].unique.reset();
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto tx = co_await database().begin(scope(away), Isolation::read_committed, Planes::both);
    CO_ASSERT_TRUE(tx);
    auto ids = co_await queue.enqueue(*tx, away.org.id, batch);
    CO_ASSERT_TRUE(ids);
    EXPECT_TRUE((*ids)[0] && (*ids)[1]);
    auto committed = co_await tx->commit();
    EXPECT_TRUE(committed) << (committed ? "" : committed.error().for_log());
  }());
  auto jobs_on = [&](const std::string& url) {
    return testing::scalar(url, "SELECT count(*) FROM jobs WHERE queue = 'relayed'");
  };
  EXPECT_EQ(jobs_on(world_->shard_urls.front()), "2");
  EXPECT_EQ(jobs_on(world_->url), "0");
  EXPECT_EQ(testing::scalar(world_->shard_urls.front(),
                            "SELECT count(*) FROM job_unique_keys WHERE key = 'once'"),
            "1");
}

TEST_F(ShardsTest, NewOrgsGoToTheShardWithTheFewestBytes) {
  PlacementOptions options;
  options.bytes_per_new_org = std::int64_t{1} << 40;  // each placement outweighs any difference
  options.refresh = std::chrono::hours(1);
  ShardPlacement placement(database(), options);
  auto bytes = [](const std::string& url) {
    return std::stoll(testing::scalar(url, "SELECT pg_database_size(current_database())"));
  };
  const std::size_t smaller = bytes(world_->url) <= bytes(world_->shard_urls.front()) ? 0 : 1;
  auto background = Scope::background(Tenant::control(), std::chrono::seconds(5));
  std::vector<std::size_t> chosen;
  for (int i = 0; i < 3; ++i) {
    auto shard = block_on(world_->io, placement.choose(background));
    ASSERT_TRUE(shard) << shard.error().for_log();
    chosen.push_back(*shard);
  }
  // A burst spreads: what this process placed counts until the next measure.
  EXPECT_EQ(chosen, (std::vector<std::size_t>{smaller, 1 - smaller, smaller}));
}

TEST_F(ShardsTest, AReservedShardGetsNoNewOrgs) {
  EXPECT_FALSE(ShardPlacement::check(database(), {{"ap-9"}}));
  EXPECT_FALSE(ShardPlacement::check(database(), {{"main", "eu-1"}}));
  EXPECT_TRUE(ShardPlacement::check(database(), {{"main"}}));
  ShardPlacement placement(database(), {{"main"}});
  auto background = Scope::background(Tenant::control(), std::chrono::seconds(5));
  for (int i = 0; i < 3; ++i) {
    auto shard = block_on(world_->io, placement.choose(background));
    ASSERT_TRUE(shard) << shard.error().for_log();
    EXPECT_EQ(*shard, 1u);
  }
}

TEST_F(ShardsTest, AnOrgCreatedOnAnotherShardHasItsChainAndDataThere) {
  auto owner = new_owner("placed@example.com");
  identity::OrgOptions options;
  options.place_org = [](const Scope&) -> asio::awaitable<Result<std::size_t>> {
    co_return std::size_t{1};
  };
  identity::OrgService placed(database(), options);
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto at = testing::ServiceWorld::scope_of(owner.principal, std::nullopt);
    auto org = co_await placed.create(at, owner.principal, "Placed");
    CO_ASSERT_TRUE(org);
    owner.org = *org;
  }());
  const auto id = owner.org.id.to_string();
  const auto& shard = world_->shard_urls.front();
  EXPECT_EQ(testing::scalar(world_->url, "SELECT shard FROM orgs WHERE id = '" + id + "'"), "eu-1");
  auto chains = [&](const std::string& url) {
    return testing::scalar(url, "SELECT count(*) FROM audit_chains WHERE org_id = '" + id + "'");
  };
  EXPECT_EQ(chains(shard), "1");
  EXPECT_EQ(chains(world_->url), "0");
  create_tasks(owner);
  EXPECT_EQ(collections_of(shard, owner), "1");
  EXPECT_EQ(collections_of(world_->url, owner), "0");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto at = scope(owner);
    auto sealed = co_await audit::seal_committed(database(), at);
    EXPECT_TRUE(sealed) << (sealed ? "" : sealed.error().for_log());
    audit::Filter everything;
    auto events = co_await audit::list(database(), at, everything);
    CO_ASSERT_TRUE(events);
    std::vector<std::string> actions;
    for (const auto& event : *events) actions.push_back(event.change.action);
    // Newest first; org.created was relayed, the collection's and the record's written there.
    EXPECT_EQ(actions,
              (std::vector<std::string>{"record.created", "collection.created", "org.created"}));
  }());
}

TEST_F(ShardsTest, TheRunnerRunsEachShardsJobsOnceAndFinishesThemWhereTheyAre) {
  using namespace std::chrono_literals;
  auto home = new_owner("jobs-home@example.com");
  auto away = new_owner("jobs-away@example.com");
  place(away, "eu-1");
  jobs::Queue queue(database());
  for (const auto* owner : {&home, &away}) {
    std::vector<jobs::NewJob> batch(3);
    for (auto& job : batch) {
      job.queue = "sharded";
      job.kind = "test.sharded";
    }
    auto ids = block_on(world_->io, queue.enqueue(scope(*owner), batch));
    ASSERT_TRUE(ids) << (ids ? "" : ids.error().for_log());
  }
  std::mutex mutex;
  std::multiset<std::string> seen;  // "<org>@<shard>" per attempt
  jobs::RunnerOptions options;
  options.queues = {{"sharded", 2}};
  options.poll_interval = 50ms;
  options.shutdown_timeout = 200ms;
  jobs::Runner runner(queue, world_->metrics, options);
  runner.handle("test.sharded",
                [&](const jobs::Job& job, const Scope& at) -> asio::awaitable<jobs::Outcome> {
                  EXPECT_EQ(at.tenant, Tenant::org(job.org_id));
                  std::lock_guard lock(mutex);
                  seen.insert(job.org_id.to_string() + "@" + std::to_string(job.shard));
                  co_return jobs::Outcome::done();
                });
  auto completed = [&](const std::string& url) {
    return testing::scalar(
        url, "SELECT count(*) FROM jobs WHERE queue = 'sharded' AND state = 'completed'");
  };
  std::atomic<bool> stopping{false};
  runner.start(0, 1, world_->io, stopping);
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await testing::until([&] {
      return completed(world_->url) == "3" && completed(world_->shard_urls.front()) == "3";
    }));
    stopping = true;
  }());
  std::lock_guard lock(mutex);
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen.count(home.org.id.to_string() + "@0"), 3u);
  EXPECT_EQ(seen.count(away.org.id.to_string() + "@1"), 3u);
}

TEST_F(ShardsTest, TheSealerChainsTheEventsOfEveryShard) {
  using namespace std::chrono_literals;
  auto home = new_owner("sealed-home@example.com");
  auto away = new_owner("sealed-away@example.com");
  place(away, "eu-1");
  create_tasks(home);
  create_tasks(away);
  std::mutex mutex;
  std::set<std::string> sealed;  // orgs the sealer reported
  audit::Sealer sealer(database(), audit::SealerOptions{}, [&](const Uuid& org, std::int64_t) {
    std::lock_guard lock(mutex);
    sealed.insert(org.to_string());
  });
  auto head = [](const std::string& url, const Owner& owner) {
    return testing::scalar(
        url, "SELECT last_seq FROM audit_chains WHERE org_id = '" + owner.org.id.to_string() + "'");
  };
  std::atomic<bool> stopping{false};
  bool ended = false;
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(co_await asio::this_coro::executor, sealer.run(stopping),
                   [&ended](const std::exception_ptr&) { ended = true; });
    EXPECT_TRUE(co_await testing::until([&] {
      std::lock_guard lock(mutex);
      return sealed.contains(home.org.id.to_string()) && sealed.contains(away.org.id.to_string());
    }));
    stopping = true;
    EXPECT_TRUE(co_await testing::until([&] { return ended; }));  // before `sealer` goes
  }());
  // Two events on the shard (the collection and its record), past org.created on main.
  EXPECT_EQ(head(world_->shard_urls.front(), away), "2");
  EXPECT_EQ(testing::scalar(world_->shard_urls.front(),
                            "SELECT count(*) FROM audit_pending WHERE org_id = '" +
                                away.org.id.to_string() + "'"),
            "0");
  EXPECT_NE(head(world_->url, home), "0");
}

TEST_F(ShardsTest, TheMeterWritesEachOrgsUsageOnItsShard) {
  auto home = new_owner("usage-home@example.com");
  auto away = new_owner("usage-away@example.com");
  place(away, "eu-1");
  usage::Meter meter(database(), usage::MeterOptions{}, nullptr);
  meter.count(home.org.id, usage::Count::api_requests, 3);
  meter.count(away.org.id, usage::Count::api_requests, 5);
  auto flushed = block_on(world_->io, meter.flush());
  ASSERT_TRUE(flushed) << flushed.error().for_log();
  EXPECT_EQ(meter.unwritten(usage::Count::api_requests), 0);
  auto requests = [](const std::string& url, const Owner& owner) {
    return testing::scalar(url,
                           "SELECT COALESCE(sum(api_requests), 0) FROM usage_hourly "
                           "WHERE org_id = '" +
                               owner.org.id.to_string() + "'");
  };
  const auto& shard = world_->shard_urls.front();
  EXPECT_EQ(requests(world_->url, home), "3");
  EXPECT_EQ(requests(shard, home), "0");
  EXPECT_EQ(requests(shard, away), "5");
  EXPECT_EQ(requests(world_->url, away), "0");
  // The batch's key is on both shards: written again (its answer lost), it adds nothing.
  EXPECT_EQ(testing::scalar(shard, "SELECT count(*) FROM usage_batches WHERE process = '" +
                                       meter.process().to_string() + "'"),
            "1");
}

}  // namespace
}  // namespace liftoff::db
