#include "liftoff/db/advisor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <optional>
#include <regex>
#include <set>

namespace liftoff::db {
namespace {

namespace json = boost::json;

// Statements of this file are built per call (Statement::fixed false): each is planned once.
Statement dynamic(std::string_view name, const std::string& sql) {
  return Statement{Plane::any, name, sql, false};
}

constexpr std::string_view kSuperuserHint =
    "; it needs a superuser (CREATE EXTENSION), and pg_stat_statements (and pg_qualstats) in "
    "shared_preload_libraries: see docs/operations.md, \"Slow statements and index advice\"";

// The statements with the most execution time in this database: queries and changes that an
// index can serve, not the advisor's own.
constexpr Statement kTopStatements{
    Plane::any, "advise.top_statements",
    "SELECT query, calls, total_exec_time FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND query ~* '^\\s*(select|with|update|delete)\\M' "
    "AND query !~* '(pg_stat_statements|pg_qualstats|hypopg|pg_catalog|information_schema|"
    "pg_stat_|EXPLAIN)' "
    "ORDER BY total_exec_time DESC LIMIT $1"};

// Every query and change's totals, by their share of the time of all of them.
constexpr Statement kStatementTotals{
    Plane::any, "statements.top",
    "SELECT query, calls, total_exec_time, mean_exec_time, rows, "
    "total_exec_time / NULLIF(sum(total_exec_time) OVER (), 0) FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND toplevel "
    "AND query ~* '^\\s*(select|with|insert|update|delete)\\M' "
    "ORDER BY total_exec_time DESC LIMIT $1"};

struct Considered {
  std::string query;
  int params = 0;
  double total_ms = 0;
  double weight = 0;  // share of the considered statements' time
  double cost = 0;    // the generic plan's total cost, without hypothetical indexes
};

// pg_stat_statements replaces constants with parameters, which leaves a typed literal such as
// `interval '1 second'` as `interval $3`: not SQL. Written back as a cast, `$3::interval`.
std::string castable(const std::string& query) {
  static const std::regex kTypedLiteral(
      R"(\b(interval|timestamptz|timestamp|date|time|uuid|jsonb|json|numeric)\s+(\$\d+))",
      std::regex::icase);
  return std::regex_replace(query, kTypedLiteral, "$2::$1");
}

int parameters_in(const std::string& query) {
  static const std::regex kParam(R"(\$(\d+))");
  int most = 0;
  for (auto it = std::sregex_iterator(query.begin(), query.end(), kParam);
       it != std::sregex_iterator(); ++it)
    most = std::max(most, std::stoi((*it)[1].str()));
  return most;
}

// The generic plan of `query` (as PostgreSQL would plan it once for any values): its EXPLAIN
// (VERBOSE, FORMAT JSON) top object.
boost::asio::awaitable<Result<json::object>> generic_plan(Connection& conn,
                                                          const std::string& query, int params,
                                                          Deadline deadline) {
  auto prepare_sql = "PREPARE liftoff_advise AS " + castable(query);
  auto prepare = dynamic("advise.prepare", prepare_sql);
  auto prepared = co_await conn.query(prepare, Params::none(), deadline);
  if (!prepared) co_return prepared.error();
  std::string nulls;
  for (int i = 0; i < params; ++i) nulls += i == 0 ? "NULL" : ", NULL";
  auto explain_sql = "EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE liftoff_advise" +
                     (params > 0 ? "(" + nulls + ")" : std::string());
  auto explain = dynamic("advise.explain", explain_sql);
  auto plan = co_await conn.query(explain, Params::none(), deadline);
  static constexpr Statement kDeallocate{Plane::any, "advise.deallocate",
                                         "DEALLOCATE liftoff_advise"};
  auto deallocated = co_await conn.query(kDeallocate, Params::none(), deadline);
  if (!plan) co_return plan.error();
  if (!deallocated) co_return deallocated.error();
  boost::system::error_code ec;
  auto parsed = json::parse(plan->front().get<std::string>(0), ec);
  if (ec || !parsed.is_array() || parsed.as_array().empty() || !parsed.as_array()[0].is_object())
    co_return make_error(Errc::internal, "EXPLAIN answered something else than a plan");
  co_return parsed.as_array()[0].as_object();
}

double total_cost(const json::object& explained) {
  const auto* plan = explained.if_contains("Plan");
  if (plan == nullptr || !plan->is_object()) return 0;
  const auto* cost = plan->as_object().if_contains("Total Cost");
  return cost != nullptr && cost->is_number() ? cost->to_number<double>() : 0;
}

// The columns a filter compares with a value (a parameter, a constant, NULL), equalities first.
std::vector<std::string> compared_columns(const std::string& filter) {
  // "(status = $1)", "((status)::text = 'open'::text)", "(r.priority > $2)", "(x IS NULL)".
  static const std::regex kComparison(
      R"(\(+\s*(?:[A-Za-z_][A-Za-z0-9_]*\.)?([A-Za-z_][A-Za-z0-9_]*)\s*\)?(?:::[A-Za-z ]+?)?\s*(=|<=|>=|<|>|IS NULL|IS NOT NULL)\s*([$'0-9\-(N]|ANY|$|\)))");
  std::vector<std::string> equal, range;
  for (auto it = std::sregex_iterator(filter.begin(), filter.end(), kComparison);
       it != std::sregex_iterator(); ++it) {
    auto column = (*it)[1].str();
    auto op = (*it)[2].str();
    auto& into = op == "=" || op == "IS NULL" ? equal : range;
    if (std::find(into.begin(), into.end(), column) == into.end()) into.push_back(column);
  }
  for (const auto& column : range) {
    if (std::find(equal.begin(), equal.end(), column) == equal.end()) {
      equal.push_back(column);  // one range column, after the equalities
      break;
    }
  }
  if (equal.size() > 3) equal.resize(3);
  return equal;
}

void collect_candidates(const json::object& node, std::set<std::string>& out) {
  auto text = [&](std::string_view key) -> std::string {
    const auto* v = node.if_contains(key);
    return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  if (text("Node Type") == "Seq Scan" && !text("Filter").empty() &&
      !text("Relation Name").empty()) {
    auto columns = compared_columns(text("Filter"));
    if (!columns.empty()) {
      std::string list;
      for (const auto& c : columns) list += (list.empty() ? "" : ", ") + c;
      auto schema = text("Schema").empty() ? std::string("public") : text("Schema");
      out.insert(schema + "." + text("Relation Name") + " (" + list + ")");
    }
  }
  if (const auto* plans = node.if_contains("Plans"); plans != nullptr && plans->is_array()) {
    for (const auto& child : plans->as_array())
      if (child.is_object()) collect_candidates(child.as_object(), out);
  }
}

struct Tried {
  std::string ddl;  // CREATE INDEX ON ... USING btree (...)
  std::int64_t bytes = 0;
  double gain = 0;
  std::vector<double> costs;  // per considered statement
};

boost::asio::awaitable<Result<void>> run(Connection& conn, std::string_view name,
                                         const std::string& sql, Deadline deadline) {
  auto statement = dynamic(name, sql);
  auto done = co_await conn.query(statement, Params::none(), deadline);
  if (!done) co_return done.error();
  co_return Result<void>{};
}

}  // namespace

std::vector<std::string> candidate_indexes(std::string_view plan_json) {
  std::set<std::string> out;
  boost::system::error_code ec;
  auto parsed = json::parse(plan_json, ec);
  if (!ec && parsed.is_object()) {
    if (const auto* plan = parsed.as_object().if_contains("Plan"); plan && plan->is_object())
      collect_candidates(plan->as_object(), out);
  }
  return {out.begin(), out.end()};
}

boost::asio::awaitable<Result<Advice>> advise_indexes(Connection& conn,
                                                      const AdviceOptions& options) {
  auto deadline = deadline_after(options.timeout);
  Advice advice;

  // The extensions: pg_stat_statements and hypopg are needed, pg_qualstats is used when loaded.
  for (std::string_view extension : {"pg_stat_statements", "hypopg"}) {
    auto create = fmt::format("CREATE EXTENSION IF NOT EXISTS {}", extension);
    auto created = co_await run(conn, "advise.create_extension", create, deadline);
    if (!created) {
      auto error = make_error(Errc::unavailable,
                              fmt::format("{} is not available{}", extension, kSuperuserHint));
      error.cause = created.error().for_log();
      co_return error;
    }
  }
  static constexpr Statement kQualstatsLoaded{
      Plane::any, "advise.qualstats_loaded",
      "SELECT current_setting('shared_preload_libraries') ~ 'pg_qualstats' AND EXISTS "
      "(SELECT 1 FROM pg_available_extensions WHERE name = 'pg_qualstats')"};
  auto qualstats = co_await conn.query(kQualstatsLoaded, Params::none(), deadline);
  if (!qualstats) co_return qualstats.error();
  advice.qualstats = qualstats->front().get<bool>(0);
  if (advice.qualstats) {
    const std::string create = "CREATE EXTENSION IF NOT EXISTS pg_qualstats";
    auto created = co_await run(conn, "advise.create_extension", create, deadline);
    advice.qualstats = created.has_value();
  }
  if (!advice.qualstats)
    advice.notes.emplace_back(
        "pg_qualstats is not loaded: candidates come from the statements' plans only");

  Params top(static_cast<std::int64_t>(options.top_statements));
  auto rows = co_await conn.query(kTopStatements, top, deadline);
  if (!rows) {
    auto error = make_error(Errc::unavailable,
                            "pg_stat_statements cannot be read" + std::string(kSuperuserHint));
    error.cause = rows.error().for_log();
    co_return error;
  }
  const std::string generic_plans = "SET plan_cache_mode = force_generic_plan";
  if (auto set = co_await run(conn, "advise.generic", generic_plans, deadline); !set)
    co_return set.error();
  const std::string reset = "SELECT hypopg_reset()";
  if (auto done = co_await run(conn, "advise.reset", reset, deadline); !done)
    co_return done.error();

  std::vector<Considered> considered;
  std::set<std::string> candidates;
  std::size_t unplanned = 0;
  std::string first_unplanned;
  for (int r = 0; r < rows->size(); ++r) {
    Considered statement{(*rows)[r].get<std::string>(0), 0, (*rows)[r].get<double>(2)};
    statement.params = parameters_in(statement.query);
    auto plan = co_await generic_plan(conn, statement.query, statement.params, deadline);
    if (!plan) {
      if (unplanned++ == 0)
        first_unplanned = plan.error().for_log() + ": " + statement.query.substr(0, 120);
      continue;
    }
    statement.cost = total_cost(*plan);
    if (statement.cost <= 0) continue;
    if (const auto* top_plan = plan->if_contains("Plan"); top_plan && top_plan->is_object())
      collect_candidates(top_plan->as_object(), candidates);
    considered.push_back(std::move(statement));
  }
  if (unplanned > 0)
    advice.notes.push_back(fmt::format("{} statement(s) could not be planned alone; the first: {}",
                                       unplanned, first_unplanned));
  advice.statements = considered.size();
  for (const auto& s : considered) advice.statements_ms += s.total_ms;
  for (auto& s : considered)
    s.weight = advice.statements_ms > 0 ? s.total_ms / advice.statements_ms
                                        : 1.0 / static_cast<double>(considered.size());
  if (considered.empty()) {
    advice.notes.emplace_back("no statement to advise on yet: pg_stat_statements has none");
    co_return advice;
  }

  std::vector<std::string> ddls;
  ddls.reserve(candidates.size());
  for (const auto& c : candidates) ddls.push_back("CREATE INDEX ON " + c);
  if (advice.qualstats) {
    static constexpr Statement kQualstatsAdvice{
        Plane::any, "advise.qualstats",
        "SELECT v FROM json_array_elements_text(pg_qualstats_index_advisor(min_filter => 100, "
        "min_selectivity => 0) -> 'indexes') v"};
    auto suggested = co_await conn.query(kQualstatsAdvice, Params::none(), deadline);
    if (suggested) {
      for (int r = 0; r < suggested->size(); ++r) {
        auto ddl = (*suggested)[r].get<std::string>(0);
        if (std::find(ddls.begin(), ddls.end(), ddl) == ddls.end()) ddls.push_back(ddl);
      }
    } else {
      advice.notes.push_back("pg_qualstats' advisor failed: " + suggested.error().for_log());
    }
  }
  // An index on a small table saves nothing worth its upkeep, whatever the planner estimates.
  static const std::regex kTable(
      R"(ON\s+(?:ONLY\s+)?([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*))");
  static constexpr Statement kRows{
      Plane::any, "advise.table_rows",
      "SELECT c.reltuples::int8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = $1 AND c.relname = $2"};
  std::vector<std::string> worth;
  std::size_t small = 0;
  for (const auto& ddl : ddls) {
    std::smatch table;
    if (!std::regex_search(ddl, table, kTable)) continue;
    Params names(table[1].str(), table[2].str());
    auto rows = co_await conn.query(kRows, names, deadline);
    if (rows && !rows->empty() && rows->front().get<std::int64_t>(0) >= options.min_rows) {
      worth.push_back(ddl);
    } else {
      ++small;
    }
  }
  if (small > 0)
    advice.notes.push_back(
        fmt::format("{} candidate index(es) passed over: their tables have fewer than {} rows",
                    small, options.min_rows));
  ddls = std::move(worth);
  if (ddls.size() > options.max_candidates) ddls.resize(options.max_candidates);

  // Greedy: the candidate that saves most with the indexes chosen so far in place, then the next,
  // while one saves at least min_gain. Chosen indexes stay as hypothetical ones for the next round.
  std::vector<double> baseline;
  baseline.reserve(considered.size());
  for (const auto& s : considered) baseline.push_back(s.cost);
  std::vector<std::string> chosen;
  for (int round = 0; round < 5; ++round) {
    std::optional<Tried> best;
    for (const auto& ddl : ddls) {
      if (std::find(chosen.begin(), chosen.end(), ddl) != chosen.end()) continue;
      static constexpr Statement kHypothetical{
          Plane::any, "advise.hypothetical",
          "SELECT indexrelid::int8, hypopg_relation_size(indexrelid) FROM hypopg_create_index($1)"};
      Params ddl_param(ddl);
      auto made = co_await conn.query(kHypothetical, ddl_param, deadline);
      if (!made || made->empty()) continue;
      Tried tried{ddl, (*made)[0].get<std::int64_t>(1), 0, {}};
      for (std::size_t i = 0; i < considered.size(); ++i) {
        auto plan =
            co_await generic_plan(conn, considered[i].query, considered[i].params, deadline);
        double cost = plan ? total_cost(*plan) : baseline[i];
        tried.costs.push_back(cost);
        // The cost it saves beyond the indexes chosen so far, as a share of the statement's own.
        if (cost < baseline[i])
          tried.gain += considered[i].weight * (baseline[i] - cost) / considered[i].cost;
      }
      static constexpr Statement kDrop{Plane::any, "advise.drop",
                                       "SELECT hypopg_drop_index($1::int8::oid)"};
      Params id((*made)[0].get<std::int64_t>(0));
      auto dropped = co_await conn.query(kDrop, id, deadline);
      if (!dropped) co_return dropped.error();
      if (!best || tried.gain > best->gain) best = std::move(tried);
    }
    if (!best || best->gain < options.min_gain) break;
    // Kept in place for the next round, as if it had been built.
    static constexpr Statement kKeep{Plane::any, "advise.keep",
                                     "SELECT indexrelid FROM hypopg_create_index($1)"};
    Params ddl_param(best->ddl);
    auto kept = co_await conn.query(kKeep, ddl_param, deadline);
    if (!kept) co_return kept.error();
    chosen.push_back(best->ddl);
    IndexAdvice index;
    index.create = best->ddl;
    if (index.create.starts_with("CREATE INDEX ON "))
      index.create.replace(0, 16, "CREATE INDEX CONCURRENTLY ON ");
    index.gain = best->gain;
    index.estimated_bytes = best->bytes;
    for (std::size_t i = 0; i < considered.size(); ++i) {
      if (best->costs[i] < baseline[i]) {
        index.statements.push_back(considered[i].query);
        index.statement_gains.push_back(1.0 - best->costs[i] / baseline[i]);
        baseline[i] = best->costs[i];
      }
    }
    advice.indexes.push_back(std::move(index));
  }
  // Nothing is left behind: hypothetical indexes and the setting live in this session only.
  if (auto done = co_await run(conn, "advise.reset", reset, deadline); !done)
    co_return done.error();
  const std::string setting = "RESET plan_cache_mode";
  if (auto done = co_await run(conn, "advise.plan_cache_mode", setting, deadline); !done)
    co_return done.error();
  co_return advice;
}

json::object advice_json(const Advice& advice) {
  json::array indexes;
  for (const auto& index : advice.indexes) {
    json::array statements;
    for (std::size_t i = 0; i < index.statements.size(); ++i)
      statements.push_back(json::object{{"query", index.statements[i]},
                                        {"estimated_cost_saved", index.statement_gains[i]}});
    indexes.push_back(json::object{{"create", index.create},
                                   {"estimated_gain", index.gain},
                                   {"estimated_bytes", index.estimated_bytes},
                                   {"statements", std::move(statements)}});
  }
  return {{"statements", advice.statements},
          {"statements_ms", advice.statements_ms},
          {"qualstats", advice.qualstats},
          {"indexes", std::move(indexes)},
          {"notes", json::array(advice.notes.begin(), advice.notes.end())}};
}

boost::asio::awaitable<Result<std::vector<StatementTotals>>> top_statements(Connection& conn,
                                                                            std::size_t limit,
                                                                            Deadline deadline) {
  auto rows =
      co_await conn.query(kStatementTotals, Params(static_cast<std::int64_t>(limit)), deadline);
  if (!rows) {
    if (rows.error().code != Errc::internal) co_return rows.error();
    auto error = make_error(Errc::unavailable,
                            "pg_stat_statements cannot be read: `liftoff db advise` creates it" +
                                std::string(kSuperuserHint));
    error.cause = rows.error().for_log();
    co_return error;
  }
  std::vector<StatementTotals> out;
  out.reserve(rows->size());
  for (int r = 0; r < rows->size(); ++r) {
    const auto& row = (*rows)[r];
    out.push_back({row.get<std::string>(0), row.get<std::int64_t>(1), row.get<double>(2),
                   row.get<double>(3), row.get<std::int64_t>(4),
                   row.is_null(5) ? 0.0 : row.get<double>(5)});
  }
  co_return out;
}

}  // namespace liftoff::db
