#pragma once
// The plans' jobs per day (plans::Limit::jobs_per_day; docs/decisions/0019-usage-metering.md):
// once the jobs enqueued for an organization today (UTC), as metered in usage_hourly, reach its
// plan's limit, its ready jobs are held until the next UTC day, or until its plan allows more. A
// held org's jobs stay in the queue, ready: the workers' fetches pass over the org
// (jobs::RunnerOptions::held_orgs), and nothing is dropped; other orgs' jobs run as before.
//
// Measured, not counted: every refresh (`job_quota_refresh`), for each org whose jobs this process
// ran in the last ten refreshes (and each org it holds), one statement sums the org's day in
// usage_hourly and one reads its limit. So a hold starts up to a usage flush plus a refresh after
// the limit is reached (the org's jobs run past its quota by what it enqueues meanwhile), and ends
// at midnight UTC or a refresh after its plan is raised. Thread-safety: ran() and held() from any
// thread; measure_due() from one coroutine at a time.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::db {
class Database;
}

namespace liftoff::usage {

struct JobQuotaOptions {
  std::chrono::milliseconds statement_timeout{10'000};
  // Organizations watched at once; past it, no new org is watched until others are forgotten.
  std::size_t entries = 100'000;
};

class JobQuota {
 public:
  // The org's jobs per day under its plan; nullopt when the org is gone (its jobs are not held).
  using LimitOf = std::function<boost::asio::awaitable<Result<std::optional<std::int64_t>>>(
      const db::Uuid& org)>;

  JobQuota(db::Database& database, LimitOf limit_of, JobQuotaOptions options = {});

  // A job of `org` was fetched to run here: the org is measured at the next refresh. No I/O.
  void ran(const db::Uuid& org);
  // The organizations whose jobs are held now. No I/O.
  [[nodiscard]] std::vector<db::Uuid> held() const;

  // Measures each watched org: the server calls it every refresh. Statements that fail leave the
  // org as it was (logged).
  [[nodiscard]] boost::asio::awaitable<void> measure_due();

 private:
  struct Watched {
    std::int64_t day = -1;  // the UTC day (days since 1970) of the measurement; -1: none yet
    std::int64_t jobs = 0;  // enqueued that day, as metered
    std::optional<std::int64_t> limit;
    bool ran = false;  // a job ran since the measurement
    int idle = 0;      // measurements in a row that saw no job run and no hold
  };
  [[nodiscard]] static bool holds(const Watched& watched, std::int64_t today);

  db::Database& database_;
  LimitOf limit_of_;
  JobQuotaOptions options_;
  mutable std::mutex mutex_;
  std::unordered_map<db::Uuid, Watched, db::UuidHash> watched_;
  // The watched orgs over their limit, with the day measured: derived from watched_ once a pass,
  // so held() (asked before every fetch of every worker) reads only these.
  std::vector<std::pair<db::Uuid, std::int64_t>> holding_;
};

}  // namespace liftoff::usage
