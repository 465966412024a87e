#include "liftoff/db/database.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cassert>
#include <deque>
#include <map>
#include <unordered_map>

#include "liftoff/core/metrics.hpp"
#include "liftoff/core/worker.hpp"
#include "liftoff/db/slow_log.hpp"

namespace liftoff::db {
namespace asio = boost::asio;

namespace {
inline constexpr Statement kBeginReadCommitted{Plane::any, "liftoff.begin", "BEGIN"};
inline constexpr Statement kBeginRepeatableRead{Plane::any, "liftoff.begin_repeatable_read",
                                                "BEGIN ISOLATION LEVEL REPEATABLE READ"};
inline constexpr Statement kBeginSerializable{Plane::any, "liftoff.begin_serializable",
                                              "BEGIN ISOLATION LEVEL SERIALIZABLE"};
inline constexpr Statement kCommit{Plane::any, "liftoff.commit", "COMMIT"};
inline constexpr Statement kRollback{Plane::any, "liftoff.rollback", "ROLLBACK"};
// Where the primary's log stands: after a commit, at or past the commit (what a replica must have
// replayed for a read to see it).
inline constexpr Statement kLogPosition{Plane::any, "liftoff.log_position",
                                        "SELECT (pg_current_wal_lsn() - '0/0')::int8"};
// Where a replica's replay stands (0 on a server that is not replaying: a promoted one), and
// whether it is a replica at all.
inline constexpr Statement kReplayPosition{
    Plane::any, "liftoff.replay_position",
    "SELECT COALESCE((pg_last_wal_replay_lsn() - '0/0')::int8, 0), pg_is_in_recovery()"};

Lsn lsn_of(const Result<Rows>& rows) {
  if (!rows || rows->empty()) return {};
  return Lsn{static_cast<std::uint64_t>(rows->front().get<std::int64_t>(0))};
}

// A rollback is sent even when the transaction's deadline has passed.
constexpr auto kRollbackGrace = std::chrono::seconds(1);

// The span of a round trip to a node: one statement, or `count` sent together (named by the first,
// `statement`), described by OpenTelemetry's database conventions. The SQL is a fixed statement's
// text, whose values are all parameters: it never carries one.
trace::ActiveSpan statement_span(const trace::Context& trace, const Statement& statement,
                                 std::size_t count, std::string_view shard, std::string_view node) {
  trace::ActiveSpan span(trace, statement.name, trace::Span::Kind::client);
  if (!span.recording()) return span;
  span.set("db.system.name", std::string("postgresql"));
  if (statement.fixed) span.set("db.query.text", std::string(statement.sql));
  if (count > 1) span.set("db.operation.batch.size", static_cast<std::int64_t>(count));
  span.set("liftoff.shard", std::string(shard));
  span.set("liftoff.node", std::string(node));
  return span;
}

// Ends a recording `span` with `outcome`: the rows it returned, or its error.
void end_with(trace::ActiveSpan& span, const Result<Rows>& outcome) {
  if (outcome) {
    span.set("db.response.returned_rows", static_cast<std::int64_t>(outcome->size()));
  } else {
    span.set("error.type", std::string(info(outcome.error().code).slug));
    span.fail(outcome.error().detail);
  }
  span.end();
}

// Ends `span` with what the round trip returned.
Result<Rows> ended(trace::ActiveSpan& span, Result<Rows> result) {
  if (span.recording()) end_with(span, result);
  return result;
}

// The same for statements sent together: the first error, else the first statement's rows.
std::vector<Result<Rows>> ended(trace::ActiveSpan& span, std::vector<Result<Rows>> results) {
  if (span.recording() && !results.empty()) {
    auto failed = std::find_if(results.begin(), results.end(), [](const auto& r) { return !r; });
    end_with(span, failed != results.end() ? *failed : results.front());
  }
  return results;
}
}  // namespace

Result<void> check_plane(const Statement& statement, const Tenant& tenant, Planes planes) {
  bool allowed = statement.plane == Plane::any || statement.plane == tenant.plane() ||
                 (statement.plane == Plane::control && planes == Planes::both);
  if (allowed) return {};
  spdlog::error("statement {} of the {} plane issued for {}", statement.name,
                to_string(statement.plane), tenant.describe());
  assert(allowed && "a statement was issued for a tenant of another plane");
  return make_error(Errc::internal, "a statement was issued for the wrong plane");
}

// Query latency by statement name. Series are created on a statement's first use; each worker keeps
// its own name -> series cache (touched only by that worker's thread) so the hot path takes no
// lock.
class Database::StatementMetrics {
 public:
  StatementMetrics(core::Registry& registry, std::size_t workers)
      : registry_(registry), caches_(workers) {}
  void observe(std::string_view statement, Clock::duration elapsed, bool ok) {
    auto& cache = caches_[std::min(core::this_worker(), caches_.size() - 1)];
    auto key = static_cast<const void*>(statement.data());  // statements are named constants
    auto it = cache.find(key);
    if (it == cache.end()) {
      std::string label = "statement=\"" + core::label_value(statement) + "\"";
      Series series{&registry_.histogram("db_query_duration_seconds",
                                         "Statement latency, send to last result", label),
                    &registry_.counter("db_query_errors_total", "Statements that failed", label)};
      it = cache.emplace(key, series).first;
    }
    it->second.latency->observe(elapsed);
    if (!ok) it->second.errors->inc();
  }

 private:
  struct Series {
    core::Histogram* latency;
    core::Counter* errors;
  };
  core::Registry& registry_;
  std::vector<std::unordered_map<const void*, Series>> caches_;
};

// What every connection to a node reports: each statement's latency by name, and the slow ones.
class Database::NodeObserver final : public QueryObserver {
 public:
  NodeObserver(StatementMetrics& metrics, SlowLog& slow_log, const std::string& node)
      : metrics_(metrics), slow_log_(slow_log), node_(node) {}
  void observed(const Statement& statement, const Params& params, Clock::duration elapsed,
                bool ok) override {
    metrics_.observe(statement.name, elapsed, ok);
    if (slow_log_.slow(elapsed)) slow_log_.record(node_, statement, params, elapsed, ok);
  }

