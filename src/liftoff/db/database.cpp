#include "liftoff/db/database.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <cassert>
#include <unordered_map>

#include "liftoff/core/metrics.hpp"
#include "liftoff/core/worker.hpp"

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

// A rollback is sent even when the transaction's deadline has passed.
constexpr auto kRollbackGrace = std::chrono::seconds(1);
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
class Database::StatementMetrics final : public QueryObserver {
 public:
  StatementMetrics(core::Registry& registry, std::size_t workers)
      : registry_(registry), caches_(workers) {}
  void observed(std::string_view statement, Clock::duration elapsed, bool ok) override {
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
  if (!unsent_begin_) co_return co_await lease_->pipeline(queries, deadline);
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
  co_return results;
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
    co_return co_await lease_->query(statement, params, statement_deadline());
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
  if (unsent_begin_) co_return Result<void>{};  // ran nothing
  // COMMIT of a failed transaction reports ROLLBACK; surface that as an error, not a success.
  auto failed = aborted();
  auto done = co_await lease_->query(kCommit, Params::none(), statement_deadline());
  if (!done) co_return done.error();
  if (failed)
    co_return make_error(Errc::conflict,
                         "transaction was aborted by an earlier error; rolled back");
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
  std::array<Query, 2> queries{Query{&statement, params}, Query{&kCommit, Params()}};
  auto results = co_await run(queries);
  if (!results[0]) co_return std::move(results[0]).error();  // the COMMIT rolled back
  if (!results[1]) co_return std::move(results[1]).error();
  co_return std::move(*results[0]);
}

asio::awaitable<Result<void>> Transaction::rollback() {
  if (!open_) co_return Result<void>{};
  open_ = false;
  if (unsent_begin_) co_return Result<void>{};  // ran nothing
  auto done = co_await lease_->query(
      kRollback, Params::none(), std::max(statement_deadline(), deadline_after(kRollbackGrace)));
  if (!done) co_return done.error();
  co_return Result<void>{};
}

Database::Database(DatabaseOptions options, core::Registry& metrics, std::size_t workers)
    : options_(std::move(options)),
      statement_metrics_(
          std::make_unique<StatementMetrics>(metrics, std::max<std::size_t>(workers, 1))),
      primary_(std::max<std::size_t>(workers, 1)),
      shared_(std::max<std::size_t>(workers, 1),
              std::vector<SharedSlot>(options_.shared_connections)) {
  std::string label = "database=\"primary\"";
  pool_metrics_.size =
      &metrics.gauge("db_pool_connections", "Pooled connections (all workers)", label);
  pool_metrics_.in_use = &metrics.gauge("db_pool_in_use", "Connections leased out", label);
  pool_metrics_.waiters =
      &metrics.gauge("db_pool_waiters", "Coroutines waiting for a connection", label);
  pool_metrics_.acquire_wait =
      &metrics.histogram("db_pool_acquire_wait_seconds", "Time to obtain a connection", label);
  pool_metrics_.acquire_timeouts =
      &metrics.counter("db_pool_acquire_timeouts_total", "Acquires that timed out", label);
  pool_metrics_.connect_failures =
      &metrics.counter("db_pool_connect_failures_total", "Failed connection attempts", label);
}

Database::~Database() = default;

std::shared_ptr<Pool>& Database::pool_for(Intent, const Tenant&) {
  // One primary today; replicas (Intent::read) and shards (Tenant) are routed here later.
  auto worker = core::this_worker();
  if (worker >= primary_.size()) worker = 0;
  return primary_[worker];
}

Deadline Database::statement_deadline(const Scope& scope) const {
  return std::min(scope.deadline,
                  deadline_after(scope.statement_timeout.value_or(options_.query_timeout)));
}

asio::awaitable<Result<Lease>> Database::acquire(Intent intent, const Scope& scope) {
  co_return co_await lease(intent, scope.tenant, statement_deadline(scope));
}

asio::awaitable<Result<Lease>> Database::lease(Intent intent, const Tenant& tenant,
                                               Deadline deadline) {
  auto& pool = pool_for(intent, tenant);
  if (!pool) {
    auto executor = co_await asio::this_coro::executor;
    auto connect = options_.connect;
    QueryObserver* observer = statement_metrics_.get();
    pool = Pool::create(
        executor, options_.pool,
        [executor, connect,
         observer](Deadline d) -> asio::awaitable<Result<std::unique_ptr<Connection>>> {
          auto conn = co_await Connection::connect(executor, connect, d);
          if (conn) (*conn)->set_observer(observer);
          co_return conn;
        },
        pool_metrics_);
  }
  auto keep = pool;  // the slot may be reset by stop_worker while we wait
  co_return co_await keep->acquire(deadline);
}

// Fill the first connection while it is answering promptly (bigger batches, fewer server backends),
// spill to the others when it has a long queue or a slow statement at its head (head-of-line
// blocking), and then take the least busy.
std::shared_ptr<Connection> Database::shared_connection(const asio::any_io_executor& executor) {
  constexpr std::size_t kSpillQueue = 32;
  constexpr auto kSpillAge = std::chrono::milliseconds(2);
  auto worker = std::min(core::this_worker(), shared_.size() - 1);
  std::shared_ptr<Connection> best;
  auto now = Clock::now();
  for (auto& slot : shared_[worker]) {
    // An idle connection is asked whether the server closed it meanwhile (one non-blocking read):
    // a restart, a failover or an administrator's pg_terminate_backend is noticed here, not by
    // the request that would be sent on it. In-flight readers keep their own reference.
    if (slot.conn && !(slot.conn->in_flight() > 0 ? slot.conn->usable() : slot.conn->check_alive()))
      slot.conn.reset();
    if (!slot.conn) {
      if (!slot.connecting && now >= slot.retry_at) {
        slot.connecting = true;
        asio::co_spawn(
            executor, connect_shared(slot, executor), [&slot](const std::exception_ptr& e) {
              if (!e) return;
              slot.connecting = false;
              spdlog::error("connecting a shared database connection failed unexpectedly");
            });
      }
      continue;
    }
    if (slot.conn->in_flight() < kSpillQueue && now - slot.conn->oldest_submitted() < kSpillAge) {
      return slot.conn;
    }
    if (!best || slot.conn->in_flight() < best->in_flight()) best = slot.conn;
  }
  return best;
}

asio::awaitable<void> Database::connect_shared(SharedSlot& slot, asio::any_io_executor executor) {
  // `slot` lives in shared_, which is sized once and outlives every worker's coroutines.
  auto conn = co_await Connection::connect(executor, options_.connect,
                                           deadline_after(options_.pool.acquire_timeout));
  slot.connecting = false;
  if (!conn) {
    slot.backoff = slot.backoff.count() == 0
                       ? options_.pool.backoff_min
                       : std::min(slot.backoff * 2, options_.pool.backoff_max);
    slot.retry_at = Clock::now() + slot.backoff;
    co_return;
  }
  slot.backoff = {};
  (*conn)->set_observer(statement_metrics_.get());
  slot.conn = std::shared_ptr<Connection>(std::move(*conn));
}

asio::awaitable<Result<Rows>> Database::query(Intent intent, const Scope& scope,
                                              const Statement& statement, const Params& params) {
  if (auto allowed = check_plane(statement, scope.tenant); !allowed) co_return allowed.error();
  auto deadline = statement_deadline(scope);
  if (options_.shared_connections > 0) {
    if (auto shared = shared_connection(co_await asio::this_coro::executor)) {
      co_return co_await shared->submit(statement, params, deadline);
    }
  }
  auto leased = co_await lease(intent, scope.tenant, deadline);
  if (!leased) co_return leased.error();
  co_return co_await (*leased)->query(statement, params, deadline);
}

asio::awaitable<Result<Transaction>> Database::begin(const Scope& scope, Isolation isolation,
                                                     Planes planes) {
  auto leased = co_await lease(Intent::write, scope.tenant, statement_deadline(scope));
  if (!leased) co_return leased.error();
  co_return co_await Transaction::begin(
      std::move(*leased),
      Transaction::Options{scope.tenant, planes, scope.deadline,
                           scope.statement_timeout.value_or(options_.query_timeout), isolation});
}

void Database::stop_worker(std::size_t worker) {
  if (worker < shared_.size()) {
    for (auto& slot : shared_[worker]) slot.conn.reset();
  }
  if (worker < primary_.size() && primary_[worker]) {
    primary_[worker]->close();
    primary_[worker].reset();
  }
}

}  // namespace liftoff::db
