// RecordService against a real PostgreSQL, below HTTP: the list path with its cache and versions,
// Idempotency-Key replays, all-or-nothing batches, the background rewrite after a schema change,
// and tenants kept apart.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/detached.hpp>
#include <boost/json/parse.hpp>
#include <map>
#include <set>

#include "integration/services_support.hpp"
#include "liftoff/audit/audit.hpp"
#include "liftoff/audit/sealer.hpp"
#include "liftoff/records/service.hpp"
#include "support/async.hpp"

namespace liftoff::records {
namespace {
const plans::Allowance kAllowance{plans::Limit::collections, 1000, "test"};
namespace asio = boost::asio;
namespace json = boost::json;
using testing::block_on;

class RecordServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new testing::ServiceWorld("record_service_test");
    service_ = new RecordService(*world_->database, RecordsOptions{}, &world_->metrics);
  }
  static void TearDownTestSuite() {
    delete service_;
    delete world_;
  }

  // A new owner with a collection `tasks` (title: text; priority: integer, indexed; both required).
  testing::ServiceWorld::Owner owner_with_tasks(const std::string& email) {
    return block_on(world_->io, [&]() -> asio::awaitable<testing::ServiceWorld::Owner> {
      auto owner = co_await world_->new_owner(email);
      auto fields = json::parse(R"([{"name":"title","type":"text","required":true},
                                    {"name":"priority","type":"integer","indexed":true,"required":true}])");
      auto created =
          co_await service_->create_collection(scope(owner), "tasks", fields, kAllowance);
      EXPECT_TRUE(created) << (created ? "" : created.error().for_log());
      co_return owner;
    }());
  }
  static db::Scope scope(const testing::ServiceWorld::Owner& owner) {
    return testing::ServiceWorld::scope_of(owner.principal, owner.org.id);
  }
  static json::object task(std::string title, std::int64_t priority) {
    return json::object{{"title", std::move(title)}, {"priority", priority}};
  }
  static double list_cache_hits() {
    auto text = world_->metrics.render();
    auto at = text.find("cache_lookups_total{cache=\"list\",result=\"hit\"}");
    if (at == std::string::npos) return 0;
    return std::stod(text.substr(text.find(' ', at) + 1));
  }

  static testing::ServiceWorld* world_;
  static RecordService* service_;
};
testing::ServiceWorld* RecordServiceTest::world_ = nullptr;
RecordService* RecordServiceTest::service_ = nullptr;

TEST_F(RecordServiceTest, AListIsServedFromItsCacheUntilTheOrgChanges) {
  auto owner = owner_with_tasks("lists@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    for (int i = 1; i <= 3; ++i) {
      auto created = co_await service_->create_record(scope(owner), "tasks",
                                                      task("t" + std::to_string(i), i), {});
      CO_ASSERT_TRUE(created);
    }
    ListQuery query;
    query.filter = "priority >= 2";
    query.sort = "priority";
    auto first = co_await service_->list(scope(owner), "tasks", query, "");
    EXPECT_TRUE(first) << (first ? "" : first.error().for_log());
    CO_ASSERT_TRUE(first);
    CO_ASSERT_TRUE(first->body.has_value());
    auto records = json::parse(*first->body).at("records").as_array();
    CO_ASSERT_TRUE(records.size() == 2u);
    EXPECT_EQ(records[0].at("data").at("title"), "t2");

    // The same query at the same state: the same version, from the cache. Sealing the org's
    // events does not change its state.
    auto sealed = co_await audit::seal(
        *world_->database, db::Scope::background(db::Tenant::every_org(), std::chrono::seconds(10)),
        1000);
    CO_ASSERT_TRUE(sealed);
    EXPECT_FALSE(sealed->empty());
    auto hits = list_cache_hits();
    auto again = co_await service_->list(scope(owner), "tasks", query, "");
    CO_ASSERT_TRUE(again);
    EXPECT_EQ(again->version, first->version);
    EXPECT_EQ(again->body, first->body);
    EXPECT_EQ(list_cache_hits(), hits + 1);

    // A caller that holds the version gets no body.
    auto known = co_await service_->list(scope(owner), "tasks", query, first->version);
    CO_ASSERT_TRUE(known);
    EXPECT_EQ(known->version, first->version);
    EXPECT_FALSE(known->body.has_value());

    // Another query is another answer; a write moves the version on.
    query.sort = "-priority";
    auto other = co_await service_->list(scope(owner), "tasks", query, "");
    CO_ASSERT_TRUE(other);
    EXPECT_NE(other->version, first->version);
    query.sort = "priority";
    auto created = co_await service_->create_record(scope(owner), "tasks", task("t4", 4), {});
    CO_ASSERT_TRUE(created);
    auto after = co_await service_->list(scope(owner), "tasks", query, first->version);
    CO_ASSERT_TRUE(after);
    EXPECT_NE(after->version, first->version);
    CO_ASSERT_TRUE(after->body.has_value());
    EXPECT_EQ(json::parse(*after->body).at("records").as_array().size(), 3u);
  }());
}

