#pragma once
// Index advice (`liftoff db advise`, docs/operations.md "Slow statements and index advice"): the
// statements that took the most database time (pg_stat_statements), indexes that might serve them
// (from their plans' sequential scans, and from pg_qualstats where it is installed), each tried as
// a hypothetical index (hypopg: nothing is built) while every statement is planned again. An index
// is advised when the planner's estimated cost of the statements, weighted by the time each took,
// falls by at least `min_gain`.
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/connection.hpp"

namespace liftoff::db {

struct AdviceOptions {
  std::size_t top_statements = 25;    // by total execution time
  double min_gain = 0.05;             // share of the statements' weighted estimated cost saved
  std::size_t max_candidates = 40;    // indexes tried
  std::int64_t min_rows = 10'000;     // tables smaller than this (by the planner's count) get none
  std::chrono::seconds timeout{300};  // for the whole advice
};

struct IndexAdvice {
  std::string create;  // CREATE INDEX CONCURRENTLY ON schema.table USING btree (columns)
  // The estimated share of the considered statements' cost it saves, each statement weighted by
  // its share of their execution time.
  double gain = 0;
  std::int64_t estimated_bytes = 0;     // hypopg's estimate of the index's size
  std::vector<std::string> statements;  // the statements it helps, by their query text
  std::vector<double> statement_gains;  // each one's estimated cost saved (0-1)
};

struct Advice {
  std::size_t statements = 0;  // considered (planned without error)
  double statements_ms = 0;    // their total execution time since pg_stat_statements was reset
  bool qualstats = false;      // pg_qualstats' candidates were tried too
  std::vector<IndexAdvice> indexes;  // best first
  std::vector<std::string> notes;    // what limited the advice
};

// Advises on the database `conn` is connected to (a primary: hypothetical indexes and PREPARE
// are per session and leave nothing behind). Creates the extensions it needs when they are missing
// (pg_stat_statements, hypopg; pg_qualstats when available), which takes a superuser; errors say
// what is missing and how to add it.
[[nodiscard]] boost::asio::awaitable<Result<Advice>> advise_indexes(Connection& conn,
                                                                    const AdviceOptions& options);

// The advice as `liftoff db advise --json` prints it for one cluster and the operators' console
// shows it: statements, statements_ms, qualstats, indexes [{create, estimated_gain,
// estimated_bytes, statements [{query, estimated_cost_saved}]}], notes.
[[nodiscard]] boost::json::object advice_json(const Advice& advice);

// One statement's totals since pg_stat_statements was last reset, as it normalizes them (its
// constants are parameters: $1, $2...).
struct StatementTotals {
  std::string query;
  std::int64_t calls = 0;
  double total_ms = 0;
  double mean_ms = 0;
  std::int64_t rows = 0;
  double share = 0;  // of the execution time of every query and change in this database
};
// The queries and changes (not utility statements, whose text keeps its values) that took the
// most execution time in the database `conn` is connected to, most first, at most `limit`. Needs
// pg_stat_statements in that database (created by `liftoff db advise`; without it,
// Errc::unavailable saying so); another role's statements are only seen with pg_read_all_stats.
[[nodiscard]] boost::asio::awaitable<Result<std::vector<StatementTotals>>> top_statements(
    Connection& conn, std::size_t limit, Deadline deadline);

// The indexes a plan (EXPLAIN (FORMAT JSON)'s top object) suggests: for each sequential scan that
// filters, an index on the columns it compares with a value, equalities first (then one range),
// as "schema.table (a, b)". For tests.
[[nodiscard]] std::vector<std::string> candidate_indexes(std::string_view plan_json);

}  // namespace liftoff::db
