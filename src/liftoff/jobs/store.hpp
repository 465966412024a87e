#pragma once
// The statements of the job queue besides enqueueing: what workers do (fetch, finish, renew,
// release, rescue, periodic ticks, pruning, statistics) and what operators do (list, retry, cancel,
// discard). Each acts for its scope's tenant: an org (only that org's jobs) or every org. Each
// shard holds the jobs of its orgs (docs/decisions/0021-tenant-shards.md; platform jobs are on
// main): the workers' statements name the shard they act on, and a fetched job keeps it
// (Job::shard).
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/jobs/queue.hpp"

namespace liftoff::jobs {

class JobStore {
 public:
  explicit JobStore(Queue& queue);

  // Leases up to `limit` ready, due jobs of `queue` to `owner` for `lease`: round robin over the
  // orgs with ready jobs from `from_org` on (in id order), each org an equal share of the batch and
  // no more than `org_limit` running jobs of the queue at once (0: no limit), none of the `held`
  // orgs'. `from_org` for the next call: the id after the last org served (nullopt: wrap around
  // to the first).
  struct Fetched {
    std::vector<Job> jobs;
    std::optional<db::Uuid> next_org;
  };
  [[nodiscard]] boost::asio::awaitable<Result<Fetched>> fetch(
      std::size_t shard, const std::string& queue, const db::Uuid& from_org, int limit,
      int org_limit, const std::string& owner, std::chrono::milliseconds lease,
      std::span<const db::Uuid> held = {});
  // Marks `owner`'s running jobs completed (one statement); returns how many were still its own.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> complete(std::size_t shard,
                                                                      std::span<const db::Uuid> ids,
                                                                      const std::string& owner);
  // An attempt that failed: ready again after `retry_in`, or discarded when `discard` is set or
  // it was the last attempt. Returns the state it is left in (nullopt: no longer `owner`'s).
  struct Failure {
    db::Uuid id;
    std::string error;
    std::chrono::milliseconds retry_in{0};
    bool discard = false;
  };
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<State>>> fail(std::size_t shard,
                                                                          const Failure& failure,
                                                                          const std::string& owner);
  // Extends `owner`'s leases on `ids`; returns those still its own (a job cancelled or rescued
  // meanwhile is not).
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<db::Uuid>>> renew(
      std::size_t shard, std::span<const db::Uuid> ids, const std::string& owner,
      std::chrono::milliseconds lease);
  // Gives `owner`'s running jobs back unstarted (a worker that stops): ready at once, the attempt
  // not counted.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> release(std::size_t shard,
                                                                     std::span<const db::Uuid> ids,
                                                                     const std::string& owner);
  // Jobs whose lease expired (their worker died): ready again at once, the lost attempt counted,
  // or discarded when it was the last. Returns the queues of the jobs made ready.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<std::string>>> rescue(std::size_t shard,
                                                                                int limit);
  // Enqueues `job` for the platform when `tick` is later than the schedule's last claimed tick:
  // true for exactly one caller per tick across processes. The job's args get `tick` (Unix
  // seconds). On main, with the platform's jobs.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> claim_tick(const std::string& schedule,
                                                                db::Timestamp tick,
                                                                const NewJob& job);
  // Deletes up to `limit` jobs completed more than `completed` ago, and discarded or cancelled
  // more than `failed` ago, and unique keys past their window. Returns how many jobs.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> prune(
      std::size_t shard, std::chrono::milliseconds completed, std::chrono::milliseconds failed,
      int limit);

  struct QueueStats {
    std::string queue;
    std::int64_t ready = 0;      // due now
    std::int64_t scheduled = 0;  // ready later (run_at, retry backoff)
    std::int64_t running = 0;
    double oldest_ready_seconds = 0;  // how long the oldest due job has waited
  };
  // Over every shard, by queue (in name order).
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<QueueStats>>> stats();

  // Operators. The scope's org (or every org, optionally narrowed to `org`).
  struct ListQuery {
    std::optional<db::Uuid> org;
    std::optional<State> state;
    std::optional<std::string> queue;
    std::optional<db::Uuid> before;  // the page after this id (newest first)
    int limit = 50;
  };
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Job>>> list(const db::Scope& scope,
                                                                      const ListQuery& query);
  [[nodiscard]] boost::asio::awaitable<Result<Job>> get(const db::Scope& scope, const db::Uuid& id);
  // retry: a discarded, cancelled or waiting job runs again now (its queue woken), with fresh
  // attempts (409 for a running or completed one). cancel: a ready or running job is cancelled (its
  // worker stops it at its next heartbeat). discard: a ready job is discarded. 404 for a job not in
  // the scope.
  enum class Action { retry, cancel, discard };
  [[nodiscard]] boost::asio::awaitable<Result<Job>> act(const db::Scope& scope, const db::Uuid& id,
                                                        Action action);

 private:
  Queue& queue_;
  db::Database& database_;
};

}  // namespace liftoff::jobs