// What the audit chain says of an org: verified, with its events oldest first.
struct ChainState {
  audit::VerifyReport report;
  std::vector<audit::Entry> entries;
};
asio::awaitable<ChainState> chain_of(db::Database& database, const db::Scope& scope) {
  ChainState state;
  auto lease = co_await database.acquire(db::Intent::write, scope);
  EXPECT_TRUE(lease);
  if (!lease) co_return state;
  auto report = co_await audit::verify(**lease, scope.org(), std::chrono::seconds(10));
  EXPECT_TRUE(report) << (report ? "" : report.error().for_log());
  if (report) state.report = *report;
  auto entries = co_await audit::entries(database, scope, 0, 1'000'000, 10'000);
  EXPECT_TRUE(entries);
  if (entries) state.entries = std::move(*entries);
  co_return state;
}

// Two sealers (two processes' worth) on the test's executor, until stop().
class TwoSealers {
 public:
  TwoSealers(db::Database& database, const audit::SealerOptions& options,
             const audit::Sealer::OnSealed& on_sealed)
      : one_(database, options, on_sealed), two_(database, options, on_sealed) {}
  void start(const asio::any_io_executor& executor) {
    for (auto* sealer : {&one_, &two_})
      asio::co_spawn(executor, sealer->run(stopping_), [this](std::exception_ptr) { --running_; });
  }
  // Stops both after their current round; whether they ended in time.
  asio::awaitable<bool> stop() {
    stopping_ = true;
    co_return co_await testing::until([this] { return running_ == 0; });
  }

 private:
  audit::Sealer one_;
  audit::Sealer two_;
  std::atomic<bool> stopping_ = false;
  int running_ = 2;
};

asio::awaitable<void> update_shared(RecordService* service, db::Scope scope, std::string id, int n,
                                    int* left) {
  const json::object patch{{"priority", n}};
  const std::string collection = "tasks";
  auto updated = co_await service->update_record(scope, collection, id, patch, true, std::nullopt);
  EXPECT_TRUE(updated) << (updated ? "" : updated.error().for_log());
  --*left;
}

asio::awaitable<void> create_one(RecordService* service, db::Scope scope, int n, int* left) {
  const json::object data{{"title", "c" + std::to_string(n)}, {"priority", n}};
  const std::string collection = "tasks";
  const std::optional<Idempotency> no_key;
  auto created = co_await service->create_record(scope, collection, data, no_key);
  EXPECT_TRUE(created) << (created ? "" : created.error().for_log());
  --*left;
}

TEST_F(RecordServiceTest, ConcurrentWritesOfOneOrgAreSealedOnceEachInCommitOrderPerRecord) {
  auto owner = owner_with_tasks("sealing@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto s = scope(owner);
    auto shared = co_await service_->create_record(s, "tasks", task("shared", 0), {});
    CO_ASSERT_TRUE(shared);
    std::string id(json::parse(shared->body).at("id").as_string());

    // Committed, not sealed: verification reports the events waiting, and no tampering.
    auto before = co_await chain_of(*world_->database, s);
    EXPECT_TRUE(before.report.intact()) << before.report.problem;
    EXPECT_GE(before.report.unsealed, 1);

    // Two sealers (two processes' worth) take small rounds while 30 updates of one record and 30
    // creates race, each update waiting for the record's row lock.
    audit::SealerOptions options;
    options.interval = std::chrono::milliseconds(2);
    options.max_per_org = 7;
    std::int64_t announced = 0;
    auto on_sealed = [&](const db::Uuid& org, std::int64_t seq) {
      if (org == owner.org.id) announced = std::max(announced, seq);
    };
    TwoSealers sealers(*world_->database, options, on_sealed);
    auto executor = co_await asio::this_coro::executor;
    sealers.start(executor);
    int left = 60;
    for (int i = 1; i <= 30; ++i) {
      asio::co_spawn(executor, update_shared(service_, s, id, i, &left), asio::detached);
      asio::co_spawn(executor, create_one(service_, s, i, &left), asio::detached);
    }
    auto written = co_await testing::until([&] { return left == 0; });
    CO_ASSERT_TRUE(written);
    // Stopped sealers run one last round of at most max_per_org: wait for every event.
    auto all_sealed = co_await testing::until(
        [&] { return announced == before.report.events + before.report.unsealed + 60; });
    EXPECT_TRUE(all_sealed);
    auto stopped = co_await sealers.stop();
    CO_ASSERT_TRUE(stopped);

    auto after = co_await chain_of(*world_->database, s);
    EXPECT_TRUE(after.report.intact()) << after.report.problem;
    EXPECT_EQ(after.report.unsealed, 0);
    EXPECT_EQ(after.report.events, before.report.events + before.report.unsealed + 60);
    EXPECT_EQ(announced, after.report.events);
    // Each event once, and the shared record's versions in the order they committed.
    std::set<std::string> ids;
    std::int64_t last_version = 0;
    int updates = 0;
    for (const auto& e : after.entries) {
      EXPECT_TRUE(ids.insert(e.id.to_string()).second) << "sealed twice: " << e.id.to_string();
      if (e.target_id != id || !e.after) continue;
      auto version = json::parse(*e.after).at("version").as_int64();
      EXPECT_EQ(version, last_version + 1) << "at seq " << e.seq;
      last_version = version;
      updates += e.action == "record.updated" ? 1 : 0;
    }
    EXPECT_EQ(updates, 30);
    EXPECT_EQ(last_version, 31);
  }());
}

