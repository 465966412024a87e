#include "liftoff/usage/job_quota.hpp"

#include <spdlog/spdlog.h>

#include "liftoff/db/database.hpp"
#include "liftoff/db/statement.hpp"

namespace liftoff::usage {
namespace asio = boost::asio;

namespace {

// The jobs enqueued for the org today (UTC) as metered, and today's number (days since 1970), by
// the database's clock.
constexpr db::Statement kJobsToday{
    db::Plane::tenant, "usage.jobs_today",
    "SELECT COALESCE(sum(jobs), 0)::int8, "
    "(extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC')) / 86400)::int8 "
    "FROM usage_hourly WHERE org_id = $1 "
    "AND hour >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"};

// A watched org is measured at every refresh (its jobs enqueued just before they ran may be
// written after the measurement that followed them) until this many in a row saw no job of it run
// and no hold: then it is forgotten until its next job runs.
constexpr int kForgetAfter = 10;

std::int64_t today() {
  using namespace std::chrono;
  return duration_cast<days>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

JobQuota::JobQuota(db::Database& database, LimitOf limit_of, JobQuotaOptions options)
    : database_(database), limit_of_(std::move(limit_of)), options_(options) {}

bool JobQuota::holds(const Watched& watched, std::int64_t day) {
  return watched.day == day && watched.limit && watched.jobs >= *watched.limit;
}

void JobQuota::ran(const db::Uuid& org) {
  std::lock_guard lock(mutex_);
  auto found = watched_.find(org);
  if (found != watched_.end()) {
    found->second.ran = true;
  } else if (watched_.size() < options_.entries) {
    watched_[org].ran = true;
  }
}

std::vector<db::Uuid> JobQuota::held() const {
  const auto day = today();
  std::vector<db::Uuid> out;
  std::lock_guard lock(mutex_);
  for (const auto& [org, on] : holding_) {
    if (on == day) out.push_back(org);
  }
  return out;
}

asio::awaitable<void> JobQuota::measure_due() {
  std::vector<db::Uuid> due;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(watched_, [](const auto& entry) { return entry.second.idle >= kForgetAfter; });
    for (const auto& [org, watched] : watched_) due.push_back(org);
  }
  for (const auto& org : due) {
    auto scope = db::Scope::background(db::Tenant::org(org), options_.statement_timeout);
    auto rows = co_await database_.query(db::Intent::read, scope, kJobsToday, db::Params(org));
    if (!rows) {
      spdlog::warn("reading the jobs of org {} today: {}", org.to_string(), rows.error().for_log());
      continue;
    }
    auto limit = co_await limit_of_(org);
    if (!limit) {
      spdlog::warn("reading the plan of org {}: {}", org.to_string(), limit.error().for_log());
      continue;
    }
    std::lock_guard lock(mutex_);
    auto& watched = watched_[org];
    watched.jobs = rows->front().get<std::int64_t>(0);
    watched.day = rows->front().get<std::int64_t>(1);
    watched.limit = *limit;
    watched.idle = watched.ran || holds(watched, today()) ? 0 : watched.idle + 1;
    watched.ran = false;
  }
  // What held() answers until the next pass: the holds as measured, each of its day.
  std::lock_guard lock(mutex_);
  holding_.clear();
  for (const auto& [org, watched] : watched_) {
    if (holds(watched, watched.day)) holding_.emplace_back(org, watched.day);
  }
}

}  // namespace liftoff::usage
