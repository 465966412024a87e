#include "liftoff/db/slow_log.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cctype>

#include "liftoff/core/metrics.hpp"

namespace liftoff::db {

namespace json = boost::json;

namespace {

bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// `text` with each quoted literal ('...', '' inside it) and each number that starts no name and
// is not a parameter's ($1) or a subplan's ("SubPlan 2") replaced by `?`. Quoted identifiers
// ("...") and words stay as they are.
std::string redact_constants(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\'' || c == '"') {
      std::size_t end = i + 1;
      while (end < text.size()) {
        if (text[end] == c) {
          if (end + 1 < text.size() && text[end + 1] == c) {
            end += 2;  // a doubled quote inside
            continue;
          }
          break;
        }
        ++end;
      }
      end = std::min(end + 1, text.size());
      if (c == '"') {
        out.append(text.substr(i, end - i));
      } else {
        out += '?';
      }
      i = end;
    } else if (word_char(c) || c == '$') {
      std::size_t end = i + 1;
      while (end < text.size() && word_char(text[end])) ++end;
      const bool number = std::isdigit(static_cast<unsigned char>(c)) != 0;
      const bool plan_number = number && out.ends_with("Plan ");
      if (number && !plan_number) {
        while (end < text.size() &&
               (text[end] == '.' || std::isdigit(static_cast<unsigned char>(text[end])) != 0))
          ++end;
        out += '?';
      } else {
        out.append(text.substr(i, end - i));
      }
      i = end;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

void redact_strings(json::value& value) {
  if (value.is_string()) {
    value = redact_constants(value.get_string());
  } else if (value.is_array()) {
    for (auto& item : value.get_array()) redact_strings(item);
  } else if (value.is_object()) {
    for (auto& member : value.get_object()) redact_strings(member.value());
  }
}

}  // namespace

std::string SlowLog::redact_plan(std::string_view plan_json) {
  boost::system::error_code ec;
  auto plan = json::parse(plan_json, ec);
  if (ec) return "";
  redact_strings(plan);
  return json::serialize(plan);
}

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
  const double ms = static_cast<double>(micros.count()) / 1000.0;
  std::lock_guard lock(mutex_);
  auto key = std::pair{std::string(node), std::string(statement.name)};
  auto summary = summaries_.find(key);
  if (summary == summaries_.end() && summaries_.size() < kMaxSummaries)
    summary =
        summaries_.emplace(key, SlowSummary{key.first, key.second, std::string(statement.sql)})
            .first;
  if (summary != summaries_.end()) {
    summary->second.count += 1;
    summary->second.total_ms += ms;
    summary->second.max_ms = std::max(summary->second.max_ms, ms);
    summary->second.last_at =
        std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  }
  if (!explainable(statement.sql)) return;
  auto now = std::chrono::steady_clock::now();
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

void SlowLog::explained(const SlowStatement& statement, std::string_view plan_or_error, bool ok) {
  json::object line{{"statement", statement.name},
                    {"node", statement.node},
                    {"ms", static_cast<double>(statement.elapsed.count()) / 1000.0}};
  std::string plan;
  if (ok) {
    // EXPLAIN (FORMAT JSON) answers a JSON array; kept as JSON, not as a string of it.
    plan = redact_plan(plan_or_error);
    if (plan.empty()) {
      line["plan_text"] = redact_constants(plan_or_error);
    } else {
      line["plan"] = json::parse(plan);
    }
  } else {
    line["explain_error"] = plan_or_error;
  }
  spdlog::warn("slow statement plan {}", json::serialize(line));
  if (plan.empty()) return;
  std::lock_guard lock(mutex_);
  auto summary = summaries_.find(std::pair{statement.node, statement.name});
  if (summary != summaries_.end()) summary->second.plan = std::move(plan);
}

std::vector<SlowSummary> SlowLog::summaries() const {
  std::vector<SlowSummary> out;
  {
    std::lock_guard lock(mutex_);
    out.reserve(summaries_.size());
    for (const auto& [key, summary] : summaries_) out.push_back(summary);
  }
  std::ranges::sort(
      out, [](const SlowSummary& a, const SlowSummary& b) { return a.total_ms > b.total_ms; });
  return out;
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
