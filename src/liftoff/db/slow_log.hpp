#pragma once
// Statements slower than a threshold (docs/operations.md, "Slow statements"). Each is logged (its
// name, node, time and SQL text, whose values are all parameters; the parameters themselves only
// by their number) and counted by name (db_slow_statements_total). The first of a statement in
// each minute is also queued to be EXPLAINed (FORMAT JSON) with its own parameters, off the request
// path (Database::explain_slow), so the log shows the plan PostgreSQL chose for those values, with
// every constant in it redacted. Each statement's count, times and latest plan are also kept in
// memory for the operators' console (/v1/operator/slow-statements).
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "liftoff/db/statement.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::core {
class Registry;
}

namespace liftoff::db {

struct SlowLogOptions {
  std::chrono::milliseconds threshold{0};  // a statement taking this long or longer; 0: none
  std::chrono::milliseconds explain_every{60'000};  // at most one EXPLAIN per statement per this
  std::size_t queue_limit = 16;  // statements waiting for their EXPLAIN; more are not explained
};

// A slow statement waiting for its EXPLAIN.
struct SlowStatement {
  std::string node;  // where it ran: "primary", "replica-1", "eu-1/primary"
  std::string name;
  std::string sql;
  Params params;  // for the EXPLAIN; never logged
  std::chrono::microseconds elapsed{0};
};

// What the slow log knows of one statement on one node since the process started.
struct SlowSummary {
  std::string node;
  std::string name;
  std::string sql;
  std::int64_t count = 0;
  double total_ms = 0;
  double max_ms = 0;
  Timestamp last_at;
  std::string plan;  // its latest EXPLAIN (FORMAT JSON), constants redacted; empty: none yet
};

class SlowLog {
 public:
  SlowLog(SlowLogOptions options, core::Registry& metrics);

  [[nodiscard]] bool slow(std::chrono::steady_clock::duration elapsed) const {
    return options_.threshold.count() > 0 && elapsed >= options_.threshold;
  }
  // Logs and counts a slow statement, and queues it for an EXPLAIN when one is due. Thread-safe.
  void record(std::string_view node, const Statement& statement, const Params& params,
              std::chrono::steady_clock::duration elapsed, bool ok);
  // The oldest statement waiting for its EXPLAIN, if any. Thread-safe.
  [[nodiscard]] std::optional<SlowStatement> next_to_explain();
  // Logs the plan of `statement` (PostgreSQL's EXPLAIN (FORMAT JSON) output, its constants
  // redacted), or why there is none, and keeps the plan with the statement's summary. Thread-safe.
  void explained(const SlowStatement& statement, std::string_view plan_or_error, bool ok);
  // Every statement's summary (at most kMaxSummaries of them), the most total time first.
  // Thread-safe.
  [[nodiscard]] std::vector<SlowSummary> summaries() const;
  static constexpr std::size_t kMaxSummaries = 256;

  // `plan_json` with every constant of every string in it (a condition's quoted literals and
  // numbers, as in "(email = 'a@b.example'::text)") replaced by `?`: the values a custom plan was
  // made for stay out of the log. Parameters ($1) and names stay. Text that is not JSON: "".
  [[nodiscard]] static std::string redact_plan(std::string_view plan_json);

  // Whether EXPLAIN takes `sql`: a query or a data-changing statement (not transaction control,
  // SET, or a utility command).
  [[nodiscard]] static bool explainable(std::string_view sql);

 private:
  SlowLogOptions options_;
  core::Registry& metrics_;
  mutable std::mutex mutex_;
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> explained_at_;
  std::deque<SlowStatement> waiting_;
  std::map<std::pair<std::string, std::string>, SlowSummary> summaries_;  // by (node, name)
};

}  // namespace liftoff::db
