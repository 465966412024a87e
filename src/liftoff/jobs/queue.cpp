#include "liftoff/jobs/queue.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <set>

#include "liftoff/core/id.hpp"
#include "liftoff/db/database.hpp"

namespace liftoff::jobs {
namespace asio = boost::asio;
namespace json = boost::json;
using db::Params;
using db::Statement;

namespace {

// The jobs come as one JSON array (jsonb_to_recordset), so a batch is one statement. A unique job
// first claims its key (a held key that expired is claimed afresh); only jobs without a key, or
// whose claim succeeded, are inserted.
constexpr Statement kEnqueue{
    db::Plane::tenant, "jobs.enqueue",
    "WITH input AS MATERIALIZED (SELECT * FROM jsonb_to_recordset($2) AS i(id uuid, queue text, "
    "kind text, args jsonb, priority int2, run_at_us bigint, max_attempts int, timeout_ms int, "
    "unique_key text, unique_secs bigint, traceparent text)), "
    "claimed AS (INSERT INTO job_unique_keys (org_id, key, job_id, expires_at) "
    "SELECT $1, i.unique_key, i.id, now() + i.unique_secs * interval '1 second' FROM input i "
    "WHERE i.unique_key IS NOT NULL ON CONFLICT (org_id, key) DO UPDATE "
    "SET job_id = excluded.job_id, expires_at = excluded.expires_at "
    "WHERE job_unique_keys.expires_at <= now() RETURNING job_id) "
    "INSERT INTO jobs (id, org_id, queue, kind, args, priority, run_at, max_attempts, timeout_ms, "
    "traceparent) SELECT i.id, $1, i.queue, i.kind, i.args, i.priority, "
    "COALESCE(timestamptz 'epoch' + i.run_at_us * interval '1 microsecond', now()), "
    "i.max_attempts, i.timeout_ms, i.traceparent FROM input i "
    "WHERE i.unique_key IS NULL OR i.id IN (SELECT job_id FROM claimed) RETURNING id"};
constexpr Statement kNotify{
    db::Plane::any, "jobs.notify",
    "SELECT pg_notify('liftoff_jobs', q) FROM unnest(string_to_array($1, ',')) AS q"};

// The outbox's kind of jobs enqueued for an org on another cluster than their transaction's.
constexpr std::string_view kOutboxKind = "jobs";

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::int64_t micros_since_epoch(db::Timestamp t) {
  return t.time_since_epoch().count();
}

}  // namespace

Result<void> validate(const NewJob& job, std::string_view field) {
  std::vector<FieldError> errors;
  auto name_rule = "1-100 characters of letters, digits and . _ : -";
  auto prefix = std::string(field) + ".";
  if (!valid_name(job.kind)) errors.push_back({prefix + "kind", name_rule});
  if (!valid_name(job.queue)) errors.push_back({prefix + "queue", name_rule});
  if (job.unique && !valid_name(job.unique->key))
    errors.push_back({prefix + "unique_key", name_rule});
  if (job.unique && (job.unique->window.count() < 1 || job.unique->window > std::chrono::days(365)))
    errors.push_back({prefix + "unique_window", "must be between 1 second and 365 days"});
  if (job.max_attempts < 1 || job.max_attempts > 1000)
    errors.push_back({prefix + "max_attempts", "must be between 1 and 1000"});
  if (job.timeout.count() < 1 || job.timeout > std::chrono::hours(24))
    errors.push_back({prefix + "timeout", "must be between 1 ms and 24 hours"});
  if (errors.empty()) return {};
  return Error{Errc::validation_failed, "invalid job", std::move(errors)};
}

std::string_view to_string(State state) {
  switch (state) {
    case State::ready:
      return "ready";
    case State::running:
      return "running";
    case State::completed:
      return "completed";
    case State::discarded:
      return "discarded";
    case State::cancelled:
      return "cancelled";
  }
  return "ready";
}

std::optional<State> parse_state(std::string_view text) {
  for (auto state :
       {State::ready, State::running, State::completed, State::discarded, State::cancelled}) {
    if (to_string(state) == text) return state;
  }
  return std::nullopt;
}

void receive_relayed(db::Database& database) {
  database.outbox().receive(
      std::string(kOutboxKind),
      [](db::Transaction& tx,
         std::span<const db::OutboxItem> items) -> asio::awaitable<Result<void>> {
        // One statement per org, as Queue::enqueue() would have run it.
        for (std::size_t first = 0; first < items.size();) {
          auto last = first;
          while (last < items.size() && items[last].org_id == items[first].org_id) ++last;
          Params params(items[first].org_id,
                        db::Json{db::bodies_as_array(items.subspan(first, last - first))});
          auto enqueued = co_await tx.execute(kEnqueue, params);
          if (!enqueued) co_return enqueued.error();
          first = last;
        }
        co_return Result<void>{};
      });
}

Queue::Queue(db::Database& database) : database_(database) {}
Queue::~Queue() = default;

asio::awaitable<Result<std::vector<std::optional<db::Uuid>>>> Queue::enqueue(
    db::Transaction& tx, const db::Uuid& org, std::span<const NewJob> jobs) {
  std::vector<std::optional<db::Uuid>> ids(jobs.size());
  if (jobs.empty()) co_return ids;
  auto here = co_await tx.holds_tenant(org);
  if (!here) co_return here.error();
  std::vector<db::OutboxItem> posts;  // when the org's shard is another cluster than tx's
  json::array input;
  input.reserve(jobs.size());
  std::set<std::string> keys, queues;
  // Each job continues the trace of the transaction's work (a request's span).
  auto traceparent = tx.trace().valid() ? tx.trace().span.traceparent() : std::string();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto& job = jobs[i];
    auto valid = validate(job, "jobs[" + std::to_string(i) + "]");
    if (!valid) co_return valid.error();
    // A key a job before it in this batch holds: this one is a duplicate, never sent.
    if (job.unique && !keys.insert(job.unique->key).second) continue;
    ids[i] = db::Uuid{core::new_uuid_v7()};
    json::object row;
    row["id"] = ids[i]->to_string();
    row["queue"] = job.queue;
    row["kind"] = job.kind;
    row["args"] = job.args;
    row["priority"] = job.priority;
    if (job.run_at) row["run_at_us"] = micros_since_epoch(*job.run_at);
    row["max_attempts"] = job.max_attempts;
    row["timeout_ms"] = job.timeout.count();
    if (job.unique) {
      row["unique_key"] = job.unique->key;
      row["unique_secs"] = job.unique->window.count();
    }
    if (!traceparent.empty()) row["traceparent"] = traceparent;
    if (!*here) posts.push_back({*ids[i], org, std::string(kOutboxKind), json::serialize(row)});
    input.emplace_back(std::move(row));
    queues.insert(job.queue);
  }
  int enqueued = 0;
  if (*here) {
    Params params(org, db::Json{json::serialize(input)});
    auto rows = co_await tx.query(kEnqueue, params);
    if (!rows) co_return rows.error();
    std::set<std::string> inserted;
    for (int r = 0; r < rows->size(); ++r) inserted.insert((*rows)[r].get<db::Uuid>(0).to_string());
    for (auto& id : ids) {
      if (id && !inserted.contains(id->to_string())) id.reset();  // its key was held
    }
    enqueued = rows->size();
  } else {
    // Enqueued on the org's shard by the relay (receive_relayed), which drops a job whose unique
    // key is held there: such a job's id is returned all the same.
    for (const auto& post : posts) {
      auto posted = co_await tx.post(post);
      if (!posted) co_return posted.error();
    }
    enqueued = static_cast<int>(posts.size());
  }
  tx.after_commit([this, org, enqueued, queues = std::move(queues)] {
    for (const auto& queue : queues) wake(queue);
    if (on_enqueued_ && org != kPlatform && enqueued > 0) on_enqueued_(org, enqueued);
  });
  co_return ids;
}

