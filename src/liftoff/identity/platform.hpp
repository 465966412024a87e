#pragma once
// The platform as its operators see it (docs/decisions/0025-operators-console.md): who the
// platform operators are (a role outside any org, granted from the command line), and what they
// look up across every organization: organizations and users by name or email, and the business
// figures (signups, active users, organizations by plan). Its statements are here too: each is a
// read of the control plane, or a grant. The operators' console and /v1/operator/... are its users.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/identity/store.hpp"

namespace liftoff::core {
class Gauge;
class Registry;
}  // namespace liftoff::core

namespace liftoff::identity {

struct PlatformOperator {
  User user;
  db::Timestamp granted_at;
};

// An organization as the operators' list shows it.
struct OrgSummary {
  db::Uuid id;
  std::string name;
  std::string plan;
  std::string shard;
  std::int64_t members = 0;
  db::Timestamp created_at;
  std::optional<db::Timestamp> deleted_at;
  std::optional<db::Timestamp> suspended_at;  // by an operator (OrgService::set_suspended)
  std::string suspended_reason;
};

// A user as the operators' list shows it.
struct UserSummary {
  User user;
  std::int64_t orgs = 0;
  std::optional<db::Timestamp> last_seen_at;  // their latest session's
};

struct BusinessFigures {
  struct Day {
    db::Timestamp day;  // midnight UTC
    std::int64_t signups = 0;
  };
  struct PlanCount {
    std::string plan;
    std::int64_t orgs = 0;
  };
  std::int64_t users = 0;
  std::int64_t orgs = 0;
  // Users with a session used within the last day, 7 days, 30 days.
  std::int64_t active_1d = 0;
  std::int64_t active_7d = 0;
  std::int64_t active_30d = 0;
  std::vector<Day> signups;      // the last 30 days, oldest first, days without signups included
  std::vector<PlanCount> plans;  // live orgs by plan, most first
  // The orgs created in a UTC month, and the plans those still alive are on now: how each month's
  // signups converted.
  struct Cohort {
    db::Timestamp month;           // its first midnight, UTC
    std::int64_t orgs = 0;         // created in it, deleted ones included
    std::int64_t deleted = 0;      // of those, deleted since
    std::vector<PlanCount> plans;  // the live ones by plan, by name
  };
  std::vector<Cohort> cohorts;  // the last 12 months, oldest first, months without orgs included
};

class PlatformService {
 public:
  explicit PlatformService(db::Database& database) : database_(database) {}

  // Whether the user is a platform operator, read from the primary: a revoked grant stops the
  // next request.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> is_operator(const db::Scope& scope,
                                                                 const db::Uuid& user_id);
  // Makes the user with `email` an operator (not_found for no such user); granting twice is one
  // grant.
  [[nodiscard]] boost::asio::awaitable<Result<PlatformOperator>> grant(const db::Scope& scope,
                                                                       std::string_view email);
  // Whether the user with `email` was an operator (not_found for no such user).
  [[nodiscard]] boost::asio::awaitable<Result<bool>> revoke(const db::Scope& scope,
                                                            std::string_view email);
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<PlatformOperator>>> operators(
      const db::Scope& scope);

  // Organizations whose name contains `text` (case-insensitive), or whose id it is; every
  // organization for an empty `text`. Newest first, at most `limit`, deleted ones included.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<OrgSummary>>> find_orgs(
      const db::Scope& scope, std::string_view text, int limit);
  // Users whose email or name contains `text` (case-insensitive), or whose id it is. Newest
  // first, at most `limit`.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<UserSummary>>> find_users(
      const db::Scope& scope, std::string_view text, int limit);

  [[nodiscard]] boost::asio::awaitable<Result<BusinessFigures>> business(const db::Scope& scope);

 private:
  db::Database& database_;
};

// The organizations suspended now, whose jobs and webhook deliveries every job worker holds
// (jobs::RunnerOptions::held_orgs) until the suspension is lifted: read from the control plane at
// each refresh (one statement over a partial index), so a suspension holds the org's background
// work from each worker's next refresh, and lifting it releases the work as soon. Nothing is
// dropped: held jobs wait in the queue, ready. Thread-safety: ids() from any thread, refresh()
// from one coroutine at a time.
class SuspendedOrgs {
 public:
  static constexpr std::size_t kMaxHeld = 10'000;  // more suspended orgs than this: the oldest

  SuspendedOrgs(db::Database& database, std::chrono::milliseconds statement_timeout,
                core::Registry& metrics);
  // Reads the list again; after a failure (returned, for the log) the last one stays.
  [[nodiscard]] boost::asio::awaitable<Result<void>> refresh();
  [[nodiscard]] std::vector<db::Uuid> ids() const;

 private:
  db::Database& database_;
  std::chrono::milliseconds timeout_;
  core::Gauge& count_;
  mutable std::mutex mutex_;
  std::vector<db::Uuid> ids_;
};

}  // namespace liftoff::identity