// A round seals every org with pending events in one set (migration 0020): each org's events go
// into its own chain after its own head, however the orgs' events interleave, and a round that
// reaches max_per_org for one org leaves the rest for the next.
TEST_F(RecordServiceTest, WritesOfSeveralOrgsAreSealedEachIntoItsOwnChain) {
  std::vector<testing::ServiceWorld::Owner> owners;
  for (int i = 0; i < 3; ++i)
    owners.push_back(owner_with_tasks("sets" + std::to_string(i) + "@example.com"));
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    std::vector<ChainState> before;
    for (const auto& owner : owners)
      before.push_back(co_await chain_of(*world_->database, scope(owner)));
    audit::SealerOptions options;
    options.interval = std::chrono::milliseconds(2);
    options.max_per_org = 4;
    std::map<std::string, std::int64_t> announced;
    auto on_sealed = [&](const db::Uuid& org, std::int64_t seq) {
      auto& last = announced[org.to_string()];
      last = std::max(last, seq);
    };
    TwoSealers sealers(*world_->database, options, on_sealed);
    auto executor = co_await asio::this_coro::executor;
    sealers.start(executor);
    // The orgs' creates interleave: 10 rounds of one create in each org.
    int left = 30;
    for (int i = 1; i <= 10; ++i)
      for (const auto& owner : owners)
        asio::co_spawn(executor, create_one(service_, scope(owner), i, &left), asio::detached);
    auto written = co_await testing::until([&] { return left == 0; });
    CO_ASSERT_TRUE(written);
    // Stopped sealers run one last round of at most max_per_org per org: wait for every event.
    auto all_sealed = co_await testing::until([&] {
      for (std::size_t k = 0; k < owners.size(); ++k) {
        auto expected = before[k].report.events + before[k].report.unsealed + 10;
        if (announced[owners[k].org.id.to_string()] != expected) return false;
      }
      return true;
    });
    EXPECT_TRUE(all_sealed);
    auto stopped = co_await sealers.stop();
    CO_ASSERT_TRUE(stopped);

    for (std::size_t k = 0; k < owners.size(); ++k) {
      auto after = co_await chain_of(*world_->database, scope(owners[k]));
      EXPECT_TRUE(after.report.intact()) << after.report.problem;
      EXPECT_EQ(after.report.unsealed, 0);
      EXPECT_EQ(after.report.events, before[k].report.events + before[k].report.unsealed + 10);
      EXPECT_EQ(announced[owners[k].org.id.to_string()], after.report.events);
      int created = 0;
      for (const auto& e : after.entries) {
        EXPECT_EQ(e.org_id, owners[k].org.id);
        created += e.action == "record.created" ? 1 : 0;
      }
      EXPECT_EQ(created, 10);
    }
  }());
}

