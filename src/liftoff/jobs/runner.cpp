#include "liftoff/jobs/runner.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "liftoff/core/log.hpp"
#include "liftoff/core/metrics.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/db/listener.hpp"

namespace liftoff::jobs {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kStatsInterval = std::chrono::seconds(5);
constexpr auto kPruneInterval = std::chrono::seconds(60);
constexpr int kPruneBatch = 10'000;
constexpr int kRescueBatch = 1'000;
constexpr auto kAbandonAfter = std::chrono::seconds(5);
constexpr std::size_t kCompleteBatch = 1'000;  // most completions one statement writes
constexpr auto kPaceWindow = milliseconds(250);
constexpr auto kPrefetchWindow = milliseconds(100);

// A job this worker leased, by where it is: its shard's jobs table holds its lease.
struct Leased {
  std::size_t shard = 0;
  db::Uuid id;
};

// The ids of `jobs`, by shard.
std::map<std::size_t, std::vector<db::Uuid>> by_shard(std::span<const Leased> jobs) {
  std::map<std::size_t, std::vector<db::Uuid>> ids;
  for (const auto& job : jobs) ids[job.shard].push_back(job.id);
  return ids;
}

std::string random_suffix() {
  std::random_device device;
  return fmt::format("{:08x}", device());
}

std::string process_owner() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return fmt::format("{}:{}:{}", host, ::getpid(), random_suffix());
}

// Logs a failing background step at most once per `every`, so a database outage is one line per
// period rather than one per loop turn.
class ThrottledWarning {
 public:
  void warn(std::string_view what, const Error& error, milliseconds every = milliseconds(10'000)) {
    auto now = Clock::now();
    if (now - last_ < every) return;
    last_ = now;
    spdlog::warn("jobs: {}: {}", what, error.for_log());
  }

 private:
  Clock::time_point last_{};
};

}  // namespace

milliseconds backoff(int attempt, milliseconds base, milliseconds max) {
  double full = static_cast<double>(base.count());
  for (int i = 1; i < attempt && full < static_cast<double>(max.count()); ++i) full *= 2;
  full = std::min(full, static_cast<double>(max.count()));
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::uniform_real_distribution<double> half(0.5, 1.0);
  return milliseconds(static_cast<std::int64_t>(full * half(random)));
}

// The process's job metrics: outcomes and run times by queue and kind, and the queues' state as
// the last statistics read found it.
struct Runner::Metrics {
  explicit Metrics(core::Registry& r) : registry(r) {}
  core::Registry& registry;
  std::mutex mutex;
  std::map<std::string, core::Counter*> finished;
  std::map<std::string, core::Histogram*> run_seconds;
  struct QueueGauges {
    core::Gauge* ready;
    core::Gauge* scheduled;
    core::Gauge* running;
    core::Gauge* oldest;
  };
  std::map<std::string, QueueGauges> queues;  // touched by the duties' thread only

  void observe(const Job& job, std::string_view outcome, Clock::duration elapsed) {
    core::Counter* counter = nullptr;
    core::Histogram* histogram = nullptr;
    {
      std::lock_guard lock(mutex);
      auto key =
          fmt::format("queue=\"{}\",kind=\"{}\",outcome=\"{}\"", job.queue, job.kind, outcome);
      auto& c = finished[key];
      if (!c)
        c = &registry.counter("jobs_finished_total",
                              "Job attempts by how they ended (completed, retry, discarded, "
                              "timeout, cancelled, released)",
                              key);
      counter = c;
      auto& h = run_seconds[job.queue];
      if (!h)
        h = &registry.histogram("jobs_run_seconds", "How long job attempts ran",
                                fmt::format("queue=\"{}\"", job.queue));
      histogram = h;
    }
    counter->inc();
    histogram->observe(elapsed);
  }

  void publish(const std::vector<JobStore::QueueStats>& stats) {
    std::set<std::string> seen;
    for (const auto& s : stats) {
      auto& g = gauges(s.queue);
      g.ready->set(s.ready);
      g.scheduled->set(s.scheduled);
      g.running->set(s.running);
      g.oldest->set(static_cast<std::int64_t>(s.oldest_ready_seconds));
      seen.insert(s.queue);
    }
    for (auto& [queue, g] : queues) {
      if (seen.contains(queue)) continue;
      g.ready->set(0);
      g.scheduled->set(0);
      g.running->set(0);
      g.oldest->set(0);
    }
  }

