#include "liftoff/db/slow_log.hpp"

#include <gtest/gtest.h>

#include "liftoff/core/metrics.hpp"

namespace liftoff::db {
namespace {

using namespace std::chrono_literals;

constexpr Statement kGet{Plane::tenant, "records.get", "SELECT data FROM records WHERE id = $1"};
constexpr Statement kPut{Plane::tenant, "records.put",
                         "  with x AS (SELECT 1) UPDATE records SET data = $2 WHERE id = $1"};
constexpr Statement kBegin{Plane::any, "liftoff.begin", "BEGIN"};

TEST(SlowLog, OnlyStatementsAtOrOverTheThresholdAreSlowAndZeroMeansNone) {
  core::Registry metrics;
  SlowLog log({250ms}, metrics);
  EXPECT_FALSE(log.slow(249ms));
  EXPECT_TRUE(log.slow(250ms));
  SlowLog off({0ms}, metrics);
  EXPECT_FALSE(off.slow(1h));
}

TEST(SlowLog, QueuesOneExplainPerStatementPerIntervalWithItsParameters) {
  core::Registry metrics;
  SlowLog log({250ms, 60'000ms, 16}, metrics);
  log.record("replica-1", kGet, Params(std::string("a secret")), 300ms, true);
  log.record("replica-1", kGet, Params(std::string("another")), 400ms, true);  // within the minute
  log.record("primary", kPut, Params(std::string("k"), std::string("v")), 500ms, false);
  log.record("primary", kBegin, Params(), 500ms, true);  // nothing to explain
  auto first = log.next_to_explain();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->name, "records.get");
  EXPECT_EQ(first->node, "replica-1");
  EXPECT_EQ(first->sql, kGet.sql);
  EXPECT_EQ(first->params.size(), 1);
  EXPECT_EQ(first->elapsed, 300ms);
  auto second = log.next_to_explain();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->name, "records.put");
  EXPECT_EQ(second->params.size(), 2);
  EXPECT_FALSE(log.next_to_explain());
  // Every slow one is counted, explained or not.
  auto text = metrics.render();
  EXPECT_NE(text.find("db_slow_statements_total{statement=\"records.get\"} 2"), std::string::npos)
      << text;
  EXPECT_NE(text.find("db_slow_statements_total{statement=\"liftoff.begin\"} 1"),
            std::string::npos);
}

TEST(SlowLog, AFullQueueExplainsNoMore) {
  core::Registry metrics;
  SlowLog log({1ms, 60'000ms, 2}, metrics);
  for (const auto* statement : {&kGet, &kPut}) log.record("primary", *statement, {}, 5ms, true);
  constexpr Statement kThird{Plane::tenant, "records.third", "SELECT 3"};
  log.record("primary", kThird, {}, 5ms, true);
  int explained = 0;
  while (log.next_to_explain()) ++explained;
  EXPECT_EQ(explained, 2);
  // Not marked as explained when it was not queued: its next slow run is.
  log.record("primary", kThird, {}, 5ms, true);
  EXPECT_TRUE(log.next_to_explain());
}

TEST(SlowLog, KeepsEachStatementsCountTimesAndLatestPlanRedactedMostTimeFirst) {
  core::Registry metrics;
  SlowLog log({1ms, 60'000ms, 16}, metrics);
  log.record("primary", kGet, Params(std::string("k1")), 10ms, true);
  log.record("primary", kGet, Params(std::string("k2")), 30ms, true);
  log.record("replica-1", kGet, Params(std::string("k3")), 5ms, true);
  log.record("primary", kPut, Params(std::string("k"), std::string("v")), 100ms, false);
  auto first = log.next_to_explain();
  ASSERT_TRUE(first);
  log.explained(*first,
                R"j([{"Plan":{"Node Type":"Index Scan","Index Name":"records_pkey",)j"
                R"j("Index Cond":"(id = 'k1'::text)"}}])j",
                true);
  const auto summaries = log.summaries();
  ASSERT_EQ(summaries.size(), 3u);
  EXPECT_EQ(summaries[0].name, "records.put");
  EXPECT_EQ(summaries[0].count, 1);
  EXPECT_TRUE(summaries[0].plan.empty());  // not explained yet
  EXPECT_EQ(summaries[1].name, "records.get");
  EXPECT_EQ(summaries[1].node, "primary");
  EXPECT_EQ(summaries[1].sql, kGet.sql);
  EXPECT_EQ(summaries[1].count, 2);
  EXPECT_DOUBLE_EQ(summaries[1].total_ms, 40);
  EXPECT_DOUBLE_EQ(summaries[1].max_ms, 30);
  EXPECT_EQ(summaries[1].plan,
            R"j([{"Plan":{"Node Type":"Index Scan","Index Name":"records_pkey",)j"
            R"j("Index Cond":"(id = ?::text)"}}])j");
  EXPECT_EQ(summaries[2].node, "replica-1");
}

TEST(SlowLog, KeepsAtMostItsBoundOfSummaries) {
  core::Registry metrics;
  SlowLog log({1ms, 60'000ms, 16}, metrics);
  for (std::size_t i = 0; i < SlowLog::kMaxSummaries + 10; ++i)
    log.record("node-" + std::to_string(i), kGet, {}, 5ms, true);
  EXPECT_EQ(log.summaries().size(), SlowLog::kMaxSummaries);
}

TEST(SlowLog, RedactsEveryConstantOfAPlanButNotItsNamesOrParameters) {
  const std::string plan = R"j([{"Plan":{"Node Type":"Seq Scan","Relation Name":"users_2026",)j"
                           R"j("Alias":"u1","Filter":"((email = 'o''hara@x.example'::text) AND )j"
                           R"j((age > 42) AND (score < 3.5) AND (\"col 7\" = $1) AND (n = -7) )j"
                           R"j(AND (alternatives: SubPlan 1 or hashed SubPlan 2))",)j"
                           R"j("Output":["u1.id","'secret'::text"],"Plan Rows":12}}])j";
  EXPECT_EQ(
      SlowLog::redact_plan(plan),
      R"j([{"Plan":{"Node Type":"Seq Scan","Relation Name":"users_2026",)j"
      R"j("Alias":"u1","Filter":"((email = ?::text) AND (age > ?) AND (score < ?) AND )j"
      R"j((\"col 7\" = $1) AND (n = -?) AND (alternatives: SubPlan 1 or hashed SubPlan 2))",)j"
      R"j("Output":["u1.id","?::text"],"Plan Rows":12}}])j");
  EXPECT_EQ(SlowLog::redact_plan("not json"), "");
}

TEST(SlowLog, ExplainsQueriesAndChangesButNotTransactionControlOrUtilities) {
  for (const char* sql :
       {"SELECT 1", "select\n1", " WITH a AS (SELECT 1) SELECT * FROM a",
        "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t", "VALUES (1)", "TABLE t"})
    EXPECT_TRUE(SlowLog::explainable(sql)) << sql;
  for (const char* sql : {"BEGIN", "COMMIT", "SET statement_timeout = 0", "LOCK TABLE t",
                          "VACUUM t", "SELECTED", "", "   ", "select"})
    EXPECT_FALSE(SlowLog::explainable(sql)) << sql;
}

}  // namespace
}  // namespace liftoff::db