 private:
  StatementMetrics& metrics_;
  SlowLog& slow_log_;
  const std::string& node_;
};

asio::awaitable<Result<Transaction>> Transaction::begin(Lease lease, Options options) {
  const Statement& begin = options.isolation == Isolation::serializable      ? kBeginSerializable
                           : options.isolation == Isolation::repeatable_read ? kBeginRepeatableRead
                                                                             : kBeginReadCommitted;
  co_return Transaction(std::move(lease), options, begin);
}

Deadline Transaction::statement_deadline() const {
  return std::min(options_.deadline, deadline_after(options_.statement_timeout));
}

asio::awaitable<std::vector<Result<Rows>>> Transaction::run(std::span<const Query> queries) {
  for (const auto& query : queries) {
    if (auto allowed = check_plane(*query.statement, options_.tenant, options_.planes); !allowed) {
      std::vector<Result<Rows>> refused;
      for (std::size_t i = 0; i < queries.size(); ++i) refused.emplace_back(allowed.error());
      co_return refused;
    }
  }
  auto deadline = statement_deadline();
  core::StatementTimer timer(options_.statement_time.get());
  auto span = this->span(*queries.front().statement, queries.size());
  if (!unsent_begin_) co_return ended(span, co_await lease_->pipeline(queries, deadline));
  std::vector<Query> with_begin;
  with_begin.reserve(queries.size() + 1);
  with_begin.push_back(Query{unsent_begin_, Params()});
  with_begin.insert(with_begin.end(), queries.begin(), queries.end());
  unsent_begin_ = nullptr;
  auto results = co_await lease_->pipeline(with_begin, deadline);
  if (!results.front()) {  // nothing after a failed BEGIN ran in the transaction
    auto failed = results.front().error();
    for (auto& r : results) r = failed;
  }
  results.erase(results.begin());
  co_return ended(span, std::move(results));
}

trace::ActiveSpan Transaction::span(const Statement& statement, std::size_t count) const {
  return statement_span(options_.trace, statement, count, options_.shard_name, options_.node_name);
}

asio::awaitable<Result<void>> Transaction::execute(const Statement& statement,
                                                   const Params& params) {
  auto rows = co_await query(statement, params);
  if (!rows) co_return rows.error();
  co_return Result<void>{};
}

asio::awaitable<Result<Rows>> Transaction::query(const Statement& statement, const Params& params) {
  if (!open_) co_return make_error(Errc::internal, "transaction already ended");
  if (!unsent_begin_) {
    if (auto allowed = check_plane(statement, options_.tenant, options_.planes); !allowed)
      co_return allowed.error();
    core::StatementTimer timer(options_.statement_time.get());
    auto span = this->span(statement, 1);
    co_return ended(span, co_await lease_->query(statement, params, statement_deadline()));
  }
  std::array<Query, 1> one{Query{&statement, params}};
  auto results = co_await run(one);
  co_return std::move(results.front());
}

asio::awaitable<std::vector<Result<Rows>>> Transaction::pipeline(std::span<const Query> queries) {
  if (!open_) {
    std::vector<Result<Rows>> ended;
    for (std::size_t i = 0; i < queries.size(); ++i)
      ended.emplace_back(make_error(Errc::internal, "transaction already ended"));
    co_return ended;
  }
  co_return co_await run(queries);
}

bool Transaction::aborted() const {
  return !unsent_begin_ && lease_->transaction_state() == TransactionState::failed;
}

asio::awaitable<Result<void>> Transaction::commit() {
  if (!open_) co_return make_error(Errc::internal, "transaction already ended");
  open_ = false;
  if (unsent_begin_) {  // ran nothing
    co_await committed();
    co_return Result<void>{};
  }
  core::StatementTimer timer(options_.statement_time.get());
  // COMMIT of a failed transaction reports ROLLBACK; surface that as an error, not a success.
  auto failed = aborted();
  if (options_.consistency && !failed) {
    std::array<Query, 2> queries{Query{&kCommit, Params()}, Query{&kLogPosition, Params()}};
    auto span = this->span(kCommit, queries.size());
    auto results = ended(span, co_await lease_->pipeline(queries, statement_deadline()));
    if (!results[0]) co_return results[0].error();
    options_.consistency->at(options_.shard).wrote(lsn_of(results[1]));
    co_await committed();
    co_return Result<void>{};
  }
  auto span = this->span(kCommit, 1);
  auto done = ended(span, co_await lease_->query(kCommit, Params::none(), statement_deadline()));
  if (!done) co_return done.error();
  if (failed)
    co_return make_error(Errc::conflict,
                         "transaction was aborted by an earlier error; rolled back");
  co_await committed();
  co_return Result<void>{};
}

asio::awaitable<Result<Rows>> Transaction::commit_after(const Statement& statement,
                                                        const Params& params) {
  if (!open_) co_return make_error(Errc::internal, "transaction already ended");
  open_ = false;
  if (aborted()) {
    auto rolled_back = co_await lease_->query(
        kRollback, Params::none(), std::max(statement_deadline(), deadline_after(kRollbackGrace)));
    (void)rolled_back;
    co_return make_error(Errc::conflict,
                         "transaction was aborted by an earlier error; rolled back");
  }
  std::array<Query, 3> queries{Query{&statement, params}, Query{&kCommit, Params()},
                               Query{&kLogPosition, Params()}};
  auto results = co_await run(std::span<const Query>(queries).first(options_.consistency ? 3 : 2));
  if (!results[0]) co_return std::move(results[0]).error();  // the COMMIT rolled back
  if (!results[1]) co_return std::move(results[1]).error();
  if (options_.consistency) options_.consistency->at(options_.shard).wrote(lsn_of(results[2]));
  co_await committed();
  co_return std::move(*results[0]);
}

asio::awaitable<Result<void>> Transaction::rollback() {
  if (!open_) co_return Result<void>{};
  open_ = false;
  if (unsent_begin_) co_return Result<void>{};  // ran nothing
  core::StatementTimer timer(options_.statement_time.get());
  auto span = this->span(kRollback, 1);
  auto done = ended(
      span, co_await lease_->query(kRollback, Params::none(),
                                   std::max(statement_deadline(), deadline_after(kRollbackGrace))));
  if (!done) co_return done.error();
  co_return Result<void>{};
}

namespace {
// A shared connection is filled while it answers promptly (bigger batches: fewer system calls and
// server wake-ups per statement); beyond this queue, or with a statement this old at its head
// (head-of-line blocking), statements spill to the next.
constexpr std::size_t kSpillQueue = 32;
constexpr auto kSpillAge = std::chrono::milliseconds(2);
bool answers_promptly(const Connection& conn, Clock::time_point now) {
  return conn.in_flight() < kSpillQueue && now - conn.oldest_submitted() < kSpillAge;
}
// A shared connection whose oldest statement has waited this long is stuck behind something slow
// (a lock wait, a statement that scans after all): while every one is, statements take a pooled
// connection instead of queueing behind it.
constexpr auto kStaleAge = std::chrono::milliseconds(25);
bool fresh(const Connection& conn, Clock::time_point now) {
  return now - conn.oldest_submitted() < kStaleAge;
}
}  // namespace

asio::awaitable<Result<void>> check_pooled_session(const ConnectOptions& options) {
  static constexpr Statement kSession{Plane::any, "liftoff.pooled_session",
                                      "SELECT current_user::text, current_setting('TimeZone')"};
  if (!options.pooled) co_return Result<void>{};
  auto executor = co_await asio::this_coro::executor;
  auto deadline = deadline_after(std::chrono::seconds(10));
  auto conn = co_await Connection::connect(executor, options, deadline);
  if (!conn) co_return conn.error();
  auto rows = co_await (*conn)->query(kSession, Params::none(), deadline);
  if (!rows) co_return rows.error();
  auto user = rows->front().get<std::string>(0);
  auto zone = rows->front().get<std::string>(1);
  if (!options.role.empty() && user != options.role) {
    co_return make_error(Errc::validation_failed,
                         fmt::format("sessions through the pooler act as '{}', not database_role "
                                     "'{}': set the pooler's connect_query to SET ROLE {} (or "
                                     "ALTER ROLE <login> SET role = '{}')",
                                     user, options.role, options.role, options.role));
  }
  if (zone != "UTC") {
    co_return make_error(Errc::validation_failed,
                         fmt::format("sessions through the pooler have TimeZone '{}', not UTC: "
                                     "set it in the pooler's connect_query or on the role",
                                     zone));
  }
  co_return Result<void>{};
}

struct Database::SharedSlot {
  std::shared_ptr<Connection> conn;
  bool connecting = false;
  // Bumped by stop_worker: a connect begun before it drops its connection instead of filling the
  // slot, which would then outlive the worker's event loop.
  std::uint64_t generation = 0;
  Clock::time_point retry_at{};
  std::chrono::milliseconds backoff{0};
};

// A server of the cluster: the primary, or a replica. Pools and shared connections are per worker
// (each touched only by its worker); a replica's rotation state and position are written by its
// watcher and read by every worker.
struct Database::Node {
  Node(std::string shard_name, std::string node_name, ConnectOptions options, std::size_t workers,
       std::size_t shared_connections)
      : shard(std::move(shard_name)),
        name(std::move(node_name)),
        connect(std::move(options)),
        pools(workers),
        shared(workers, std::vector<SharedSlot>(shared_connections)) {}
  std::string shard;  // its cluster's name
  std::string name;
  ConnectOptions connect;
  std::unique_ptr<QueryObserver> observer;  // of every connection to it
  PoolMetrics pool_metrics;
  std::vector<std::shared_ptr<Pool>> pools;
  std::vector<std::vector<SharedSlot>> shared;
  std::atomic<bool> in_rotation{false};
  std::atomic<std::uint64_t> replayed{0};
  std::atomic<std::int64_t> lag_ms{0};
  core::Counter* reads = nullptr;
  core::Gauge* rotation_gauge = nullptr;
  core::Gauge* lag_gauge = nullptr;

