#pragma once
// Per-tenant metrics with bounded label cardinality (docs/operations.md, "Health and metrics"):
// each worker thread tracks at most `tracked` organizations by the space-saving algorithm
// (Metwally, Agrawal and El Abbadi, 2005: a new organization replaces the one with the fewest
// requests and starts from its count, so an organization with more than 1/tracked of the worker's
// requests is never dropped), and /metrics shows the `shown` organizations with the most requests,
// the most server errors and the most database time: at most 3 x `shown` series per family,
// whatever the number of tenants. Counting a request is constant time, dropping one included: the
// tracked organizations are kept in buckets of equal counts, in increasing order (the algorithm's
// "stream summary"), so the least counted is the first bucket's.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace liftoff::core {

// The time a request's statements took, summed over every scope of the request (per-tenant
// metrics: core::TenantTally). Its coroutines run on one worker; the sum is atomic all the same.
struct StatementTime {
  std::atomic<std::int64_t> nanos{0};
  void add(std::chrono::steady_clock::duration elapsed) {
    nanos.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count(),
                    std::memory_order_relaxed);
  }
  [[nodiscard]] double seconds() const {
    return static_cast<double>(nanos.load(std::memory_order_relaxed)) / 1e9;
  }
};

// Adds the time from its making to its end to a StatementTime (none: nothing).
class StatementTimer {
 public:
  explicit StatementTimer(StatementTime* total)
      : total_(total),
        started_(total != nullptr ? std::chrono::steady_clock::now()
                                  : std::chrono::steady_clock::time_point{}) {}
  ~StatementTimer() {
    if (total_ != nullptr) total_->add(std::chrono::steady_clock::now() - started_);
  }
  StatementTimer(const StatementTimer&) = delete;
  StatementTimer& operator=(const StatementTimer&) = delete;

 private:
  StatementTime* total_;
  std::chrono::steady_clock::time_point started_;
};

class TenantTally {
 public:
  TenantTally(std::size_t tracked, std::size_t shown, std::size_t workers);

  // One answered request of `org` (on the calling worker's tally).
  void record(std::string_view org, bool server_error, double request_seconds,
              double database_seconds);

  // Appends the families tenant_requests_total, tenant_server_errors_total,
  // tenant_request_seconds_total and tenant_database_seconds_total, labelled {org="..."}, in the
  // Prometheus text format.
  void render(std::string& out) const;

  struct Counts {
    std::uint64_t requests = 0;  // an upper bound when the org replaced another (space-saving)
    std::uint64_t server_errors = 0;
    double request_seconds = 0;
    double database_seconds = 0;
  };
  // The organizations render() shows, with their counts summed over the workers. For tests.
  [[nodiscard]] std::vector<std::pair<std::string, Counts>> shown() const;

 private:
  struct Bucket;
  struct Entry {
    Counts counts;
    std::list<Bucket>::iterator bucket;            // the bucket of counts.requests
    std::list<const std::string*>::iterator seat;  // this org in that bucket
  };
  struct Bucket {
    std::uint64_t requests = 0;
    std::list<const std::string*> orgs;  // the keys of Worker::orgs
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  struct Worker {
    mutable std::mutex mutex;  // the worker's own; render() takes it briefly
    std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> orgs;
    std::list<Bucket> buckets;  // by increasing requests; none empty
  };
  // Puts `org` (its entry's counts.requests set) in its bucket, which is at or after `from`.
  static void place(Worker& worker, const std::string& org, Entry& entry,
                    std::list<Bucket>::iterator from);
  std::size_t tracked_;
  std::size_t shown_;
  std::vector<Worker> workers_;
};

}  // namespace liftoff::core