TEST_F(RecordServiceTest, AListRefusesWhatTheSchemaDoesNotHaveNamingThePart) {
  auto owner = owner_with_tasks("badlists@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    ListQuery bad_sort;
    bad_sort.sort = "nope";
    auto sorted = co_await service_->list(scope(owner), "tasks", bad_sort, "");
    CO_ASSERT_TRUE(!sorted);
    EXPECT_EQ(sorted.error().code, Errc::bad_request);
    ListQuery bad_fields;
    bad_fields.fields = std::vector<std::string>{"title", "nope"};
    auto fields = co_await service_->list(scope(owner), "tasks", bad_fields, "");
    CO_ASSERT_TRUE(!fields);
    CO_ASSERT_TRUE(!fields.error().fields.empty());
    EXPECT_EQ(fields.error().fields.front().field, "fields");
    auto missing = co_await service_->list(scope(owner), "nothing_here", ListQuery{}, "");
    CO_ASSERT_TRUE(!missing);
    EXPECT_EQ(missing.error().code, Errc::not_found);
  }());
}

TEST_F(RecordServiceTest, AnIdempotencyKeyReplaysTheFirstAnswerAndRefusesAnotherRequest) {
  auto owner = owner_with_tasks("idempotent@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    Idempotency key{"key-1", "hash-of-request-1"};
    auto first = co_await service_->create_record(scope(owner), "tasks", task("once", 1), key);
    CO_ASSERT_TRUE(first);
    EXPECT_FALSE(first->replayed);
    auto replay = co_await service_->create_record(scope(owner), "tasks", task("once", 1), key);
    CO_ASSERT_TRUE(replay);
    EXPECT_TRUE(replay->replayed);
    EXPECT_EQ(replay->status, 201);
    EXPECT_EQ(replay->body, first->body);
    Idempotency other{"key-1", "hash-of-request-2"};
    auto refused = co_await service_->create_record(scope(owner), "tasks", task("twice", 2), other);
    CO_ASSERT_TRUE(!refused);
    EXPECT_EQ(refused.error().code, Errc::validation_failed);
    auto all = co_await service_->list(scope(owner), "tasks", ListQuery{}, "");
    CO_ASSERT_TRUE(all);
    EXPECT_EQ(json::parse(*all->body).at("records").as_array().size(), 1u);  // created once
  }());
}

TEST_F(RecordServiceTest, ABatchAppliesAllOrNothingAndNamesTheFailingOperation) {
  auto owner = owner_with_tasks("batch@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    std::vector<BatchOperation> operations(2);
    operations[0].data = task("good", 1);
    operations[1].data = json::object{{"title", "no priority"}};  // priority is required
    auto failed = co_await service_->batch(scope(owner), "tasks", operations, false);
    CO_ASSERT_TRUE(!failed);
    EXPECT_EQ(failed.error().code, Errc::validation_failed);
    CO_ASSERT_TRUE(!failed.error().fields.empty());
    EXPECT_EQ(failed.error().fields.front().field.rfind("operations[1]", 0), 0u);
    auto none = co_await service_->list(scope(owner), "tasks", ListQuery{}, "");
    CO_ASSERT_TRUE(none);
    EXPECT_TRUE(json::parse(*none->body).at("records").as_array().empty());

    operations[1].data = task("also good", 2);
    auto applied = co_await service_->batch(scope(owner), "tasks", operations, true);
    CO_ASSERT_TRUE(applied);
    CO_ASSERT_TRUE(applied->size() == 2u);
    EXPECT_EQ((*applied)[1].status, 201);
    CO_ASSERT_TRUE((*applied)[1].record.has_value());
    auto both = co_await service_->list(scope(owner), "tasks", ListQuery{}, "");
    CO_ASSERT_TRUE(both);
    EXPECT_EQ(json::parse(*both->body).at("records").as_array().size(), 2u);
  }());
}

