#include "liftoff/jobs/store.hpp"

#include <boost/json/serialize.hpp>
#include <map>

#include "liftoff/core/id.hpp"
#include "liftoff/db/database.hpp"

namespace liftoff::jobs {
namespace asio = boost::asio;
using db::Intent;
using db::Params;
using db::Statement;

namespace {

#define LIFTOFF_JOB_COLUMNS                                                            \
  "j.id, j.org_id, j.queue, j.kind, j.args, j.priority::int4, j.state, j.attempt, "    \
  "j.max_attempts, j.timeout_ms, j.run_at, j.last_error, j.created_at, j.started_at, " \
  "j.finished_at, j.traceparent"

// A worker's own bookkeeping (leasing jobs, marking them completed, renewing leases) commits
// without waiting for its WAL flush: set_config(..., true) lasts until the statement's implicit
// transaction ends, after its commit record is written. What a crash of PostgreSQL can lose of
// these is a lease or a completion, and either way the job runs again: the at-least-once contract
// every handler already honours. Enqueues, whose commit acknowledges a write, keep the flush.
#define LIFTOFF_NO_FLUSH "(SELECT set_config('synchronous_commit', 'off', true)) no_flush"

// Round robin between orgs: the orgs with ready jobs of the queue from $2 on, found one index probe
// each (a loose index scan of jobs_ready_idx), at most $3 of them; each gets an equal share of the
// batch, within its room under the per-org limit $4 (NULL: none, and no count of running jobs);
// their jobs by priority, then age.
constexpr Statement kFetch{
    db::Plane::tenant, "jobs.fetch",
    "WITH RECURSIVE candidates(org_id) AS ("
    "(SELECT org_id FROM jobs WHERE state = 'ready' AND queue = $1 AND org_id >= $2 "
    "ORDER BY queue, org_id LIMIT 1) "
    "UNION ALL SELECT (SELECT n.org_id FROM jobs n WHERE n.state = 'ready' AND n.queue = $1 "
    "AND n.org_id > c.org_id ORDER BY n.queue, n.org_id LIMIT 1) FROM candidates c "
    "WHERE c.org_id IS NOT NULL), "
    "found AS MATERIALIZED (SELECT org_id FROM candidates WHERE org_id IS NOT NULL "
    "AND org_id <> ALL(string_to_array($7, ',')::uuid[]) LIMIT $3), "
    "room AS (SELECT f.org_id, CASE WHEN $4::int IS NULL THEN $3 ELSE $4 - (SELECT count(*) "
    "FROM jobs r WHERE r.state = 'running' AND r.queue = $1 AND r.org_id = f.org_id) END AS free "
    "FROM found f), "
    "picked AS MATERIALIZED (SELECT c.id FROM room CROSS JOIN LATERAL (SELECT p.id FROM jobs p "
    "WHERE p.state = 'ready' AND p.queue = $1 AND p.org_id = room.org_id AND p.run_at <= now() "
    "ORDER BY p.priority DESC, p.run_at, p.id "
    "LIMIT LEAST(room.free, GREATEST(1, $3 / (SELECT count(*) FROM found))) "
    "FOR UPDATE SKIP LOCKED) c WHERE room.free > 0 LIMIT $3) "
    "UPDATE jobs j SET state = 'running', attempt = j.attempt + 1, lease_owner = $5, "
    "leased_until = now() + $6 * interval '1 millisecond', started_at = now() "
    "FROM picked, " LIFTOFF_NO_FLUSH " WHERE j.id = picked.id RETURNING " LIFTOFF_JOB_COLUMNS};
// Ids come as one comma-separated text parameter (ids this process read back), joined row by row
// so that each is one probe of the primary key: `id = ANY(...)` lets the planner scan the running
// jobs' index instead, whose dead entries pile up between vacuums of a busy queue.
#define LIFTOFF_IDS "unnest(string_to_array($1, ',')::uuid[]) AS ids(id)"
constexpr Statement kComplete{
    db::Plane::tenant, "jobs.complete",
    "UPDATE jobs j SET state = 'completed', finished_at = now(), lease_owner = NULL, "
    "leased_until = NULL FROM " LIFTOFF_IDS ", " LIFTOFF_NO_FLUSH
    " WHERE j.id = ids.id "
    "AND j.state = 'running' AND j.lease_owner = $2"};
constexpr Statement kFail{
    db::Plane::tenant, "jobs.fail",
    "UPDATE jobs SET state = CASE WHEN $4 OR attempt >= max_attempts THEN 'discarded' ELSE "
    "'ready' END, run_at = now() + $5 * interval '1 millisecond', last_error = $3, "
    "finished_at = CASE WHEN $4 OR attempt >= max_attempts THEN now() END, lease_owner = NULL, "
    "leased_until = NULL WHERE id = $1 AND state = 'running' AND lease_owner = $2 RETURNING state"};
constexpr Statement kRenew{
    db::Plane::tenant, "jobs.renew",
    "UPDATE jobs j SET leased_until = now() + $3 * interval '1 millisecond' FROM " LIFTOFF_IDS
    ", " LIFTOFF_NO_FLUSH
    " WHERE j.id = ids.id AND j.state = 'running' AND j.lease_owner = $2 "
    "RETURNING j.id"};
constexpr Statement kRelease{
    db::Plane::tenant, "jobs.release",
    "UPDATE jobs j SET state = 'ready', attempt = j.attempt - 1, run_at = now(), "
    "lease_owner = NULL, leased_until = NULL, started_at = NULL FROM " LIFTOFF_IDS
    " WHERE j.id = ids.id AND j.state = 'running' AND j.lease_owner = $2"};
// The expired leases, oldest first along jobs_leases_idx, found once (MATERIALIZED: an inlined
// subquery may be planned as the inner side of a loop over jobs and run again per row).
constexpr Statement kRescue{
    db::Plane::tenant, "jobs.rescue",
    "WITH lost AS MATERIALIZED (SELECT id FROM jobs WHERE state = 'running' "
    "AND leased_until < now() ORDER BY leased_until LIMIT $1 FOR UPDATE SKIP LOCKED) "
    "UPDATE jobs j SET state = CASE WHEN j.attempt >= j.max_attempts THEN 'discarded' ELSE "
    "'ready' END, run_at = now(), last_error = 'the worker running it was lost (lease expired)', "
    "finished_at = CASE WHEN j.attempt >= j.max_attempts THEN now() END, lease_owner = NULL, "
    "leased_until = NULL FROM lost WHERE j.id = lost.id RETURNING j.queue, j.state"};
// The schedule's row arbitrates: only the transaction that moves last_tick forward enqueues.
constexpr Statement kClaimTick{
    db::Plane::tenant, "jobs.claim_tick",
    "WITH won AS (INSERT INTO job_schedules (name, last_tick) VALUES ($1, $2) "
    "ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick "
    "WHERE job_schedules.last_tick < excluded.last_tick RETURNING name) "
    "INSERT INTO jobs (id, org_id, queue, kind, args, priority, max_attempts, timeout_ms) "
    "SELECT $3, '00000000-0000-0000-0000-000000000000', $4, $5, $6, $7::int2, $8, $9 FROM won "
    "RETURNING id"};
constexpr Statement kPrune{
    db::Plane::tenant, "jobs.prune",
    "WITH doomed AS (SELECT id FROM jobs WHERE (state = 'completed' "
    "AND finished_at < now() - $1 * interval '1 millisecond') OR (state IN ('discarded', "
    "'cancelled') AND finished_at < now() - $2 * interval '1 millisecond') LIMIT $3), "
    "gone AS (DELETE FROM jobs j USING doomed d WHERE j.id = d.id RETURNING 1), "
    "keys AS (DELETE FROM job_unique_keys WHERE (org_id, key) IN (SELECT org_id, key "
    "FROM job_unique_keys WHERE expires_at < now() LIMIT $3)) "
    "SELECT count(*) FROM gone"};
constexpr Statement kStats{
    db::Plane::tenant, "jobs.stats",
    "SELECT queue, count(*) FILTER (WHERE state = 'ready' AND run_at <= now()), "
    "count(*) FILTER (WHERE state = 'ready' AND run_at > now()), "
    "count(*) FILTER (WHERE state = 'running'), COALESCE(EXTRACT(EPOCH FROM now() - "
    "min(run_at) FILTER (WHERE state = 'ready' AND run_at <= now()))::float8, 0) "
    "FROM jobs WHERE state IN ('ready', 'running') GROUP BY queue ORDER BY queue"};
constexpr Statement kList{
    db::Plane::tenant, "jobs.list",
    "SELECT " LIFTOFF_JOB_COLUMNS
    " FROM jobs j WHERE ($1::uuid IS NULL OR j.org_id = $1) AND ($2::text IS NULL OR "
    "j.state = $2) AND ($3::text IS NULL OR j.queue = $3) AND ($4::uuid IS NULL OR j.id < $4) "
    "ORDER BY j.id DESC LIMIT $5"};
constexpr Statement kGet{db::Plane::tenant, "jobs.get",
                         "SELECT " LIFTOFF_JOB_COLUMNS
                         " FROM jobs j WHERE j.id = $1 AND ($2::uuid IS NULL OR j.org_id = $2)"};
constexpr Statement kRetry{
    db::Plane::tenant, "jobs.retry",
    "UPDATE jobs j SET state = 'ready', run_at = now(), attempt = 0, finished_at = NULL "
    "WHERE j.id = $1 AND ($2::uuid IS NULL OR j.org_id = $2) "
    "AND j.state IN ('ready', 'discarded', 'cancelled') RETURNING " LIFTOFF_JOB_COLUMNS};
constexpr Statement kCancel{
    db::Plane::tenant, "jobs.cancel",
    "UPDATE jobs j SET state = 'cancelled', finished_at = now(), lease_owner = NULL, "
    "leased_until = NULL WHERE j.id = $1 AND ($2::uuid IS NULL OR j.org_id = $2) "
    "AND j.state IN ('ready', 'running') RETURNING " LIFTOFF_JOB_COLUMNS};
constexpr Statement kDiscard{
    db::Plane::tenant, "jobs.discard",
    "UPDATE jobs j SET state = 'discarded', finished_at = now() "
    "WHERE j.id = $1 AND ($2::uuid IS NULL OR j.org_id = $2) AND j.state = 'ready' "
    "RETURNING " LIFTOFF_JOB_COLUMNS};
#undef LIFTOFF_JOB_COLUMNS
#undef LIFTOFF_NO_FLUSH
#undef LIFTOFF_IDS

Job job_of(const db::Row& row) {
  Job job;
  job.id = row.get<db::Uuid>(0);
  job.org_id = row.get<db::Uuid>(1);
  job.queue = row.get<std::string>(2);
  job.kind = row.get<std::string>(3);
  job.args = row.get<db::Json>(4).text;
  job.priority = static_cast<std::int16_t>(row.get<std::int32_t>(5));
  job.state = parse_state(row.get<std::string>(6)).value_or(State::ready);
  job.attempt = row.get<std::int32_t>(7);
  job.max_attempts = row.get<std::int32_t>(8);
  job.timeout = std::chrono::milliseconds(row.get<std::int32_t>(9));
  job.run_at = row.get<db::Timestamp>(10);
  job.last_error = row.get<std::optional<std::string>>(11);
  job.created_at = row.get<db::Timestamp>(12);
  job.started_at = row.get<std::optional<db::Timestamp>>(13);
  job.finished_at = row.get<std::optional<db::Timestamp>>(14);
  job.traceparent = row.get<std::optional<std::string>>(15).value_or("");
  return job;
}

// The id right after `id` (nullopt past the last).
std::optional<db::Uuid> successor(db::Uuid id) {
  for (auto byte = id.bytes.rbegin(); byte != id.bytes.rend(); ++byte) {
    if (++*byte != 0) return id;
  }
  return std::nullopt;
}

// A statement of the workers' own bookkeeping, on a pooled connection of its own rather than
// pipelined on the shared connections that requests' statements ride: one that runs long (a rescue
// or a statistics read over a large, freshly churned table) then delays no request. (Pipelined, a
// rescue that ran into its 5 s timeout beside the mix turned reads of other orgs into 504s.)
asio::awaitable<Result<db::Rows>> run_alone(db::Database& database, Intent intent,
                                            const db::Scope& scope, const Statement& statement,
                                            const Params& params) {
  auto lease = co_await database.acquire(intent, scope);
  if (!lease) co_return lease.error();
  co_return co_await (*lease)->query(statement, params, database.statement_deadline(scope));
}

// The workers' statements act for every org of one shard: each shard's jobs table is its own.
db::Scope worker_scope(std::size_t shard,
                       std::chrono::milliseconds budget = std::chrono::seconds(10)) {
  return db::Scope::background(db::Tenant::every_org_on(shard), budget);
}

std::optional<db::Uuid> org_filter(const db::Scope& scope) {
  return scope.tenant.org_id();
}

}  // namespace

JobStore::JobStore(Queue& queue) : queue_(queue), database_(queue.database()) {}

asio::awaitable<Result<JobStore::Fetched>> JobStore::fetch(
    std::size_t shard, const std::string& queue, const db::Uuid& from_org, int limit, int org_limit,
    const std::string& owner, std::chrono::milliseconds lease, std::span<const db::Uuid> held) {
  Params params(queue, from_org, limit,
                org_limit > 0 ? std::optional<std::int64_t>(org_limit) : std::nullopt, owner,
                static_cast<std::int64_t>(lease.count()), db::uuid_list(held));
  auto scope = worker_scope(shard);
  auto rows = co_await run_alone(database_, Intent::write, scope, kFetch, params);
  if (!rows) co_return rows.error();
  Fetched fetched;
  fetched.jobs = db::decode_all(*rows, job_of);
  for (auto& job : fetched.jobs) job.shard = shard;
  if (fetched.jobs.empty()) co_return fetched;
  auto last = fetched.jobs.front().org_id;
  for (const auto& job : fetched.jobs) {
    if (last.bytes < job.org_id.bytes) last = job.org_id;
  }
  fetched.next_org = successor(last);
  co_return fetched;
}

asio::awaitable<Result<std::int64_t>> JobStore::complete(std::size_t shard,
                                                         std::span<const db::Uuid> ids,
                                                         const std::string& owner) {
  Params params(db::uuid_list(ids), owner);
  auto scope = worker_scope(shard);
  auto rows = co_await run_alone(database_, Intent::write, scope, kComplete, params);
  if (!rows) co_return rows.error();
  co_return rows->affected();
}

asio::awaitable<Result<std::optional<State>>> JobStore::fail(std::size_t shard,
                                                             const Failure& failure,
                                                             const std::string& owner) {
  Params params(failure.id, owner, failure.error, failure.discard,
                static_cast<std::int64_t>(failure.retry_in.count()));
  auto scope = worker_scope(shard);
  auto rows = co_await run_alone(database_, Intent::write, scope, kFail, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::nullopt;
  co_return parse_state(rows->front().get<std::string>(0));
}

asio::awaitable<Result<std::vector<db::Uuid>>> JobStore::renew(std::size_t shard,
                                                               std::span<const db::Uuid> ids,
                                                               const std::string& owner,
                                                               std::chrono::milliseconds lease) {
  Params params(db::uuid_list(ids), owner, static_cast<std::int64_t>(lease.count()));
  auto scope = worker_scope(shard);
  auto rows = co_await run_alone(database_, Intent::write, scope, kRenew, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, [](const db::Row& row) { return row.get<db::Uuid>(0); });
}

asio::awaitable<Result<std::int64_t>> JobStore::release(std::size_t shard,
                                                        std::span<const db::Uuid> ids,
                                                        const std::string& owner) {
  Params params(db::uuid_list(ids), owner);
  auto scope = worker_scope(shard);
  auto rows = co_await run_alone(database_, Intent::write, scope, kRelease, params);
  if (!rows) co_return rows.error();
  co_return rows->affected();
}

asio::awaitable<Result<std::vector<std::string>>> JobStore::rescue(std::size_t shard, int limit) {
  Params params(limit);
  auto scope = worker_scope(shard);
  auto rows = co_await run_alone(database_, Intent::write, scope, kRescue, params);
  if (!rows) co_return rows.error();
  std::vector<std::string> queues;
  for (int r = 0; r < rows->size(); ++r) {
    if ((*rows)[r].get<std::string>(1) == "ready") queues.push_back((*rows)[r].get<std::string>(0));
  }
  co_return queues;
}

asio::awaitable<Result<bool>> JobStore::claim_tick(const std::string& schedule, db::Timestamp tick,
                                                   const NewJob& job) {
  if (auto valid = validate(job); !valid) co_return valid.error();
  db::Uuid id{core::new_uuid_v7()};
  auto args = job.args;  // with the tick it runs for, in Unix seconds
  args["tick"] = std::chrono::duration_cast<std::chrono::seconds>(tick.time_since_epoch()).count();
  Params params(schedule, tick, id, job.queue, job.kind, db::Json{boost::json::serialize(args)},
                static_cast<std::int32_t>(job.priority), job.max_attempts,
                static_cast<std::int32_t>(job.timeout.count()));
  auto scope = worker_scope(0);  // platform jobs live on main
  auto rows = co_await run_alone(database_, Intent::write, scope, kClaimTick, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return false;
  queue_.wake(job.queue);
  co_return true;
}

asio::awaitable<Result<std::int64_t>> JobStore::prune(std::size_t shard,
                                                      std::chrono::milliseconds completed,
                                                      std::chrono::milliseconds failed, int limit) {
  Params params(static_cast<std::int64_t>(completed.count()),
                static_cast<std::int64_t>(failed.count()), limit);
  auto scope = worker_scope(shard, std::chrono::seconds(60));
  auto rows = co_await run_alone(database_, Intent::write, scope, kPrune, params);
  if (!rows) co_return rows.error();
  co_return rows->front().get<std::int64_t>(0);
}

asio::awaitable<Result<std::vector<JobStore::QueueStats>>> JobStore::stats() {
  // A queue's counts summed over the shards, its oldest job the oldest of any.
  std::map<std::string, QueueStats> merged;
  for (std::size_t shard = 0; shard < database_.shards().size(); ++shard) {
    auto scope = worker_scope(shard);
    auto rows = co_await run_alone(database_, Intent::read, scope, kStats, Params::none());
    if (!rows) co_return rows.error();
    for (int r = 0; r < rows->size(); ++r) {
      const auto& row = (*rows)[r];
      auto queue = row.get<std::string>(0);
      auto& m = merged[queue];
      m.queue = queue;
      m.ready += row.get<std::int64_t>(1);
      m.scheduled += row.get<std::int64_t>(2);
      m.running += row.get<std::int64_t>(3);
      m.oldest_ready_seconds = std::max(m.oldest_ready_seconds, row.get<double>(4));
    }
  }
  std::vector<QueueStats> stats;
  stats.reserve(merged.size());
  for (auto& [queue, m] : merged) stats.push_back(std::move(m));
  co_return stats;
}

asio::awaitable<Result<std::vector<Job>>> JobStore::list(const db::Scope& scope,
                                                         const ListQuery& query) {
  std::optional<db::Uuid> org = org_filter(scope) ? org_filter(scope) : query.org;
  std::optional<std::string> state;
  if (query.state) state = std::string(to_string(*query.state));
  Params params(org, state, query.queue, query.before, query.limit);
  auto rows = co_await database_.query(Intent::read_your_writes, scope, kList, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, job_of);
}

asio::awaitable<Result<Job>> JobStore::get(const db::Scope& scope, const db::Uuid& id) {
  Params params(id, org_filter(scope));
  auto rows = co_await database_.query(Intent::read_your_writes, scope, kGet, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return make_error(Errc::not_found, "no such job");
  co_return job_of(rows->front());
}

asio::awaitable<Result<Job>> JobStore::act(const db::Scope& scope, const db::Uuid& id,
                                           Action action) {
  const Statement& statement =
      action == Action::retry ? kRetry : (action == Action::cancel ? kCancel : kDiscard);
  Params params(id, org_filter(scope));
  auto rows = co_await database_.query(Intent::write, scope, statement, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) {
    auto job = co_await get(scope, id);
    if (!job) co_return job.error();
    co_return make_error(Errc::conflict, "a " + std::string(to_string(job->state)) +
                                             " job cannot be " +
                                             (action == Action::retry    ? "retried"
                                              : action == Action::cancel ? "cancelled"
                                                                         : "discarded"));
  }
  auto job = job_of(rows->front());
  if (action == Action::retry) queue_.wake(job.queue);
  co_return job;
}

}  // namespace liftoff::jobs