  // This worker's statements waiting on the node's shared connections.
  [[nodiscard]] std::size_t load(std::size_t worker) const {
    std::size_t total = 0;
    for (const auto& slot : shared[worker])
      if (slot.conn) total += slot.conn->in_flight();
    return total;
  }
  // Whether one of this worker's shared connections to the node is answering promptly.
  [[nodiscard]] bool prompt(std::size_t worker, Clock::time_point now) const {
    return std::any_of(shared[worker].begin(), shared[worker].end(), [&](const SharedSlot& slot) {
      return slot.conn && answers_promptly(*slot.conn, now);
    });
  }
  void replayed_at_least(Lsn lsn) {
    auto seen = replayed.load(std::memory_order_relaxed);
    while (seen < lsn.value &&
           !replayed.compare_exchange_weak(seen, lsn.value, std::memory_order_relaxed)) {
    }
  }
};

// The primary's log position as sampled by watch_primary(), newest last, so that a replica's lag
// is the time since the primary was where the replica's replay stands now: exact whether the
// primary is busy or idle, unlike the time of the last replayed transaction.
struct Database::LogSamples {
  std::deque<std::pair<Clock::time_point, Lsn>> samples;
  // How long ago the primary passed `replayed` (0: it has not, as far as sampled); at least the
  // age of the oldest sample when even that one is past it.
  [[nodiscard]] Clock::duration lag(Lsn replayed, Clock::time_point now) const {
    for (const auto& [when, lsn] : samples) {
      if (lsn > replayed) return now - when;
    }
    return Clock::duration::zero();
  }
};

// One shard's PostgreSQL cluster: its primary, then its replicas, with the reads its primary
// answered although it has replicas, by reason.
struct Database::Cluster {
  std::string name;
  std::size_t index = 0;  // in shards()
  std::vector<std::unique_ptr<Node>> nodes;
  ConnectOptions admin;                     // its primary, for connect_admin
  core::Counter* reads_behind = nullptr;    // every replica was behind
  core::Counter* reads_unrouted = nullptr;  // no replica was in rotation
  core::Counter* reads_retried = nullptr;   // the replica failed them
  [[nodiscard]] Node& primary() const { return *nodes.front(); }
  [[nodiscard]] bool has_replicas() const { return nodes.size() > 1; }
};

namespace {
std::size_t worker_index(std::size_t workers) {
  return std::min(core::this_worker(), workers - 1);
}

// Failures of a read on a replica that the primary answers instead: the replica went away or
// stopped answering, or cancelled the query for a conflict with recovery (SQLSTATE 40001).
bool retry_on_primary(const Error& error) {
  return error.code == Errc::unavailable || error.code == Errc::retryable;
}

constexpr auto kMaxProbeBackoff = std::chrono::milliseconds(5'000);
}  // namespace

Database::Database(DatabaseOptions options, core::Registry& metrics, std::size_t workers)
    : options_(std::move(options)),
      statement_metrics_(
          std::make_unique<StatementMetrics>(metrics, std::max<std::size_t>(workers, 1))),
      slow_log_(std::make_unique<SlowLog>(options_.slow_statements, metrics)),
      scan_gate_(options_.scans, &metrics),
      shard_cache_(std::make_unique<ShardCache>(options_.shard_cache_entries)),
      outbox_(std::make_unique<Outbox>(*this)) {
  workers = std::max<std::size_t>(workers, 1);
  std::vector<ShardOptions> shards{
      {"main", options_.connect.conninfo, options_.replicas.conninfos, options_.admin_conninfo}};
  shards.insert(shards.end(), options_.shards.begin(), options_.shards.end());
  for (const auto& shard : shards) {
    // Main keeps the names it had before shards ("primary", "replica-1"), and with them its
    // metric series; another shard's nodes are "eu-1/primary", "eu-1/replica-1".
    auto prefix = shard.name == "main" ? std::string() : shard.name + "/";
    auto cluster = std::make_unique<Cluster>();
    cluster->name = shard.name;
    cluster->index = clusters_.size();
    cluster->admin = ConnectOptions{
        shard.admin_conninfo.empty() ? shard.conninfo : shard.admin_conninfo, {}, "liftoff-admin"};
    auto connect = options_.connect;
    connect.conninfo = shard.conninfo;
    cluster->nodes.push_back(std::make_unique<Node>(shard.name, prefix + "primary", connect,
                                                    workers, options_.shared_connections));
    for (std::size_t i = 0; i < shard.replica_conninfos.size(); ++i) {
      connect.conninfo = shard.replica_conninfos[i];
      cluster->nodes.push_back(
          std::make_unique<Node>(shard.name, fmt::format("{}replica-{}", prefix, i + 1), connect,
                                 workers, options_.shared_connections));
    }
    for (auto& node : cluster->nodes)
      node->observer = std::make_unique<NodeObserver>(*statement_metrics_, *slow_log_, node->name);
    register_metrics(*cluster, metrics);
    shard_names_.push_back(shard.name);
    clusters_.push_back(std::move(cluster));
  }
  if (std::any_of(clusters_.begin(), clusters_.end(),
                  [](const auto& cluster) { return cluster->has_replicas(); })) {
    // A writer's position is needed until every replica in rotation has replayed it: they are at
    // most max_lag behind; kept twice that.
    constexpr std::size_t kWriters = 100'000;
    recent_writes_ = std::make_unique<RecentWrites>(2 * options_.replicas.max_lag, kWriters);
  }
}

void Database::register_metrics(Cluster& cluster, core::Registry& metrics) {
  for (auto& node : cluster.nodes) {
    std::string label = "database=\"" + node->name + "\"";
    auto& m = node->pool_metrics;
    m.size = &metrics.gauge("db_pool_connections", "Pooled connections (all workers)", label);
    m.in_use = &metrics.gauge("db_pool_in_use", "Connections leased out", label);
    m.waiters = &metrics.gauge("db_pool_waiters", "Coroutines waiting for a connection", label);
    m.acquire_wait =
        &metrics.histogram("db_pool_acquire_wait_seconds", "Time to obtain a connection", label);
    m.acquire_timeouts =
        &metrics.counter("db_pool_acquire_timeouts_total", "Acquires that timed out", label);
    m.connect_failures =
        &metrics.counter("db_pool_connect_failures_total", "Failed connection attempts", label);
    if (!cluster.has_replicas()) continue;
    node->reads =
        &metrics.counter("db_reads_total", "Reads (statements) each server answered", label);
    if (node.get() == &cluster.primary()) continue;
    node->rotation_gauge = &metrics.gauge(
        "db_replica_in_rotation", "1 while the replica serves reads, 0 while it is out", label);
    node->lag_gauge =
        &metrics.gauge("db_replica_lag_milliseconds",
                       "How long ago the primary was where the replica's replay is", label);
  }
  if (!cluster.has_replicas()) return;
  auto shard = cluster.name == "main" ? std::string() : "shard=\"" + cluster.name + "\",";
  auto fallback = [&](std::string_view reason) {
    return &metrics.counter("db_primary_reads_total",
                            "Reads the primary answered although replicas are configured",
                            shard + "reason=\"" + std::string(reason) + "\"");
  };
  cluster.reads_behind = fallback("replicas_behind");
  cluster.reads_unrouted = fallback("no_replica_in_rotation");
  cluster.reads_retried = fallback("replica_failed");
}

Database::~Database() = default;

asio::awaitable<Result<std::size_t>> Database::shard_of(const Uuid& org, const Scope& scope,
                                                        bool writing) {
  auto found = co_await find_shard(org, scope, writing);
  if (!found) co_return found.error();
  co_return found->value_or(0);  // no such org: its statements find nothing on main
}

asio::awaitable<Result<std::optional<std::size_t>>> Database::find_shard(const Uuid& org,
                                                                         const Scope& scope,
                                                                         bool writing) {
  if (clusters_.size() == 1) co_return 0;
  if (auto cached = shard_cache_->find(org)) co_return *cached;
  if (!directory_)
    co_return make_error(Errc::internal, "shards are configured without a directory");
  auto control = scope.control();
  const auto wait_until = statement_deadline(scope);
  for (;;) {
    auto generation = shard_cache_->generation();
    auto entry = co_await directory_(control, org);
    if (!entry) co_return entry.error();
    if (!*entry) co_return std::nullopt;
    auto known = std::find(shard_names_.begin(), shard_names_.end(), (*entry)->shard);
    if (known == shard_names_.end()) {
      spdlog::error("org {} is on shard {}, which this process's configuration does not name",
                    org.to_string(), (*entry)->shard);
      co_return make_error(Errc::unavailable, "the organization's shard is not reachable");
    }
    auto index = static_cast<std::size_t>(known - shard_names_.begin());
    // A fenced entry is never cached: the switch that ends the fence may move the org.
    if (!(*entry)->fenced) shard_cache_->store(org, index, generation);
    if (!(*entry)->fenced || !writing) co_return index;
    if (Clock::now() + kFencePoll >= wait_until)
      co_return make_error(Errc::retryable, "the organization is moving to another shard; retry");
    asio::steady_timer pause(co_await asio::this_coro::executor, kFencePoll);
    co_await pause.async_wait(asio::use_awaitable);
  }
}

asio::awaitable<Result<Database::Cluster*>> Database::cluster_for(const Scope& scope,
                                                                  bool writing) {
  const auto& tenant = scope.tenant;
  if (clusters_.size() == 1 || tenant.plane() == Plane::control) co_return &main_cluster();
  if (!tenant.org_id()) {
    if (tenant.shard() >= clusters_.size())
      co_return make_error(Errc::internal, "a sweep named a shard that does not exist");
    co_return clusters_[tenant.shard()].get();
  }
  auto shard = co_await shard_of(*tenant.org_id(), scope, writing);
  if (!shard) co_return shard.error();
  co_return clusters_[*shard].get();
}

namespace {
// The key of `writer`'s recent writes on cluster `shard` (RecentWrites keeps one position a key).
std::uint64_t writes_key(std::uint64_t writer, std::size_t shard) {
  return writer ^ (shard * 0x9E3779B97F4A7C15ull);
}
}  // namespace

std::shared_ptr<Consistency> Database::consistency_for(std::uint64_t writer,
                                                       const ConsistencyToken& token) {
  if (!recent_writes_) return nullptr;
  auto consistency = std::make_shared<Consistency>(clusters_.size());
  for (const auto& [name, at] : token) {
    auto known = std::find(shard_names_.begin(), shard_names_.end(), name);
    if (known != shard_names_.end())
      consistency->at(static_cast<std::size_t>(known - shard_names_.begin())).read_after = at;
  }
  if (writer == 0) return consistency;
  for (const auto& cluster : clusters_) {
    if (!cluster->has_replicas()) continue;
    auto& position = consistency->at(cluster->index);
    position.read_after = std::max(position.read_after,
                                   recent_writes_->last_write(writes_key(writer, cluster->index)));
  }
  return consistency;
}

void Database::remember_writes(std::uint64_t writer, const Consistency& consistency) {
  if (!recent_writes_ || writer == 0) return;
  for (std::size_t shard = 0; shard < consistency.clusters(); ++shard) {
    if (auto written = consistency.at(shard).written)
      recent_writes_->wrote(writes_key(writer, shard), written);
  }
}

ConsistencyToken Database::token_of(const Consistency& consistency) const {
  ConsistencyToken token;
  for (std::size_t shard = 0; shard < consistency.clusters() && shard < shard_names_.size();
       ++shard) {
    if (auto at = consistency.at(shard).read_after) token.emplace_back(shard_names_[shard], at);
  }
  return token;
}

Deadline Database::statement_deadline(const Scope& scope) const {
  return std::min(scope.deadline,
                  deadline_after(scope.statement_timeout.value_or(options_.query_timeout)));
}

asio::awaitable<Database::Node*> Database::node_for(Cluster& cluster, Intent intent,
                                                    const Scope& scope) {
  if (!cluster.has_replicas() || intent == Intent::write || intent == Intent::latest)
    co_return &cluster.primary();
  co_return co_await read_node(cluster, intent, scope);
}

// A replica in rotation that has replayed what the scope must read: the worker's own (worker i
// starts at replica i % n, so a node's workers spread over the replicas) while it answers promptly,
// as a shared connection is filled (whole batches, not halves), else the least loaded; failing
// that, the replica furthest along, asked where its replay stands now; else the primary. The
// choice sticks to the scope (per cluster: the scope's Consistency holds a position in each
// cluster's own log).
asio::awaitable<Database::Node*> Database::read_node(Cluster& cluster, Intent intent,
                                                     const Scope& scope) {
  auto& nodes = cluster.nodes;
  auto* primary = &cluster.primary();
  auto* consistency = scope.consistency ? &scope.consistency->at(cluster.index) : nullptr;
  if (consistency && consistency->pinned_node >= 0) {
    auto& pinned = *nodes[static_cast<std::size_t>(consistency->pinned_node)];
    if (&pinned == primary ||
        (pinned.in_rotation.load(std::memory_order_relaxed) &&
         (intent == Intent::read ||
          Lsn{pinned.replayed.load(std::memory_order_relaxed)} >= consistency->read_after)))
      co_return &pinned;
    consistency->pinned_node = 0;  // never an older state than the request already read
    co_return primary;
  }
  Lsn needed = intent == Intent::read_your_writes && consistency ? consistency->read_after : Lsn{};
  auto worker = worker_index(primary->shared.size());
  auto replicas = nodes.size() - 1;
  auto now = Clock::now();
  Node* best = nullptr;
  Node* furthest = nullptr;
  std::size_t best_load = 0;
  for (std::size_t i = 0; i < replicas; ++i) {
    auto& node = *nodes[1 + (worker + i) % replicas];
    if (!node.in_rotation.load(std::memory_order_relaxed)) continue;
    if (Lsn{node.replayed.load(std::memory_order_relaxed)} < needed) {
      if (!furthest || furthest->replayed.load(std::memory_order_relaxed) <
                           node.replayed.load(std::memory_order_relaxed))
        furthest = &node;
      continue;
    }
    if (node.prompt(worker, now)) {
      best = &node;
      break;
    }
    auto load = node.load(worker);
    if (!best || load < best_load) {
      best = &node;
      best_load = load;
    }
  }
  if (!best && furthest) {
    auto now = co_await replayed_now(*furthest, statement_deadline(scope), scope.trace);
    if (now && *now >= needed) best = furthest;
  }
  if (!best) (furthest ? cluster.reads_behind : cluster.reads_unrouted)->inc();
  Node* chosen = best ? best : primary;
  if (consistency) {
    auto index = std::find_if(nodes.begin(), nodes.end(),
                              [&](const auto& node) { return node.get() == chosen; }) -
                 nodes.begin();
    consistency->pinned_node = static_cast<int>(index);
  }
  co_return chosen;
}

asio::awaitable<Result<Lsn>> Database::replayed_now(Node& node, Deadline deadline,
                                                    const trace::Context& trace) {
  auto rows = co_await run(node, kReplayPosition, Params::none(), deadline, trace);
  if (!rows) co_return rows.error();
  if (rows->empty() || !rows->front().get<bool>(1)) {
    leave_rotation(node, "it is no longer a replica");
    co_return make_error(Errc::unavailable, "not a replica");
  }
  auto lsn = lsn_of(rows);
  node.replayed_at_least(lsn);
  co_return lsn;
}

asio::awaitable<Result<Lease>> Database::acquire(Intent intent, const Scope& scope) {
  auto cluster = co_await cluster_for(scope, intent == Intent::write);
  if (!cluster) co_return cluster.error();
  auto* node = co_await node_for(**cluster, intent, scope);
  co_return co_await lease(*node, statement_deadline(scope));
}

asio::awaitable<Result<Lease>> Database::lease(Node& node, Deadline deadline) {
  auto& pool = node.pools[worker_index(node.pools.size())];
  if (!pool) {
    auto executor = co_await asio::this_coro::executor;
    auto connect = node.connect;
    QueryObserver* observer = node.observer.get();
    pool = Pool::create(
        executor, options_.pool,
        [executor, connect,
         observer](Deadline d) -> asio::awaitable<Result<std::unique_ptr<Connection>>> {
          auto conn = co_await Connection::connect(executor, connect, d);
          if (conn) (*conn)->set_observer(observer);
          co_return conn;
        },
        node.pool_metrics);
  }
  auto keep = pool;  // the slot may be reset by stop_worker while we wait
  co_return co_await keep->acquire(deadline);
}

// Fill the first connection while it is answering promptly (bigger batches, fewer server backends),
// spill to the others when it has a long queue or a slow statement at its head (head-of-line
// blocking), and then take the least busy.
std::shared_ptr<Connection> Database::shared_connection(Node& node,
                                                        const asio::any_io_executor& executor) {
  std::shared_ptr<Connection> best;
  auto now = Clock::now();
  for (auto& slot : node.shared[worker_index(node.shared.size())]) {
    // An idle connection is asked whether the server closed it meanwhile (one non-blocking read):
    // a restart, a failover or an administrator's pg_terminate_backend is noticed here, not by
    // the request that would be sent on it. In-flight readers keep their own reference.
    if (slot.conn && !(slot.conn->in_flight() > 0 ? slot.conn->usable() : slot.conn->check_alive()))
      slot.conn.reset();
    if (!slot.conn) {
      if (!slot.connecting && now >= slot.retry_at) {
        slot.connecting = true;
        asio::co_spawn(executor, connect_shared(node, slot, executor),
                       [&slot](const std::exception_ptr& e) {
                         if (!e) return;
                         slot.connecting = false;
                         spdlog::error("connecting a shared database connection failed");
                       });
      }
      continue;
    }
    if (answers_promptly(*slot.conn, now)) return slot.conn;
    if (fresh(*slot.conn, now) && (!best || slot.conn->in_flight() < best->in_flight()))
      best = slot.conn;
  }
  return best;
}

asio::awaitable<void> Database::connect_shared(Node& node, SharedSlot& slot,
                                               asio::any_io_executor executor) {
  // `slot` lives in node.shared, which is sized once and outlives every worker's coroutines.
  const auto generation = slot.generation;
  auto conn = co_await Connection::connect(executor, node.connect,
                                           deadline_after(options_.pool.acquire_timeout));
  if (slot.generation != generation) co_return;  // the worker stopped meanwhile
  slot.connecting = false;
  if (!conn) {
    slot.backoff = slot.backoff.count() == 0
                       ? options_.pool.backoff_min
                       : std::min(slot.backoff * 2, options_.pool.backoff_max);
    slot.retry_at = Clock::now() + slot.backoff;
    co_return;
  }
  slot.backoff = {};
  (*conn)->set_observer(node.observer.get());
  slot.conn = std::shared_ptr<Connection>(std::move(*conn));
}

asio::awaitable<Result<Rows>> Database::run(Node& node, const Statement& statement,
                                            const Params& params, Deadline deadline,
                                            const trace::Context& trace, bool own_connection) {
  auto span = statement_span(trace, statement, 1, node.shard, node.name);
  if (options_.shared_connections > 0 && !own_connection) {
    if (auto shared = shared_connection(node, co_await asio::this_coro::executor))
      co_return ended(span, co_await shared->submit(statement, params, deadline));
  }
  auto leased = co_await lease(node, deadline);
  if (!leased) co_return ended(span, Result<Rows>(leased.error()));
  co_return ended(span, co_await (*leased)->query(statement, params, deadline));
}

asio::awaitable<std::vector<Result<Rows>>> Database::run(Node& node, std::span<const Query> queries,
                                                         Deadline deadline,
                                                         const trace::Context& trace) {
  auto span =
      statement_span(trace, *queries.front().statement, queries.size(), node.shard, node.name);
  if (options_.shared_connections > 0) {
    if (auto shared = shared_connection(node, co_await asio::this_coro::executor))
      co_return ended(span, co_await shared->submit(queries, deadline));
  }
  auto leased = co_await lease(node, deadline);
  if (!leased) {
    std::vector<Result<Rows>> failed;
    for (std::size_t i = 0; i < queries.size(); ++i) failed.emplace_back(leased.error());
    co_return ended(span, std::move(failed));
  }
  co_return ended(span, co_await (*leased)->pipeline(queries, deadline));
}

asio::awaitable<Result<Rows>> Database::query(Intent intent, const Scope& scope,
                                              const Statement& statement, const Params& params) {
  core::StatementTimer timer(scope.statement_time.get());
  if (auto allowed = check_plane(statement, scope.tenant); !allowed) co_return allowed.error();
  // A scan of one organization's data waits for the organization's turn (as long as its request
  // may), then runs on a connection of its own, holding the turn until it is answered; its own
  // time starts when its turn comes.
  const bool scan = statement.scans && scope.tenant.org_id().has_value();
  ScanGate::Ticket turn;
  if (scan) {
    auto entered = co_await scan_gate_.enter(*scope.tenant.org_id(), scope.deadline);
    if (!entered) co_return entered.error();
    turn = std::move(*entered);
  }
  auto deadline = statement_deadline(scope);
  auto found = co_await cluster_for(scope, intent == Intent::write);
  if (!found) co_return found.error();
  auto& cluster = **found;
  auto* tracked = scope.consistency ? &scope.consistency->at(cluster.index) : nullptr;
  auto* node = co_await node_for(cluster, intent, scope);
  if (node != &cluster.primary()) {
    auto read = co_await run(*node, statement, params, deadline, scope.trace, scan);
    node->reads->inc();
    if (read || !retry_on_primary(read.error())) co_return read;
    if (read.error().code == Errc::unavailable) leave_rotation(*node, read.error().for_log());
    cluster.reads_retried->inc();
    if (tracked) tracked->pinned_node = 0;
  }
  if (intent == Intent::write && tracked && cluster.has_replicas()) {
    // A write tracked for read-your-writes asks where the log stands in the same round trip.
    std::array<Query, 2> queries{Query{&statement, params}, Query{&kLogPosition, Params()}};
    auto results = co_await run(cluster.primary(), queries, deadline, scope.trace);
    if (results[0]) tracked->wrote(lsn_of(results[1]));
    co_return std::move(results[0]);
  }
  if (cluster.has_replicas() && intent != Intent::write) cluster.primary().reads->inc();
  co_return co_await run(cluster.primary(), statement, params, deadline, scope.trace, scan);
}

asio::awaitable<Result<Transaction>> Database::begin(const Scope& scope, Isolation isolation,
                                                     Planes planes) {
  auto found = co_await cluster_for(scope, true);
  if (!found) co_return found.error();
  auto* cluster = *found;
  auto tenant = scope.tenant;
  if (planes == Planes::both && cluster != &main_cluster()) {
    // The change is the control plane's; the org's rows are posted to its shard (see Planes).
    cluster = &main_cluster();
    tenant = Tenant::control();
    planes = Planes::one;
  }
  auto leased = co_await lease(cluster->primary(), statement_deadline(scope));
  if (!leased) co_return leased.error();
  const bool tracked = cluster->has_replicas();
  // A named local, not a braced temporary in the co_await expression (see Params::none()).
  Transaction::Options options{tenant,
                               planes,
                               scope.deadline,
                               scope.statement_timeout.value_or(options_.query_timeout),
                               isolation,
                               tracked ? scope.consistency : nullptr,
                               this,
                               cluster->index,
                               scope.trace,
                               cluster->name,
                               cluster->primary().name,
                               scope.statement_time};
  co_return co_await Transaction::begin(std::move(*leased), std::move(options));
}

asio::awaitable<Database::Warmth> Database::warm(std::size_t pooled, Deadline deadline) {
  auto executor = co_await asio::this_coro::executor;
  const auto worker = worker_index(main_cluster().primary().shared.size());
  pooled = std::min(pooled, options_.pool.max_size);
  using Opening =
      decltype(asio::co_spawn(executor, std::declval<asio::awaitable<void>>(), asio::deferred));
  std::vector<Opening> openings;
  std::size_t servers = 0;
  for (const auto& cluster : clusters_) servers += cluster->nodes.size();
  std::vector<std::size_t> filled(servers, 0);  // by fill_pool, per server
  std::size_t server = 0;
  for (auto& cluster : clusters_) {
    for (auto& node : cluster->nodes) {
      for (auto& slot : node->shared[worker]) {
        if (slot.conn || slot.connecting) continue;
        slot.connecting = true;
        openings.push_back(
            asio::co_spawn(executor, connect_shared(*node, slot, executor), asio::deferred));
      }
      openings.push_back(asio::co_spawn(
          executor, fill_pool(*node, pooled, deadline, filled[server++]), asio::deferred));
    }
  }
  co_await asio::experimental::make_parallel_group(std::move(openings))
      .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
  Warmth warmth;
  for (auto& cluster : clusters_) {
    for (auto& node : cluster->nodes) {
      for (auto& slot : node->shared[worker]) {
        ++warmth.wanted;
        if (slot.conn) ++warmth.open;
      }
    }
  }
  warmth.wanted += servers * pooled;
  for (auto n : filled) warmth.open += n;
  co_return warmth;
}

asio::awaitable<void> Database::fill_pool(Node& node, std::size_t count, Deadline deadline,
                                          std::size_t& filled) {
  // Held together, so that each acquire opens a connection; returned to the pool idle at the end.
  std::vector<Lease> held;
  while (held.size() < count) {
    auto leased = co_await lease(node, deadline);
    if (!leased) break;
    held.push_back(std::move(*leased));
  }
  filled = held.size();
}

void Database::stop_worker(std::size_t worker) {
  for (auto& cluster : clusters_) {
    for (auto& node : cluster->nodes) {
      if (worker < node->shared.size()) {
        for (auto& slot : node->shared[worker]) {
          slot.conn.reset();
          slot.connecting = false;
          ++slot.generation;
        }
      }
      if (worker < node->pools.size() && node->pools[worker]) {
        node->pools[worker]->close();
        node->pools[worker].reset();
      }
    }
  }
}

std::vector<Database::ReplicaState> Database::replicas() const {
  std::vector<ReplicaState> states;
  for (const auto& cluster : clusters_) {
    for (std::size_t i = 1; i < cluster->nodes.size(); ++i) {
      const auto& node = *cluster->nodes[i];
      states.push_back({node.name, node.in_rotation.load(), Lsn{node.replayed.load()},
                        std::chrono::milliseconds(node.lag_ms.load())});
    }
  }
  return states;
}

void Database::leave_rotation(Node& node, std::string_view why) {
  if (node.in_rotation.exchange(false)) {
    spdlog::warn("replica {} leaves the rotation: {}", node.name, why);
    if (node.rotation_gauge) node.rotation_gauge->set(0);
  }
}

asio::awaitable<void> Database::watch_replicas(const std::atomic<bool>& stopping) {
  auto executor = co_await asio::this_coro::executor;
  auto running = std::make_shared<std::size_t>(0);
  auto done = [running](const std::exception_ptr& e) {
    --*running;
    if (e) spdlog::error("a replica watcher ended by an unexpected exception");
  };
  for (auto& cluster : clusters_) {
    if (!cluster->has_replicas()) continue;
    // Each cluster's replicas are measured against its own primary's log.
    auto samples = std::make_shared<LogSamples>();
    *running += cluster->nodes.size();
    asio::co_spawn(executor, watch_primary(cluster->primary(), samples, stopping), done);
    for (std::size_t i = 1; i < cluster->nodes.size(); ++i)
      asio::co_spawn(executor, watch_replica(*cluster->nodes[i], samples, stopping), done);
  }
  asio::steady_timer pause(executor);
  while (*running > 0) {
    pause.expires_after(options_.replicas.probe_interval);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

// A watcher's probe: `statement` on its own connection (made again when it was lost), by ten
// probe intervals or a second, whichever is longer; a failed probe drops the connection.
asio::awaitable<Result<Rows>> Database::probe(std::unique_ptr<Connection>& conn,
                                              const ConnectOptions& options,
                                              const Statement& statement) {
  auto deadline = deadline_after(
      std::max(options_.replicas.probe_interval * 10, std::chrono::milliseconds(1'000)));
  co_return co_await run_alone(conn, options, statement, Params::none(), deadline);
}

asio::awaitable<Result<Rows>> Database::run_alone(std::unique_ptr<Connection>& conn,
                                                  const ConnectOptions& options,
                                                  const Statement& statement, const Params& params,
                                                  Deadline deadline) {
  if (!conn || !conn->usable()) {
    auto executor = co_await asio::this_coro::executor;
    auto connected = co_await Connection::connect(executor, options, deadline);
    if (!connected) co_return connected.error();
    conn = std::move(*connected);
  }
  auto rows = co_await conn->query(statement, params, deadline);
  if (!rows || rows->empty()) conn.reset();
  co_return rows;
}

std::vector<SlowSummary> Database::slow_statements() const {
  return slow_log_->summaries();
}

asio::awaitable<Result<std::unique_ptr<Connection>>> Database::connect_admin(std::size_t index,
                                                                             Deadline deadline) {
  if (index >= clusters_.size()) co_return make_error(Errc::not_found, "no such shard");
  auto executor = co_await asio::this_coro::executor;
  co_return co_await Connection::connect(executor, clusters_[index]->admin, deadline);
}

asio::awaitable<void> Database::explain_slow(const std::atomic<bool>& stopping) {
  if (options_.slow_statements.threshold.count() == 0) co_return;
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer pause(executor);
  std::map<std::string, std::unique_ptr<Connection>> connections;  // by node name
  constexpr auto kExplainTimeout = std::chrono::seconds(5);
  constexpr auto kPoll = std::chrono::milliseconds(200);
  while (!stopping.load(std::memory_order_relaxed)) {
    while (auto slow = slow_log_->next_to_explain()) {
      const Node* node = nullptr;
      for (const auto& cluster : clusters_) {
        for (const auto& candidate : cluster->nodes)
          if (candidate->name == slow->node) node = candidate.get();
      }
      if (node == nullptr) continue;
      // Planned for these values (not the generic plan), as the statement was; EXPLAIN without
      // ANALYZE runs nothing.
      auto sql = "EXPLAIN (FORMAT JSON) " + slow->sql;
      Statement explain{Plane::any, "liftoff.explain", sql, false};
      auto plan = co_await run_alone(connections[node->name], node->connect, explain, slow->params,
                                     deadline_after(kExplainTimeout));
      if (plan) {
        slow_log_->explained(*slow, plan->front().get<std::string>(0), true);
      } else {
        slow_log_->explained(*slow, plan.error().for_log(), false);
      }
    }
    pause.expires_after(kPoll);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> Database::watch_primary(Node& primary, std::shared_ptr<LogSamples> samples,
                                              const std::atomic<bool>& stopping) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer pause(executor);
  std::unique_ptr<Connection> conn;
  // Samples back to twice the lag limit: a replica further behind than the oldest is far out.
  auto keep = 2 * options_.replicas.max_lag + std::chrono::seconds(1);
  while (!stopping.load(std::memory_order_relaxed)) {
    auto rows = co_await probe(conn, primary.connect, kLogPosition);
    if (rows && !rows->empty()) {
      auto now = Clock::now();
      samples->samples.emplace_back(now, lsn_of(rows));
      while (samples->samples.size() > 1 && now - samples->samples.front().first > keep)
        samples->samples.pop_front();
    }
    pause.expires_after(options_.replicas.probe_interval);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> Database::watch_replica(Node& node, std::shared_ptr<LogSamples> samples,
                                              const std::atomic<bool>& stopping) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer pause(executor);
  std::unique_ptr<Connection> conn;
  std::chrono::milliseconds backoff{0};
  const auto& options = options_.replicas;
  if (node.rotation_gauge) node.rotation_gauge->set(0);
  std::string out_because = "not probed yet";
  while (!stopping.load(std::memory_order_relaxed)) {
    std::string trouble;
    auto rows = co_await probe(conn, node.connect, kReplayPosition);
    if (!rows || rows->empty()) {
      trouble = "its probe failed: " + (rows ? std::string("no row") : rows.error().for_log());
    } else if (!rows->front().get<bool>(1)) {
      trouble = "it is no longer a replica (promoted?)";
    } else {
      auto replayed = lsn_of(rows);
      node.replayed_at_least(replayed);
      auto lag = std::chrono::duration_cast<std::chrono::milliseconds>(
          samples->lag(replayed, Clock::now()));
      node.lag_ms.store(lag.count());
      if (node.lag_gauge) node.lag_gauge->set(lag.count());
      if (lag > options.max_lag) {
        trouble = fmt::format("it is {} ms behind the primary (max_replica_lag {} ms)", lag.count(),
                              options.max_lag.count());
      } else if (!node.in_rotation.load() && lag > options.max_lag / 2) {
        trouble = out_because;  // returns once within half the limit
      }
    }
    if (trouble.empty()) {
      backoff = {};
      if (!node.in_rotation.exchange(true)) {
        spdlog::info("replica {} joins the rotation (was out: {})", node.name, out_because);
        if (node.rotation_gauge) node.rotation_gauge->set(1);
      }
    } else {
      leave_rotation(node, trouble);
      out_because = trouble;
      if (!conn) {
        backoff =
            backoff.count() == 0 ? options.probe_interval : std::min(backoff * 2, kMaxProbeBackoff);
      }
    }
    pause.expires_after(std::max(options.probe_interval, backoff));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace liftoff::db
