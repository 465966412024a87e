// Index advice against a real server (pg_stat_statements and hypopg from Debian, loaded by the
// embedded PostgreSQL): a statement that scans a table for one customer gets an index on that
// column, with its estimated gain; a statement an index already serves gets none; and nothing is
// left behind (no index built, no hypothetical one kept).
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>

#include "liftoff/db/advisor.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"

namespace liftoff::db {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::block_on;

constexpr Statement kByCustomer{Plane::any, "advise_test.by_customer",
                                "SELECT id, total FROM advise_orders WHERE customer = $1"};
constexpr Statement kById{Plane::any, "advise_test.by_id",
                          "SELECT customer FROM advise_orders WHERE id = $1"};
constexpr Statement kIndexes{Plane::any, "advise_test.indexes",
                             "SELECT count(*) FROM pg_indexes WHERE tablename = 'advise_orders'"};

TEST(IndexAdvice, AdvisesAnIndexForAScanByAColumnAndNoneForWhatIsIndexed) {
  auto url = testing::fresh_database("advise");
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(url);
    auto deadline = deadline_after(60s);
    static constexpr Statement kCreate{
        Plane::any, "advise_test.create",
        "CREATE TABLE advise_orders (id bigserial PRIMARY KEY, customer int NOT NULL, "
        "total float8 NOT NULL)"};
    static constexpr Statement kFill{Plane::any, "advise_test.fill",
                                     "INSERT INTO advise_orders (customer, total) "
                                     "SELECT i % 5000, i FROM generate_series(1, 200000) i"};
    static constexpr Statement kAnalyze{Plane::any, "advise_test.analyze", "ANALYZE advise_orders"};
    static constexpr Statement kReset{Plane::any, "advise_test.reset",
                                      "SELECT pg_stat_statements_reset()"};
    static constexpr Statement kExtension{Plane::any, "advise_test.extension",
                                          "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"};
    for (const auto* statement : {&kCreate, &kFill, &kAnalyze, &kExtension, &kReset}) {
      auto done = co_await conn->query(*statement, Params::none(), deadline);
      if (!done) ADD_FAILURE() << statement->name << ": " << done.error().for_log();
      CO_ASSERT_OK(done);
    }
    for (int i = 0; i < 20; ++i) {
      Params customer(std::int32_t{i});
      auto scanned = co_await conn->query(kByCustomer, customer, deadline);
      CO_ASSERT_OK(scanned);
      Params id(std::int64_t{i + 1});
      auto found = co_await conn->query(kById, id, deadline);
      CO_ASSERT_OK(found);
    }

    // The statements with the most time: the scan first, each with its calls and share.
    auto totals = co_await top_statements(*conn, 50, deadline);
    CO_ASSERT_OK(totals);
    CO_ASSERT_TRUE(!totals->empty());
    const auto scan = std::find_if(totals->begin(), totals->end(), [](const auto& t) {
      return t.query.find("advise_orders WHERE customer = $1") != std::string::npos;
    });
    CO_ASSERT_TRUE(scan != totals->end());
    EXPECT_EQ(scan->calls, 20);
    EXPECT_EQ(scan->rows, 20 * 40);  // 200,000 orders over 5,000 customers
    EXPECT_GT(scan->share, 0.0);
    EXPECT_LE(scan->share, 1.0);
    EXPECT_NEAR(scan->mean_ms * 20, scan->total_ms, 1e-6 * scan->total_ms + 1e-9);
    for (std::size_t i = 1; i < totals->size(); ++i)
      EXPECT_GE((*totals)[i - 1].total_ms, (*totals)[i].total_ms) << "most time first";

    AdviceOptions options;
    auto advice = co_await advise_indexes(*conn, options);
    CO_ASSERT_OK(advice);
    EXPECT_GE(advice->statements, 2u);
    for (const auto& note : advice->notes) std::cerr << "advice note: " << note << "\n";
    CO_ASSERT_TRUE(!advice->indexes.empty());
    const auto& index = advice->indexes.front();
    EXPECT_EQ(index.create, "CREATE INDEX CONCURRENTLY ON public.advise_orders (customer)");
    EXPECT_GT(index.gain, 0.5) << "the scan is most of the statements' time";
    EXPECT_GT(index.estimated_bytes, 0);
    CO_ASSERT_TRUE(index.statements.size() == 1u);
    EXPECT_NE(index.statements[0].find("customer = $1"), std::string::npos);
    EXPECT_GT(index.statement_gains[0], 0.9);
    for (const auto& other : advice->indexes)
      EXPECT_EQ(other.create.find("(id)"), std::string::npos) << other.create;

    // Hypothetical only: the table has its primary key and nothing more, and the session is clean.
    auto indexes = co_await conn->query(kIndexes, Params::none(), deadline);
    EXPECT_EQ(indexes->front().get<std::int64_t>(0), 1);
    static constexpr Statement kHypothetical{Plane::any, "advise_test.hypothetical",
                                             "SELECT count(*) FROM hypopg_list_indexes"};
    auto left = co_await conn->query(kHypothetical, Params::none(), deadline);
    CO_ASSERT_OK(left);
    EXPECT_EQ(left->front().get<std::int64_t>(0), 0);
  }());
}

TEST(IndexAdvice, StatementTotalsWithoutPgStatStatementsSayHowToGetThem) {
  auto url = testing::fresh_database("advise_none");
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(url);
    auto totals = co_await top_statements(*conn, 10, deadline_after(10s));
    CO_ASSERT_TRUE(!totals);
    EXPECT_EQ(totals.error().code, Errc::unavailable);
    EXPECT_NE(totals.error().detail.find("pg_stat_statements cannot be read: `liftoff db advise` "
                                         "creates it"),
              std::string::npos)
        << totals.error().detail;
  }());
}

TEST(IndexAdvice, CandidatesComeFromFilteringScansEqualitiesFirst) {
  auto plan = R"json({"Plan": {"Node Type": "Limit", "Plans": [{"Node Type": "Sort", "Plans": [
      {"Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "public", "Alias": "o",
       "Filter": "((o.created_at > $2) AND (o.customer = $1) AND ((o.status)::text = 'open'::text) AND (o.deleted_at IS NULL))"},
      {"Node Type": "Seq Scan", "Relation Name": "lines", "Schema": "shop", "Alias": "l",
       "Filter": "(l.order_id = o.id)"},
      {"Node Type": "Index Scan", "Relation Name": "items", "Schema": "public",
       "Filter": "(price > $3)"}]}]}})json";
  EXPECT_EQ(candidate_indexes(plan),
            (std::vector<std::string>{"public.orders (customer, status, deleted_at)"}))
      << "at most three columns: the equalities fill them before the range";
  auto ranged = R"json({"Plan": {"Node Type": "Seq Scan", "Relation Name": "events",
      "Filter": "((kind = $1) AND (at >= $2) AND (at < $3))"}})json";
  EXPECT_EQ(candidate_indexes(ranged), (std::vector<std::string>{"public.events (kind, at)"}));
  EXPECT_TRUE(candidate_indexes("not json").empty());
  EXPECT_TRUE(
      candidate_indexes(R"json({"Plan": {"Node Type": "Seq Scan", "Relation Name": "t"}})json")
          .empty());
}

}  // namespace
}  // namespace liftoff::db