TEST_F(RecordServiceTest, ABatchOfCreatesIsStoredWholeWithAnEventPerRecordAndNamesATakenValue) {
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto owner = co_await world_->new_owner("bulk@example.com");
    auto s = scope(owner);
    auto fields = json::parse(R"([{"name":"code","type":"text","required":true,"unique":true},
                                  {"name":"n","type":"integer","indexed":true},
                                  {"name":"note","type":"text"}])");
    auto collection = co_await service_->create_collection(s, "codes", fields, kAllowance);
    CO_ASSERT_TRUE(collection);
    std::vector<BatchOperation> operations(300);
    for (int i = 0; i < 300; ++i) {
      operations[i].data = json::object{{"code", "c" + std::to_string(i)}, {"n", i % 10}};
      if (i % 2 == 0) operations[i].data["note"] = "word" + std::to_string(i);
    }
    auto applied = co_await service_->batch(s, "codes", operations, false);
    CO_ASSERT_TRUE(applied);
    CO_ASSERT_TRUE(applied->size() == 300u);
    // Stored as single creates store them: slots (a filter on the indexed field), search words.
    ListQuery query;
    query.filter = "n = 3";
    query.limit = 100;
    query.count = CountMode::exact;
    auto threes = co_await service_->list(s, "codes", query, "");
    CO_ASSERT_TRUE(threes);
    EXPECT_EQ(json::parse(*threes->body).at("records").as_array().size(), 30u);
    ListQuery search;
    search.q = "word42";
    auto found = co_await service_->list(s, "codes", search, "");
    CO_ASSERT_TRUE(found);
    auto hits = json::parse(*found->body).at("records").as_array();
    CO_ASSERT_TRUE(hits.size() == 1u);
    EXPECT_EQ(hits[0].at("data").at("code"), "c42");
    auto one = co_await service_->record(s, "codes", (*applied)[7].id.to_string());
    CO_ASSERT_TRUE(one);
    EXPECT_EQ(one->version, 1);
    EXPECT_EQ(json::parse(one->data).at("code"), "c7");
    // One record.created event per record, in the batch's order.
    auto sealed = co_await audit::seal_committed(*world_->database, s);
    CO_ASSERT_TRUE(sealed);
    auto entries = co_await audit::entries(*world_->database, s, 0, 1'000'000, 10'000);
    CO_ASSERT_TRUE(entries);
    std::vector<std::string> created;
    for (const auto& e : *entries) {
      if (e.action == "record.created") created.push_back(e.target_id);
    }
    CO_ASSERT_TRUE(created.size() == 300u);
    for (std::size_t i = 0; i < created.size(); ++i)
      EXPECT_EQ(created[i], (*applied)[i].id.to_string()) << i;

    // A value already taken: the answer names the operation, and nothing is applied.
    std::vector<BatchOperation> clash(3);
    clash[0].data = json::object{{"code", "new-1"}};
    clash[1].data = json::object{{"code", "new-2"}};
    clash[2].data = json::object{{"code", "c5"}};
    auto refused = co_await service_->batch(s, "codes", clash, false);
    CO_ASSERT_TRUE(!refused);
    EXPECT_EQ(refused.error().code, Errc::conflict);
    CO_ASSERT_TRUE(!refused.error().fields.empty());
    EXPECT_EQ(refused.error().fields.front().field.rfind("operations[2]", 0), 0u)
        << refused.error().fields.front().field;
    ListQuery everything;
    everything.count = CountMode::exact;
    auto all = co_await service_->list(s, "codes", everything, "");
    CO_ASSERT_TRUE(all);
    EXPECT_EQ(json::parse(*all->body).at("count"), 300);
  }());
}