  QueueGauges& gauges(const std::string& queue) {
    auto it = queues.find(queue);
    if (it != queues.end()) return it->second;
    auto labels = fmt::format("queue=\"{}\"", queue);
    QueueGauges g{
        &registry.gauge("jobs_ready", "Jobs due to run now, waiting for a worker", labels),
        &registry.gauge("jobs_scheduled", "Jobs waiting for their run_at (retries included)",
                        labels),
        &registry.gauge("jobs_running", "Jobs leased by a worker", labels),
        &registry.gauge("jobs_oldest_ready_seconds",
                        "How long the oldest job due to run has waited", labels)};
    return queues.emplace(queue, g).first->second;
  }
};

// One queue's share of its concurrency on one worker thread. Everything but wake() runs on the
// loop's executor.
class Runner::Loop : public std::enable_shared_from_this<Runner::Loop> {
 public:
  Loop(Runner& runner, std::string queue, int slots, const asio::any_io_executor& executor)
      : runner_(runner),
        queue_(std::move(queue)),
        slots_(slots),
        executor_(executor),
        idle_(executor),
        heartbeat_timer_(executor) {}

  [[nodiscard]] const std::string& queue() const { return queue_; }

  // Thread-safe.
  void wake() {
    asio::post(executor_, [self = shared_from_this()] { self->woken(); });
  }

  asio::awaitable<void> run(const std::atomic<bool>& stopping) {
    auto self = shared_from_this();
    asio::co_spawn(executor_, heartbeat(),
                   core::failure_handler("jobs: heartbeat of queue " + queue_, nullptr));
    auto& options = runner_.options_;
    // Each shard has its jobs: the loop fetches from one shard after the other, and from each
    // round robin over its orgs (its cursor). It idles once every shard had nothing.
    const auto shards = runner_.queue_.database().shards().size();
    std::vector<db::Uuid> cursors(shards, kPlatform);
    std::size_t shard = 0;
    std::size_t shards_empty = 0;
    ThrottledWarning warning;
    while (!stopping.load(std::memory_order_relaxed)) {
      update_pace();
      if (wants_jobs()) {
        woken_ = false;
        int room = std::min(options.batch, capacity() - static_cast<int>(running_.size()));
        const auto held = runner_.held_orgs();
        auto& cursor = cursors[shard];
        auto fetched =
            co_await runner_.store_.fetch(shard, queue_, cursor, room, options.org_concurrency,
                                          runner_.owner_, options.lease, held);
        if (fetched && fetched->jobs.empty() && cursor != kPlatform) {
          cursor = kPlatform;  // nothing after the cursor: from the first org again
          continue;
        }
        if (!fetched) warning.warn("fetching jobs of queue " + queue_, fetched.error());
        const bool found = fetched && !fetched->jobs.empty();
        if (found) cursor = fetched->next_org.value_or(kPlatform);
        shard = (shard + 1) % shards;
        shards_empty = found ? 0 : shards_empty + 1;
        if (found) {
          for (auto& job : fetched->jobs) {
            if (options.on_fetched) options.on_fetched(job.org_id);
            // Held by this loop from now. A job it holds already lost its lease (the heartbeat
            // came late, and a rescue made it ready) and was leased to it again while its attempt
            // runs: that attempt goes on under the new lease (or, stopped as lost, leaves it to
            // expire and be rescued); a second attempt beside it would share its entry.
            if (!running_.emplace(job.id, Running{nullptr, Ending::none, job.shard}).second)
              continue;
            waiting_.push_back(std::move(job));
          }
          start_waiting();
          continue;
        }
        if (shards_empty < shards) continue;  // the next shard may have some
        shards_empty = 0;
      }
      // Woken while fetching (a wake-up, or an attempt that ended): look again if there is room.
      if (woken_ && wants_jobs()) continue;
      idle_.expires_after(options.poll_interval);
      co_await idle_.async_wait(kUseTuple);
    }
    co_await stop();
    runner_.retire(*this);  // its timers go with its event loop, which may end before the Runner
  }

