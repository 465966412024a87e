// Migrations against a real server: apply, idempotence, concurrent migrators, refusing newer
// schemas.
#include <gtest/gtest.h>

#include <thread>

#include "liftoff/db/migrations.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"

namespace liftoff::db {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::block_on;

constexpr Statement kCountWidgets{Plane::any, "migtest.count", "SELECT count(*) FROM widgets"};

const std::vector<Migration> kMigrations = {
    {1, "widgets", "CREATE TABLE widgets (id bigserial PRIMARY KEY, name text NOT NULL);"},
    {2, "seed", "INSERT INTO widgets (name) VALUES ('a'), ('b');"},
};

// A fresh database per test, so tests do not see each other's schema.
using testing::fresh_database;

TEST(Migrations, ApplyOnceThenNothingToDo) {
  auto url = fresh_database("mig_idempotent");
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(url);
    auto first = co_await migrate_up(*conn, kMigrations, deadline_after(10s));
    CO_ASSERT_TRUE(first);
    EXPECT_EQ(*first, (std::vector<int>{1, 2}));
    auto second = co_await migrate_up(*conn, kMigrations, deadline_after(10s));
    CO_ASSERT_TRUE(second);
    EXPECT_TRUE(second->empty());
    auto count = co_await conn->query(kCountWidgets, Params::none(), deadline_after(5s));
    EXPECT_EQ(count->front().get<std::int64_t>(0), 2);
    auto status = co_await schema_status(*conn, kMigrations, deadline_after(5s));
    EXPECT_TRUE(status->current());
    EXPECT_EQ(status->applied_version, 2);
    EXPECT_FALSE(status->migrations[0].applied_at.empty());
  }());
}

TEST(Migrations, StatusListsPendingMigrations) {
  auto url = fresh_database("mig_status");
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(url);
    std::vector<Migration> first_only(kMigrations.begin(), kMigrations.begin() + 1);
    EXPECT_TRUE(co_await migrate_up(*conn, first_only, deadline_after(10s)));
    auto status = co_await schema_status(*conn, kMigrations, deadline_after(5s));
    CO_ASSERT_TRUE(status);
    EXPECT_FALSE(status->current());
    EXPECT_EQ(status->pending(), 1u);
    EXPECT_FALSE(status->migrations[1].applied);
  }());
}

TEST(Migrations, FailingMigrationRollsBackEverything) {
  auto url = fresh_database("mig_failing");
  std::vector<Migration> broken = {kMigrations[0],
                                   {2, "broken", "INSERT INTO no_such_table VALUES (1);"}};
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(url);
    auto result = co_await migrate_up(*conn, broken, deadline_after(10s));
    EXPECT_FALSE(result);
    EXPECT_NE(result.error().detail.find("migration 2 (broken)"), std::string::npos);
    auto status = co_await schema_status(*conn, kMigrations, deadline_after(5s));
    EXPECT_EQ(status->applied_version, 0);  // migration 1 was rolled back with it
  }());
}

TEST(Migrations, TwoProcessesMigratingAtOnceApplyEachMigrationOnce) {
  auto url = fresh_database("mig_concurrent");
  std::vector<Migration> slow = kMigrations;
  slow.push_back({3, "slow", "SELECT pg_sleep(0.3);"});
  std::vector<int> applied_a, applied_b;
  bool ok_a = false, ok_b = false;
  auto migrator = [&](std::vector<int>& applied, bool& ok) {
    block_on([&]() -> asio::awaitable<void> {
      auto conn = co_await testing::connect_test(url);
      auto r = co_await migrate_up(*conn, slow, deadline_after(20s));
      ok = static_cast<bool>(r);
      if (r) applied = *r;
    }());
  };
  std::thread a([&] { migrator(applied_a, ok_a); });
  std::thread b([&] { migrator(applied_b, ok_b); });
  a.join();
  b.join();
  EXPECT_TRUE(ok_a);
  EXPECT_TRUE(ok_b);
  EXPECT_EQ(applied_a.size() + applied_b.size(), 3u);  // one did all the work, the other none
  EXPECT_TRUE(applied_a.empty() || applied_b.empty());
}

TEST(Migrations, RefusesASchemaNewerThanTheBinary) {
  auto url = fresh_database("mig_newer");
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(url);
    EXPECT_TRUE(co_await migrate_up(*conn, kMigrations, deadline_after(10s)));
    std::vector<Migration> older(kMigrations.begin(), kMigrations.begin() + 1);
    auto status = co_await schema_status(*conn, older, deadline_after(5s));
    EXPECT_FALSE(status);
    EXPECT_EQ(status.error().code, Errc::conflict);
    EXPECT_NE(status.error().detail.find("newer"), std::string::npos);
    auto up = co_await migrate_up(*conn, older, deadline_after(5s));
    EXPECT_FALSE(up);
  }());
}

TEST(Migrations, RefusesAnAppliedMigrationThatChanged) {
  auto url = fresh_database("mig_changed");
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(url);
    EXPECT_TRUE(co_await migrate_up(*conn, kMigrations, deadline_after(10s)));
    auto edited = kMigrations;
    edited[1].sql = "INSERT INTO widgets (name) VALUES ('c');";
    auto status = co_await schema_status(*conn, edited, deadline_after(5s));
    EXPECT_FALSE(status);
    EXPECT_NE(status.error().detail.find("differs"), std::string::npos);
  }());
}

TEST(Migrations, EmbeddedMigrationsAreOrderedAndApply) {
  const auto& embedded = embedded_migrations();
  ASSERT_FALSE(embedded.empty());
  for (std::size_t i = 1; i < embedded.size(); ++i)
    EXPECT_LT(embedded[i - 1].version, embedded[i].version);
  auto url = fresh_database("mig_embedded");
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(url);
    auto applied = co_await migrate_up(*conn, embedded, deadline_after(30s));
    EXPECT_TRUE(applied) << (applied ? "" : applied.error().detail);
    // Searches never read a GIN pending list (0008): writes put words straight into the index.
    static constexpr Statement kOptions{
        Plane::any, "test.search_index_options",
        "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = "
        "'records_search_idx'"};
    Params none;
    auto options = co_await conn->query(kOptions, none, deadline_after(5s));
    EXPECT_TRUE(options && options->size() == 1);
    if (options && options->size() == 1) {
      EXPECT_EQ(options->front().get<std::string>(0), "fastupdate=off");
    }
  }());
}

}  // namespace
}  // namespace liftoff::db
