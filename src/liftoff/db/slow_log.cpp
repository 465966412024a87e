#include "liftoff/db/slow_log.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cctype>

#include "liftoff/core/metrics.hpp"

namespace liftoff::db {

namespace json = boost::json;

SlowLog::SlowLog(SlowLogOptions options, core::Registry& metrics)
    : options_(options), metrics_(metrics) {}

void SlowLog::record(std::string_view node, const Statement& statement, const Params& params,
                     std::chrono::steady_clock::duration elapsed, bool ok) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(elapsed);
  json::object line{{"statement", statement.name},
                    {"node", node},
                    {"ms", static_cast<double>(micros.count()) / 1000.0},
                    {"ok", ok},
                    {"params", params.size()},
                    {"sql", statement.sql}};
  spdlog::warn("slow statement {}", json::serialize(line));
  metrics_
      .counter("db_slow_statements_total", "Statements slower than slow_statement_threshold",
               "statement=\"" + core::label_value(statement.name) + "\"")
      .inc();
  if (!explainable(statement.sql)) return;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  auto last = explained_at_.find(statement.name);
  if (last != explained_at_.end() && now - last->second < options_.explain_every) return;
  if (waiting_.size() >= options_.queue_limit) return;
  explained_at_.insert_or_assign(std::string(statement.name), now);
  waiting_.push_back(
      {std::string(node), std::string(statement.name), std::string(statement.sql), params, micros});
}

std::optional<SlowStatement> SlowLog::next_to_explain() {
  std::lock_guard lock(mutex_);
  if (waiting_.empty()) return std::nullopt;
  auto next = std::move(waiting_.front());
  waiting_.pop_front();
  return next;
}

void SlowLog::log_plan(const SlowStatement& statement, std::string_view plan_or_error, bool ok) {
  json::object line{{"statement", statement.name},
                    {"node", statement.node},
                    {"ms", static_cast<double>(statement.elapsed.count()) / 1000.0}};
  if (ok) {
    // EXPLAIN (FORMAT JSON) answers a JSON array; kept as JSON, not as a string of it.
    boost::system::error_code ec;
    auto plan = json::parse(plan_or_error, ec);
    if (ec) {
      line["plan_text"] = plan_or_error;
    } else {
      line["plan"] = std::move(plan);
    }
  } else {
    line["explain_error"] = plan_or_error;
  }
  spdlog::warn("slow statement plan {}", json::serialize(line));
}

bool SlowLog::explainable(std::string_view sql) {
  while (!sql.empty() && std::isspace(static_cast<unsigned char>(sql.front())) != 0)
    sql.remove_prefix(1);
  static constexpr std::array<std::string_view, 7> kKeywords = {
      "select", "with", "insert", "update", "delete", "values", "table"};
  for (auto keyword : kKeywords) {
    if (sql.size() <= keyword.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < keyword.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(sql[i])) == keyword[i];
    if (same && std::isalnum(static_cast<unsigned char>(sql[keyword.size()])) == 0) return true;
  }
  return false;
}

}  // namespace liftoff::db