TEST_F(RecordServiceTest, ASchemaChangeIsRewrittenInTheBackgroundAndReadsSeeItAtOnce) {
  auto owner = owner_with_tasks("rewrite@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 5; ++i) {
      auto created = co_await service_->create_record(scope(owner), "tasks", task("r", i), {});
      CO_ASSERT_TRUE(created);
    }
    auto patch = json::parse(R"({"rename":{"title":"name"}})").as_object();
    auto changed = co_await service_->change_schema(scope(owner), "tasks", patch);
    CO_ASSERT_TRUE(changed);
    EXPECT_TRUE(changed->schema.rewriting());
    // Reads see the new name before any row is rewritten.
    auto listed = co_await service_->list(scope(owner), "tasks", ListQuery{}, "");
    CO_ASSERT_TRUE(listed);
    auto body = json::parse(*listed->body);
    for (const auto& r : body.at("records").as_array()) {
      EXPECT_TRUE(r.at("data").as_object().contains("name"));
      EXPECT_FALSE(r.at("data").as_object().contains("title"));
    }
    // Steps of two rewrite the five rows, then settle the schema.
    auto background = db::Scope::background(db::Tenant::every_org(), std::chrono::seconds(10));
    std::int64_t rewritten = 0;
    for (int step = 0; step < 10; ++step) {
      auto some = co_await service_->rewrite_some(background, 2);
      CO_ASSERT_TRUE(some);
      if (*some == 0) break;
      rewritten += *some;
    }
    EXPECT_GE(rewritten, 5);
    auto settled = co_await service_->collection(scope(owner), "tasks");
    CO_ASSERT_TRUE(settled);
    EXPECT_FALSE((*settled)->schema.rewriting());
  }());
}

TEST_F(RecordServiceTest, AnotherOrganizationNeverSeesTheRecords) {
  auto alice = owner_with_tasks("alice@example.com");
  auto bob = owner_with_tasks("bob@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto created = co_await service_->create_record(scope(alice), "tasks", task("secret", 1), {});
    CO_ASSERT_TRUE(created);
    auto id = json::parse(created->body).at("id").as_string();
    auto read = co_await service_->record(scope(bob), "tasks", std::string(id));
    CO_ASSERT_TRUE(!read);
    EXPECT_EQ(read.error().code, Errc::not_found);
    auto own = co_await service_->record(scope(alice), "tasks", std::string(id));
    CO_ASSERT_TRUE(own);
    auto bobs = co_await service_->list(scope(bob), "tasks", ListQuery{}, "");
    CO_ASSERT_TRUE(bobs);
    EXPECT_TRUE(json::parse(*bobs->body).at("records").as_array().empty());
  }());
}

// A purged org's collections and records go, one collection per statement, and nobody else's:
// what the org's purge runs before its row goes (collections no longer reference orgs, so no
// cascade does it).
TEST_F(RecordServiceTest, PurgingAnOrgDeletesItsCollectionsAndRecordsOnly) {
  auto doomed = owner_with_tasks("purged@example.com");
  auto kept = owner_with_tasks("kept-beside-purged@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto notes = json::parse(R"([{"name":"title","type":"text"}])");
    auto made = co_await service_->create_collection(scope(doomed), "notes", notes, kAllowance);
    CO_ASSERT_TRUE(made);
    for (const auto* owner : {&doomed, &kept}) {
      for (int i = 0; i < 3; ++i) {
        auto created = co_await service_->create_record(scope(*owner), "tasks", task("t", i), {});
        CO_ASSERT_TRUE(created);
      }
    }
    auto before = co_await service_->holdings(scope(kept));
    CO_ASSERT_TRUE(before);

    auto purged = co_await service_->purge_org(scope(doomed));
    CO_ASSERT_TRUE(purged);
    EXPECT_EQ(*purged, 2);
    auto gone = co_await service_->holdings(scope(doomed));
    CO_ASSERT_TRUE(gone);
    EXPECT_EQ(gone->collections, 0);
    EXPECT_EQ(gone->records, 0);
    auto again = co_await service_->purge_org(scope(doomed));
    CO_ASSERT_TRUE(again);
    EXPECT_EQ(*again, 0) << "a purge that runs again finds nothing left";

    auto after = co_await service_->holdings(scope(kept));
    CO_ASSERT_TRUE(after);
    EXPECT_EQ(after->collections, before->collections);
    EXPECT_EQ(after->records, before->records);
    EXPECT_EQ(after->records, 3);
  }());
}

}  // namespace
}  // namespace liftoff::records
