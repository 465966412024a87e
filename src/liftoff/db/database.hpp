#pragma once
// The data tier's front door. Every query states its intent (write, read, read-your-writes) and its
// tenant; today one primary serves everything, later read replicas and tenant shards are chosen
// here without changing callers. One pool per worker thread per database; a caller always gets the
// pool of the worker it runs on.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <vector>

#include "liftoff/db/connection.hpp"
#include "liftoff/db/pool.hpp"

namespace liftoff::core {
class Registry;
}

namespace liftoff::db {

using Pool = BasicPool<Connection>;
using Lease = Pool::Lease;

enum class Intent {
  write,             // the primary of the tenant's shard
  read,              // any replica is fine (may lag)
  read_your_writes,  // a replica that has replayed the caller's writes, else the primary
};

enum class Isolation { read_committed, repeatable_read, serializable };

// Which planes a transaction's statements may touch. `one`: the plane of its scope's tenant (and
// Plane::any statements). `both`: an organization's transaction that also changes the control
// plane (an org's row, its members or keys, with the audit event in the org's chain): atomic only
// while both planes share one cluster; each is listed in docs/architecture.md.
enum class Planes { one, both };

// Whether `statement` may be issued for `tenant`: a tenant-plane statement needs a tenant (one org
// or every org), a control-plane one the control plane (or a transaction over both planes). A
// violation is a bug in the caller: debug builds abort, release builds answer Errc::internal.
[[nodiscard]] Result<void> check_plane(const Statement& statement, const Tenant& tenant,
                                       Planes planes = Planes::one);

// A transaction owns its lease: the connection cannot be used outside it. commit() or rollback()
// ends it; a Transaction destroyed while open returns its connection to the pool, which rolls it
// back before reuse, so every path ends the transaction. BEGIN goes out with the first statement,
// in the same round trip (a transaction that runs nothing never reaches the server).
class Transaction {
 public:
  // Every statement of the transaction runs for `tenant` (see check_plane), each by
  // min(`deadline`, its start + `statement_timeout`).
  struct Options {
    Tenant tenant = Tenant::control();
    Planes planes = Planes::one;
    Deadline deadline{};
    std::chrono::milliseconds statement_timeout{5'000};
    Isolation isolation = Isolation::read_committed;
  };
  [[nodiscard]] static boost::asio::awaitable<Result<Transaction>> begin(Lease lease,
                                                                         Options options);
  Transaction(Transaction&&) noexcept = default;
  Transaction& operator=(Transaction&&) noexcept = default;

  [[nodiscard]] boost::asio::awaitable<Result<Rows>> query(const Statement& statement,
                                                           const Params& params);
  // query() for a statement whose rows do not matter, only whether it worked.
  [[nodiscard]] boost::asio::awaitable<Result<void>> execute(const Statement& statement,
                                                             const Params& params);
  [[nodiscard]] boost::asio::awaitable<std::vector<Result<Rows>>> pipeline(
      std::span<const Query> queries);
  [[nodiscard]] boost::asio::awaitable<Result<void>> commit();
  // Runs a last statement and COMMIT in one round trip. When the statement fails, the COMMIT rolls
  // back and its error is returned.
  [[nodiscard]] boost::asio::awaitable<Result<Rows>> commit_after(const Statement& statement,
                                                                  const Params& params);
  [[nodiscard]] boost::asio::awaitable<Result<void>> rollback();
  [[nodiscard]] bool open() const { return open_; }
  // Whether a statement failed in the transaction (it can only roll back now).
  [[nodiscard]] bool aborted() const;

 private:
  Transaction(Lease lease, const Options& options, const Statement& begin)
      : lease_(std::move(lease)), options_(options), unsent_begin_(&begin) {}
  // Runs `queries` in one round trip, behind the BEGIN when it has not been sent yet.
  [[nodiscard]] boost::asio::awaitable<std::vector<Result<Rows>>> run(
      std::span<const Query> queries);
  [[nodiscard]] Deadline statement_deadline() const;
  Lease lease_;
  Options options_;
  const Statement* unsent_begin_;  // null once sent
  bool open_ = true;
};

struct DatabaseOptions {
  ConnectOptions connect;
  PoolOptions pool;
  std::chrono::milliseconds query_timeout{5'000};
  // Connections per worker that Database::query() multiplexes single statements over (pipelined,
  // see Connection::submit). 0: every query leases a pooled connection.
  std::size_t shared_connections = 2;
};

class Database {
 public:
  Database(DatabaseOptions options, core::Registry& metrics, std::size_t workers);
  ~Database();

  // A connection of the current worker's pool for (intent, scope.tenant), for work that needs one
  // connection of its own (a chain verification walks pages on it); created on first use on that
  // worker. Statements run on it directly are not checked against the scope's plane.
  [[nodiscard]] boost::asio::awaitable<Result<Lease>> acquire(Intent intent, const Scope& scope);

  // One autocommit statement for the scope's tenant, by statement_deadline(scope). Runs pipelined
  // on one of the worker's shared connections (many concurrent requests share a round trip);
  // falls back to a pooled connection while none is usable.
  [[nodiscard]] boost::asio::awaitable<Result<Rows>> query(Intent intent, const Scope& scope,
                                                           const Statement& statement,
                                                           const Params& params);

  // acquire(write) + BEGIN; each statement of the transaction by statement_deadline(scope).
  [[nodiscard]] boost::asio::awaitable<Result<Transaction>> begin(
      const Scope& scope, Isolation isolation = Isolation::read_committed,
      Planes planes = Planes::one);

  // When a statement starting now must be done: the scope's deadline, or query_timeout from now
  // when that comes first.
  [[nodiscard]] Deadline statement_deadline(const Scope& scope) const;

  // Closes the worker's pools; call on that worker's thread when it stops.
  void stop_worker(std::size_t worker);

  [[nodiscard]] const DatabaseOptions& options() const { return options_; }

 private:
  class StatementMetrics;
  struct SharedSlot {
    std::shared_ptr<Connection> conn;
    bool connecting = false;
    Clock::time_point retry_at{};
    std::chrono::milliseconds backoff{0};
  };
  std::shared_ptr<Pool>& pool_for(Intent intent, const Tenant& tenant);
  [[nodiscard]] boost::asio::awaitable<Result<Lease>> lease(Intent intent, const Tenant& tenant,
                                                            Deadline deadline);
  // The least busy usable shared connection of this worker, starting a (re)connect where needed.
  std::shared_ptr<Connection> shared_connection(const boost::asio::any_io_executor& executor);
  boost::asio::awaitable<void> connect_shared(SharedSlot& slot,
                                              boost::asio::any_io_executor executor);

  DatabaseOptions options_;
  std::unique_ptr<StatementMetrics> statement_metrics_;
  PoolMetrics pool_metrics_;
  std::vector<std::shared_ptr<Pool>> primary_;   // one per worker, touched only by that worker
  std::vector<std::vector<SharedSlot>> shared_;  // per worker, touched only by that worker
};

}  // namespace liftoff::db
