#pragma once
// Workers: a process's Runner runs the jobs of its queues (docs/decisions/0012-jobs.md). Each
// worker thread has a loop per queue with its share of the queue's concurrency: it leases jobs in
// batches (JobStore::fetch, round robin between orgs), for its free slots and, while its jobs are
// short, ahead of them for the next 100 ms at their recent pace, runs each under its
// timeout, marks finished jobs completed in batches, renews the leases of its running jobs every
// third of the lease, and sleeps, when there is nothing to run, until a wake-up (an enqueue in
// this process, or a NOTIFY from another) or the poll interval. At stop it fetches no more, lets
// running jobs finish within shutdown_timeout, and hands the rest back to the queue unstarted.
// One thread of the process also listens for wake-ups, rescues jobs whose worker died (expired
// leases), enqueues periodic jobs (exactly one per tick across the fleet), publishes the queues'
// statistics as metrics and prunes finished jobs.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "liftoff/db/connection.hpp"
#include "liftoff/jobs/cron.hpp"
#include "liftoff/jobs/queue.hpp"
#include "liftoff/jobs/store.hpp"
#include "liftoff/trace/span.hpp"

namespace liftoff::core {
class Registry;
}

namespace liftoff::jobs {

// How an attempt ended.
struct Outcome {
  enum class Kind { done, retry, discard };
  Kind kind = Kind::done;
  std::string error;
  std::optional<std::chrono::milliseconds> retry_in;  // instead of the exponential backoff

  [[nodiscard]] static Outcome done() { return {}; }
  // Failed; runs again after `retry_in` (or the backoff of its attempt) while attempts remain.
  [[nodiscard]] static Outcome retry(std::string error,
                                     std::optional<std::chrono::milliseconds> retry_in = {}) {
    return {Kind::retry, std::move(error), retry_in};
  }
  // Failed for good (bad arguments, a target that is gone): discarded now.
  [[nodiscard]] static Outcome discard(std::string error) {
    return {Kind::discard, std::move(error), {}};
  }
};

// Runs one attempt of a job. `scope` acts for the job's org (every org for the platform's jobs)
// with the job's timeout as its deadline; when the timeout passes or the job is cancelled, the
// handler's pending operation is cancelled. A handler that throws is retried (and logged).
using Handler = std::function<boost::asio::awaitable<Outcome>(const Job&, const db::Scope&)>;

struct QueueConfig {
  std::string name;
  int concurrency = 10;  // jobs of this queue running at once in this process
};

struct RunnerOptions {
  std::vector<QueueConfig> queues{{std::string(kDefaultQueue), 10}};
  int org_concurrency = 0;  // running jobs of one org per queue across the fleet; 0: no limit
  int batch = 100;          // most jobs one fetch leases
  std::chrono::milliseconds lease{30'000};
  std::chrono::milliseconds poll_interval{1'000};
  std::chrono::milliseconds shutdown_timeout{10'000};
  std::chrono::milliseconds completed_retention{24LL * 3600 * 1000};
  std::chrono::milliseconds failed_retention{30LL * 24 * 3600 * 1000};
  std::chrono::milliseconds backoff_base{1'000};     // the first retry's delay
  std::chrono::milliseconds backoff_max{3'600'000};  // the longest
  // Organizations whose ready jobs wait for now (usage::JobQuota: their plan's jobs per day are
  // spent; identity::SuspendedOrgs: suspended): each fetch passes over them, and so does the
  // webhook dispatcher (Runner::held_orgs). Asked before each fetch; must not block. None: no
  // org's.
  std::function<std::vector<db::Uuid>()> held_orgs;
  // Told the org of each job fetched (the platform's too); must not block.
  std::function<void(const db::Uuid&)> on_fetched;
  // Where wake-ups are LISTENed for (a direct connection to the primary); empty conninfo: none
  // (workers then find jobs by polling only).
  db::ConnectOptions listen;
  // Where each attempt's span goes (a child of the span that enqueued the job, else the root of
  // a new trace sampled at trace_sample_ratio), with the spans of its statements and calls; null:
  // not recorded.
  trace::Recorder* spans = nullptr;
  double trace_sample_ratio = 0.01;
};

// The delay before retrying after failed attempt number `attempt` (1-based): base * 2^(attempt-1),
// at most `max`, of which a random half ("equal jitter") so retries of many jobs spread out.
[[nodiscard]] std::chrono::milliseconds backoff(int attempt, std::chrono::milliseconds base,
                                                std::chrono::milliseconds max);

class Runner {
 public:
  Runner(Queue& queue, core::Registry& metrics, RunnerOptions options);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Before start(): what runs jobs of `kind`, and periodic jobs.
  void handle(std::string kind, Handler handler);
  struct Periodic {
    std::string name;  // unique across the fleet; names the schedule's row
    CronSchedule schedule;
    NewJob job;
  };
  void schedule(Periodic periodic);

  // Starts this thread's loops on `io` (call from each worker thread, worker 0 included, with the
  // process's thread count); they return once `stopping` is set and their jobs are finished or
  // handed back. Worker 0 also runs the process-wide duties.
  void start(std::size_t worker, std::size_t workers, boost::asio::io_context& io,
             const std::atomic<bool>& stopping);

  // A unique name of this process's leases: host:pid:random.
  [[nodiscard]] const std::string& owner() const { return owner_; }
  // The organizations whose jobs wait for now (RunnerOptions::held_orgs). No I/O.
  [[nodiscard]] std::vector<db::Uuid> held_orgs() const;

 private:
  class Loop;
  struct Metrics;
  boost::asio::awaitable<void> duties(const std::atomic<bool>& stopping);
  boost::asio::awaitable<void> listen(const std::atomic<bool>& stopping);
  void wake_local(const std::string& queue);
  void retire(const Loop& loop);

  Queue& queue_;
  JobStore store_;
  RunnerOptions options_;
  core::TraceSampler trace_sampler_;
  std::string owner_;
  std::map<std::string, Handler> handlers_;
  std::vector<Periodic> periodic_;
  std::unique_ptr<Metrics> metrics_;
  std::mutex loops_mutex_;
  std::vector<std::shared_ptr<Loop>> loops_;
};

}  // namespace liftoff::jobs