 private:
  enum class Ending { none, lost, shutdown };
  struct Running {
    asio::steady_timer* stop = nullptr;  // set once the attempt started
    Ending ending = Ending::none;
    std::size_t shard = 0;
  };

  void woken() {
    woken_ = true;
    idle_.cancel();
  }

  // Jobs this loop may hold: its slots, and the jobs it will start within kPrefetchWindow at the
  // pace its recent jobs finished (none while they run long), at most a batch. Fetching ahead
  // lets short jobs run many to a round trip; it is bounded by time so that a queue of long jobs
  // is not hoarded by one worker while another idles.
  [[nodiscard]] int capacity() const {
    auto ahead = static_cast<int>(pace_ * std::chrono::duration<double>(kPrefetchWindow).count());
    return slots_ + std::min(ahead, runner_.options_.batch);
  }

  // Once a loop turn: the pace of the last kPaceWindow, when one has passed.
  void update_pace() {
    auto now = Clock::now();
    auto elapsed = now - pace_since_;
    if (elapsed < kPaceWindow) return;
    pace_ = static_cast<double>(finished_since_) / std::chrono::duration<double>(elapsed).count();
    finished_since_ = 0;
    pace_since_ = now;
  }

  // Fetch when a slot is free and nothing waits for it, or when half the room is empty (so that a
  // fetch brings many jobs, not the one whose attempt just ended).
  [[nodiscard]] bool wants_jobs() const {
    int most = capacity();
    int room = most - static_cast<int>(running_.size());
    if (room <= 0) return false;
    if (waiting_.empty() && active_ < slots_) return true;
    return room >= (most + 1) / 2;
  }

  void start_waiting() {
    while (active_ < slots_ && !waiting_.empty()) {
      ++active_;
      // Taken off the queue before it is spawned: co_spawn runs an attempt here until it first
      // suspends, and one that never does (its job was lost while it waited) ends by calling this
      // again, which must not find the job it was given still at the front, moved from.
      auto job = std::move(waiting_.front());
      waiting_.pop_front();
      asio::co_spawn(executor_, attempt(std::move(job)),
                     core::failure_handler("jobs: attempt", nullptr));
    }
  }

  // Lets running jobs finish within shutdown_timeout, hands back the rest, writes the last
  // completions.
  asio::awaitable<void> stop() {
    std::vector<Leased> handed_back;
    for (const auto& job : waiting_) {
      running_.erase(job.id);
      handed_back.push_back({job.shard, job.id});
    }
    waiting_.clear();
    auto deadline = Clock::now() + runner_.options_.shutdown_timeout;
    while (!running_.empty() && Clock::now() < deadline) {
      idle_.expires_after(milliseconds(10));
      co_await idle_.async_wait(kUseTuple);
    }
    for (auto& [id, running] : running_) {
      running.ending = Ending::shutdown;
      if (running.stop) running.stop->cancel();
      handed_back.push_back({running.shard, id});
    }
    while (!running_.empty()) {
      idle_.expires_after(milliseconds(1));
      co_await idle_.async_wait(kUseTuple);
    }
    for (const auto& [shard, ids] : by_shard(handed_back)) {
      auto released = co_await runner_.store_.release(shard, ids, runner_.owner_);
      if (!released) {
        spdlog::warn(
            "jobs: handing back {} unfinished job(s) of queue {}: {} (they run again "
            "once their lease expires)",
            ids.size(), queue_, released.error().for_log());
      } else {
        spdlog::info("jobs: handed back {} unfinished job(s) of queue {} at shutdown", *released,
                     queue_);
        runner_.queue_.wake(queue_);
      }
    }
    while (flushing_ || !completed_.empty()) {
      if (!flushing_) {
        co_await flush_completions();
        continue;
      }
      idle_.expires_after(milliseconds(1));
      co_await idle_.async_wait(kUseTuple);
    }
    stopped_ = true;
    heartbeat_timer_.cancel();
  }

