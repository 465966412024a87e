#pragma once
// The job queue in PostgreSQL (docs/decisions/0012-jobs.md). A job is enqueued in any transaction
// of its org (it exists exactly when the transaction commits, and wakes the workers of its queue
// with a NOTIFY delivered at that commit), fetched by workers with FOR UPDATE SKIP LOCKED, round
// robin between the orgs that have ready jobs, and held under a lease that the worker's heartbeat
// renews. A worker that dies leaves its lease to expire; the job is then ready again. Delivery is
// at least once: a handler must tolerate running again (idempotent effects, or effects keyed by
// the job's id).
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::db {
class Database;
class Transaction;
}  // namespace liftoff::db

namespace liftoff::jobs {

inline constexpr std::string_view kJobsChannel = "liftoff_jobs";  // NOTIFY payload: the queue
inline constexpr std::string_view kDefaultQueue = "default";

// The org id of the platform's own jobs (periodic maintenance): the nil UUID.
inline constexpr db::Uuid kPlatform{};

struct NewJob {
  std::string kind;  // what runs it: a handler registered with the Runner under this name
  boost::json::object args;
  std::string queue{kDefaultQueue};
  std::int16_t priority = 0;                  // higher first, within its queue and org
  std::optional<db::Timestamp> run_at;        // not before; none: at once
  std::int32_t max_attempts = 20;             // then discarded
  std::chrono::milliseconds timeout{60'000};  // one attempt's limit
  // Not enqueued while another job of the org holds this key (from its enqueue for `window`).
  struct Unique {
    std::string key;
    std::chrono::seconds window{3600};
  };
  std::optional<Unique> unique;
};

// What a queue, kind or unique key may look like: 1-100 characters of [A-Za-z0-9._:-]; a 422
// naming `field` otherwise. Limits on the rest: max_attempts 1-1000, timeout 1 ms-24 h.
[[nodiscard]] Result<void> validate(const NewJob& job, std::string_view field = "job");

enum class State { ready, running, completed, discarded, cancelled };
[[nodiscard]] std::string_view to_string(State state);
[[nodiscard]] std::optional<State> parse_state(std::string_view text);

struct Job {
  db::Uuid id;
  db::Uuid org_id;
  std::string queue;
  std::string kind;
  std::string args;  // JSON text
  std::int16_t priority = 0;
  State state = State::ready;
  std::int32_t attempt = 0;  // attempts started, this one included while it runs
  std::int32_t max_attempts = 0;
  std::chrono::milliseconds timeout{0};
  db::Timestamp run_at;
  std::optional<std::string> last_error;
  db::Timestamp created_at;
  std::optional<db::Timestamp> started_at;
  std::optional<db::Timestamp> finished_at;
  // The W3C traceparent of the span that enqueued it (a request's); empty: none.
  std::string traceparent;
  // The shard whose jobs table holds it (an index into db::Database::shards()), as fetched: not a
  // column.
  std::size_t shard = 0;
};

// Enqueues the jobs relayed to an org's shard (db::Outbox): what Queue::enqueue() posts for an org
// whose shard is another cluster than its transaction's (a change of the control plane for it,
// such as an invitation's email). Register on every Database that relays.
void receive_relayed(db::Database& database);

// Enqueues jobs and wakes the workers of their queues once the enqueuing transaction commits: at
// once in this process (the Runner's on_enqueued), and in the others through one NOTIFY per queue
// sent in batches after the commit, off the write path (a NOTIFY inside the transaction would
// serialize every enqueuing commit on PostgreSQL's notification lock). A wake-up lost to a crash
// costs latency only: workers also look for jobs every poll interval.
class Queue {
 public:
  explicit Queue(db::Database& database);
  ~Queue();
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  // Enqueues `jobs` for `org` in `tx` (one statement whatever their number). Returns, in order,
  // each job's id, or nullopt for a unique job whose key was held (by an earlier job, or by one
  // before it in `jobs`). Errors: 422 for an invalid job (nothing enqueued), or the statement's.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<std::optional<db::Uuid>>>> enqueue(
      db::Transaction& tx, const db::Uuid& org, std::span<const NewJob> jobs);
  // The same in a transaction of its own, for the scope's org (kPlatform for every_org).
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<std::optional<db::Uuid>>>> enqueue(
      const db::Scope& scope, std::span<const NewJob> jobs);

  // Jobs of `queue` became ready (enqueued, retried, rescued): wakes local workers now and the
  // other processes' with the next batch of notifications. Thread-safe.
  void wake(const std::string& queue);
  // Local workers' wake-up, set once by the process's Runner before work starts.
  void on_wake(std::function<void(const std::string& queue)> wake_local);
  // Called after each commit that enqueued jobs of an org (not the platform's), with how many:
  // the org's usage. Set once before work starts; must not block.
  void on_enqueued(std::function<void(const db::Uuid& org, int jobs)> counted) {
    on_enqueued_ = std::move(counted);
  }

  // Sends the pending notifications, a batch at a time, until `stopping` (then once more). Run
  // once per process.
  [[nodiscard]] boost::asio::awaitable<void> run(const std::atomic<bool>& stopping);

  [[nodiscard]] db::Database& database() { return database_; }

 private:
  db::Database& database_;
  std::function<void(const std::string&)> wake_local_;
  std::function<void(const db::Uuid&, int)> on_enqueued_;
  std::mutex mutex_;
  std::set<std::string> pending_;  // queues to NOTIFY
  // While run() runs: where its wait is, for wake() to end it.
  std::optional<boost::asio::any_io_executor> executor_;
  boost::asio::steady_timer* flush_timer_ = nullptr;
};

}  // namespace liftoff::jobs