asio::awaitable<Result<std::vector<std::optional<db::Uuid>>>> Queue::enqueue(
    const db::Scope& scope, std::span<const NewJob> jobs) {
  auto tx = co_await database_.begin(scope);
  if (!tx) co_return tx.error();
  auto org = scope.tenant.org_id().value_or(kPlatform);
  auto ids = co_await enqueue(*tx, org, jobs);
  if (!ids) co_return ids.error();
  if (auto done = co_await tx->commit(); !done) co_return done.error();
  co_return ids;
}

void Queue::on_wake(std::function<void(const std::string&)> wake_local) {
  wake_local_ = std::move(wake_local);
}

void Queue::wake(const std::string& queue) {
  if (wake_local_) wake_local_(queue);
  std::lock_guard lock(mutex_);
  bool first = pending_.empty();
  pending_.insert(queue);
  if (first && executor_) {
    asio::post(*executor_, [this] {
      if (flush_timer_) flush_timer_->cancel();
    });
  }
}

asio::awaitable<void> Queue::run(const std::atomic<bool>& stopping) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  {
    std::lock_guard lock(mutex_);
    executor_ = executor;
    flush_timer_ = &timer;
  }
  for (;;) {
    bool last = stopping.load(std::memory_order_relaxed);
    std::set<std::string> queues;
    {
      std::lock_guard lock(mutex_);
      queues.swap(pending_);
    }
    if (!queues.empty()) {
      std::string list;
      for (const auto& queue : queues) list += (list.empty() ? "" : ",") + queue;
      auto scope = db::Scope::background(db::Tenant::every_org(), std::chrono::seconds(5));
      Params params(list);
      auto sent = co_await database_.query(db::Intent::write, scope, kNotify, params);
      if (!sent) {
        // The workers' poll finds the jobs anyway; only their wake-up is late.
        std::lock_guard lock(mutex_);
        pending_.insert(queues.begin(), queues.end());
      }
    }
    if (last) break;
    // Until wake() cancels the wait, checking `stopping` every 250 ms. Enqueues during a round trip
    // share the next one.
    timer.expires_after(std::chrono::milliseconds(250));
    bool idle = false;
    {
      std::lock_guard lock(mutex_);
      idle = pending_.empty();
    }
    if (idle) co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  std::lock_guard lock(mutex_);
  executor_.reset();
  flush_timer_ = nullptr;
}

}  // namespace liftoff::jobs