  asio::awaitable<Outcome> run_handler(const Handler& handler, const Job& job,
                                       const db::Scope& scope) {
    std::exception_ptr failure;
    try {
      co_return co_await handler(job, scope);
    } catch (const boost::system::system_error& e) {
      // Stopped (timeout, cancellation, shutdown): how the attempt ended is told by its caller.
      if (e.code() != asio::error::operation_aborted) failure = std::current_exception();
    } catch (...) {
      failure = std::current_exception();
    }
    if (!failure) co_return Outcome::retry("stopped");
    core::log_failure("jobs: " + job.kind + " " + job.id.to_string(), failure, nullptr);
    co_return Outcome::retry("the handler failed unexpectedly (see the worker's log)");
  }

  // The span of an attempt: a child of the span that enqueued the job, else the root of a new
  // trace (sampled at the runner's ratio).
  [[nodiscard]] trace::ActiveSpan attempt_span(const Job& job) const {
    trace::Context parent;
    parent.recorder = runner_.options_.spans;
    if (auto enqueued = core::parse_traceparent(job.traceparent)) {
      parent.span = *enqueued;
    } else {
      // A new trace, sampled as a request's is; no parent span: the attempt's is the root.
      parent.span = core::server_span(std::nullopt, runner_.trace_sampler_);
      parent.span.span_id = {};
    }
    trace::ActiveSpan span(parent, "job " + job.kind, trace::Span::Kind::consumer);
    if (span.recording()) {
      span.set("liftoff.job.kind", job.kind);
      span.set("liftoff.job.id", job.id.to_string());
      span.set("liftoff.job.queue", job.queue);
      span.set("liftoff.job.attempt", static_cast<std::int64_t>(job.attempt));
      if (job.org_id != kPlatform) span.set("liftoff.org_id", job.org_id.to_string());
    }
    return span;
  }

  // The handler's run, shared by the attempt and the handler's own coroutine (which may outlive
  // an attempt that gave up on it).
  struct Run {
    std::optional<Outcome> outcome;
    asio::cancellation_signal cancel;
    asio::steady_timer* waiting = nullptr;  // the attempt's timer while it waits for the outcome
  };

