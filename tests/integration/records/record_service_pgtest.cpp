// RecordService against a real PostgreSQL, below HTTP: the list path with its cache and versions,
// Idempotency-Key replays, all-or-nothing batches, the background rewrite after a schema change,
// and tenants kept apart.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "integration/services_support.hpp"
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

    // The same query at the same state: the same version, from the cache.
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

}  // namespace
}  // namespace liftoff::records
