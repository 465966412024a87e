#pragma once
// Statements slower than a threshold (docs/operations.md, "Slow statements"). Each is logged (its
// name, node, time and SQL text, whose values are all parameters; the parameters themselves only
// by their number) and counted by name (db_slow_statements_total). The first of a statement in
// each minute is also queued to be EXPLAINed (FORMAT JSON) with its own parameters, off the request
// path (Database::explain_slow), so the log shows the plan PostgreSQL chose for those values.
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

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
  // Logs the plan of `statement` (PostgreSQL's EXPLAIN (FORMAT JSON) output), or why there is none.
  static void log_plan(const SlowStatement& statement, std::string_view plan_or_error, bool ok);

  // Whether EXPLAIN takes `sql`: a query or a data-changing statement (not transaction control,
  // SET, or a utility command).
  [[nodiscard]] static bool explainable(std::string_view sql);

 private:
  SlowLogOptions options_;
  core::Registry& metrics_;
  std::mutex mutex_;
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> explained_at_;
  std::deque<SlowStatement> waiting_;
};

}  // namespace liftoff::db