  asio::awaitable<void> attempt(Job job) {
    auto self = shared_from_this();
    auto started = Clock::now();
    asio::steady_timer stop(executor_, job.timeout);
    auto& entry = running_.at(job.id);  // registered by the loop when it leased the job
    entry.stop = &stop;
    auto tenant =
        job.org_id == kPlatform ? db::Tenant::every_org_on(job.shard) : db::Tenant::org(job.org_id);
    auto scope = db::Scope::background(tenant, job.timeout);
    scope.actor.request_id = "job:" + job.id.to_string();
    auto span = attempt_span(job);
    scope.trace = span.context();
    Outcome outcome;
    std::string_view label = "completed";
    auto handler = runner_.handlers_.find(job.kind);
    if (handler == runner_.handlers_.end()) {
      outcome = Outcome::retry("no handler for kind " + job.kind + " in worker " + runner_.owner_);
    } else if (entry.ending == Ending::none) {
      // The handler runs as a coroutine of its own, cancelled (terminal) at the timeout or when
      // the attempt ends otherwise; its end cancels the attempt's wait on `stop`.
      auto run = std::make_shared<Run>();
      run->waiting = &stop;
      asio::co_spawn(executor_, run_handler(handler->second, job, scope),
                     asio::bind_cancellation_slot(run->cancel.slot(),
                                                  [run](const std::exception_ptr&, Outcome result) {
                                                    run->outcome = std::move(result);
                                                    if (run->waiting) run->waiting->cancel();
                                                  }));
      // The outcome, the timeout, or the attempt's end. (co_spawn may run a handler that never
      // suspends to its end before it returns: then the outcome is already here.)
      if (!run->outcome) co_await stop.async_wait(kUseTuple);
      if (!run->outcome) {
        if (running_.at(job.id).ending == Ending::none) {
          outcome = Outcome::retry(fmt::format("timed out after {} ms", job.timeout.count()));
          label = "timeout";
        }
        run->cancel.emit(asio::cancellation_type::terminal);
        // A handler stops at its next suspension; one that ignores cancellation is left to end
        // on its own, its slot free.
        stop.expires_after(kAbandonAfter);
        if (!run->outcome) co_await stop.async_wait(kUseTuple);
      } else {
        outcome = std::move(*run->outcome);
      }
      run->waiting = nullptr;
    }
    auto ending = running_.at(job.id).ending;
    if (ending != Ending::none) {
      span.set("liftoff.job.outcome",
               std::string(ending == Ending::lost ? "cancelled" : "released"));
    } else {
      span.set("liftoff.job.outcome", std::string(label));
      if (outcome.kind != Outcome::Kind::done) span.fail(outcome.error);
    }
    running_.erase(job.id);
    --active_;
    ++finished_since_;
    start_waiting();
    woken();  // room for more
    if (ending != Ending::none) {
      runner_.metrics_->observe(job, ending == Ending::lost ? "cancelled" : "released",
                                Clock::now() - started);
      co_return;
    }
    if (outcome.kind == Outcome::Kind::done) {
      completed_.push_back({job.shard, job.id});
      if (!flushing_) asio::co_spawn(executor_, flush_completions(), asio::detached);
      runner_.metrics_->observe(job, label, Clock::now() - started);
      co_return;
    }
    auto& options = runner_.options_;
    JobStore::Failure failure{
        job.id, outcome.error,
        outcome.retry_in.value_or(backoff(job.attempt, options.backoff_base, options.backoff_max)),
        outcome.kind == Outcome::Kind::discard};
    writing_.emplace(job.id, job.shard);
    auto left = co_await runner_.store_.fail(job.shard, failure, runner_.owner_);
    writing_.erase(job.id);
    if (!left) {
      spdlog::warn(
          "jobs: recording the failure of job {}: {} (it runs again once its lease "
          "expires)",
          job.id.to_string(), left.error().for_log());
    } else if (*left == State::discarded) {
      spdlog::warn("jobs: job {} ({}) discarded after attempt {}: {}", job.id.to_string(), job.kind,
                   job.attempt, outcome.error);
    }
    if (label == "completed") label = left && *left == State::discarded ? "discarded" : "retry";
    runner_.metrics_->observe(job, label, Clock::now() - started);
  }

  // Writes completions a batch at a time, one statement in flight per loop; a failed write is
  // tried again for a while (the jobs' leases still hold them), then left to the rescue.
  asio::awaitable<void> flush_completions() {
    if (flushing_) co_return;
    flushing_ = true;
    auto self = shared_from_this();
    auto give_up = Clock::now() + runner_.options_.lease / 2;
    while (!completed_.empty()) {
      auto take = std::min(completed_.size(), kCompleteBatch);
      std::vector<Leased> batch(completed_.begin(), completed_.begin() + static_cast<long>(take));
      completed_.erase(completed_.begin(), completed_.begin() + static_cast<long>(take));
      bool failed = false;
      for (const auto& [shard, id] : batch) writing_.emplace(id, shard);
      for (const auto& [shard, ids] : by_shard(batch)) {
        auto done = co_await runner_.store_.complete(shard, ids, runner_.owner_);
        for (const auto& id : ids) writing_.erase(id);
        if (done) continue;
        failed = true;
        if (Clock::now() > give_up) {
          spdlog::warn(
              "jobs: marking {} job(s) completed failed: {}; they run again once their "
              "leases expire",
              ids.size(), done.error().for_log());
          continue;
        }
        for (const auto& id : ids) completed_.push_back({shard, id});
      }
      if (!failed) {
        give_up = Clock::now() + runner_.options_.lease / 2;
        continue;
      }
      asio::steady_timer pause(executor_, milliseconds(200));
      co_await pause.async_wait(kUseTuple);
    }
    flushing_ = false;
  }

  asio::awaitable<void> heartbeat() {
    auto self = shared_from_this();
    ThrottledWarning warning;
    // At a fixed rate, three times a lease: a renewal's round trip does not delay the next one.
    auto renewed_at = Clock::now();
    while (!stopped_) {
      heartbeat_timer_.expires_at(renewed_at + runner_.options_.lease / 3);
      co_await heartbeat_timer_.async_wait(kUseTuple);
      if (stopped_) break;
      renewed_at = Clock::now();
      // Every job still ours: running or waiting, and ended with its end not yet written.
      std::vector<Leased> leased = completed_;
      for (const auto& [id, running] : running_) leased.push_back({running.shard, id});
      for (const auto& [id, shard] : writing_) leased.push_back({shard, id});
      if (leased.empty()) continue;
      // Of the jobs asked about (not those leased meanwhile), the running ones no longer ours:
      // cancelled by an operator, or rescued by another worker after our lease ran out. A shard
      // that cannot be asked keeps its jobs running (their leases may still hold).
      std::unordered_set<db::Uuid, db::UuidHash> still;
      std::vector<db::Uuid> ids;
      for (const auto& [shard, of_shard] : by_shard(leased)) {
        auto held =
            co_await runner_.store_.renew(shard, of_shard, runner_.owner_, runner_.options_.lease);
        if (!held) {
          warning.warn("renewing the leases of queue " + queue_, held.error());
          continue;
        }
        still.insert(held->begin(), held->end());
        ids.insert(ids.end(), of_shard.begin(), of_shard.end());
      }
      for (const auto& id : ids) {
        auto running = running_.find(id);
        if (running == running_.end() || still.contains(id) ||
            running->second.ending != Ending::none)
          continue;
        running->second.ending = Ending::lost;
        if (running->second.stop) running->second.stop->cancel();
      }
    }
  }

  Runner& runner_;
  std::string queue_;
  int slots_;
  asio::any_io_executor executor_;
  asio::steady_timer idle_;
  asio::steady_timer heartbeat_timer_;
  bool woken_ = false;
  bool flushing_ = false;
  bool stopped_ = false;
  std::unordered_map<db::Uuid, Running, db::UuidHash> running_;      // leased: started or waiting
  std::deque<Job> waiting_;                                          // leased, not yet started
  int active_ = 0;                                                   // attempts started
  std::vector<Leased> completed_;                                    // not yet written
  std::unordered_map<db::Uuid, std::size_t, db::UuidHash> writing_;  // their end being written
  int finished_since_ = 0;
  Clock::time_point pace_since_ = Clock::now();
  double pace_ = 0;  // attempts ended per second over the last kPaceWindow
};

Runner::Runner(Queue& queue, core::Registry& metrics, RunnerOptions options)
    : queue_(queue),
      store_(queue),
      options_(std::move(options)),
      trace_sampler_(options_.trace_sample_ratio),
      owner_(process_owner()),
      metrics_(std::make_unique<Metrics>(metrics)) {
  queue_.on_wake([this](const std::string& name) { wake_local(name); });
}

Runner::~Runner() {
  queue_.on_wake({});
}

std::vector<db::Uuid> Runner::held_orgs() const {
  return options_.held_orgs ? options_.held_orgs() : std::vector<db::Uuid>{};
}

void Runner::handle(std::string kind, Handler handler) {
  handlers_[std::move(kind)] = std::move(handler);
}

void Runner::schedule(Periodic periodic) {
  periodic_.push_back(std::move(periodic));
}

void Runner::start(std::size_t worker, std::size_t workers, asio::io_context& io,
                   const std::atomic<bool>& stopping) {
  for (const auto& config : options_.queues) {
    auto loops = std::min<std::size_t>(workers, static_cast<std::size_t>(config.concurrency));
    if (worker >= loops) continue;
    auto share = static_cast<std::size_t>(config.concurrency) / loops +
                 (worker < static_cast<std::size_t>(config.concurrency) % loops ? 1 : 0);
    auto loop =
        std::make_shared<Loop>(*this, config.name, static_cast<int>(share), io.get_executor());
    {
      std::lock_guard lock(loops_mutex_);
      loops_.push_back(loop);
    }
    asio::co_spawn(io, loop->run(stopping),
                   core::failure_handler("jobs: queue " + config.name, nullptr));
  }
  if (worker == 0) {
    asio::co_spawn(io, duties(stopping), core::failure_handler("jobs: duties", nullptr));
    if (!options_.listen.conninfo.empty())
      asio::co_spawn(io, listen(stopping), core::failure_handler("jobs: listener", nullptr));
  }
}

void Runner::retire(const Loop& loop) {
  std::lock_guard lock(loops_mutex_);
  std::erase_if(loops_, [&loop](const auto& l) { return l.get() == &loop; });
}

void Runner::wake_local(const std::string& queue) {
  std::lock_guard lock(loops_mutex_);
  for (const auto& loop : loops_) {
    if (loop->queue() == queue) loop->wake();
  }
}

asio::awaitable<void> Runner::listen(const std::atomic<bool>& stopping) {
  db::ListenHandlers handlers;
  handlers.stopping = [&stopping] { return stopping.load(std::memory_order_relaxed); };
  handlers.on_listening = [this] {
    // Jobs enqueued while nobody listened: every loop looks.
    for (const auto& config : options_.queues) wake_local(config.name);
  };
  handlers.on_batch = [this](const std::vector<db::Notification>& batch) {
    std::set<std::string> queues;
    for (const auto& n : batch) queues.insert(n.payload);
    for (const auto& queue : queues) wake_local(queue);
  };
  handlers.on_lost = [] {};
  co_await db::listen(options_.listen, std::string(kJobsChannel), std::move(handlers));
}

asio::awaitable<void> Runner::duties(const std::atomic<bool>& stopping) {
  auto executor = co_await asio::this_coro::executor;
  ThrottledWarning rescue_warning, tick_warning, stats_warning, prune_warning;
  std::map<std::string, SysSeconds> claimed;  // by schedule: the last tick this process handled
  auto next_stats = Clock::now();
  auto next_prune = Clock::now();
  asio::steady_timer timer(executor);
  while (!stopping.load(std::memory_order_relaxed)) {
    auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    for (const auto& periodic : periodic_) {
      auto tick = periodic.schedule.last_at_or_before(now);
      if (!tick) continue;
      auto it = claimed.find(periodic.name);
      if (it != claimed.end() && it->second >= *tick) continue;
      auto won = co_await store_.claim_tick(
          periodic.name, std::chrono::time_point_cast<std::chrono::microseconds>(*tick),
          periodic.job);
      if (!won) {
        tick_warning.warn("enqueueing periodic job " + periodic.name, won.error());
        continue;
      }
      claimed[periodic.name] = *tick;
    }
    // Each shard's jobs table: rescued, counted and pruned on its own.
    const auto shards = queue_.database().shards().size();
    for (std::size_t shard = 0; shard < shards; ++shard) {
      auto rescued = co_await store_.rescue(shard, kRescueBatch);
      if (!rescued) {
        rescue_warning.warn("rescuing jobs of lost workers", rescued.error());
      } else if (!rescued->empty()) {
        spdlog::info("jobs: {} job(s) of lost workers are ready again", rescued->size());
        for (const auto& queue : std::set<std::string>(rescued->begin(), rescued->end()))
          queue_.wake(queue);
      }
    }
    if (Clock::now() >= next_stats) {
      next_stats = Clock::now() + kStatsInterval;
      auto stats = co_await store_.stats();
      if (stats)
        metrics_->publish(*stats);
      else
        stats_warning.warn("reading queue statistics", stats.error());
    }
    if (Clock::now() >= next_prune) {
      next_prune = Clock::now() + kPruneInterval;
      for (std::size_t shard = 0; shard < shards; ++shard) {
        for (int round = 0; round < 10; ++round) {
          auto pruned = co_await store_.prune(shard, options_.completed_retention,
                                              options_.failed_retention, kPruneBatch);
          if (!pruned) {
            prune_warning.warn("pruning finished jobs", pruned.error());
            break;
          }
          if (*pruned < kPruneBatch) break;
        }
      }
    }
    timer.expires_after(std::min(options_.poll_interval, milliseconds(1'000)));
    co_await timer.async_wait(kUseTuple);
  }
}

}  // namespace liftoff::jobs
