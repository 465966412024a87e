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

// The tenant a query acts for; `control()` for data that belongs to no tenant (users, directory).
struct Tenant {
  std::int64_t org_id = 0;
  [[nodiscard]] static constexpr Tenant control() { return Tenant{0}; }
};

enum class Isolation { read_committed, repeatable_read, serializable };

// A transaction owns its lease: the connection cannot be used outside it. commit() or rollback()
// ends it; a Transaction destroyed while open returns its connection to the pool, which rolls it
// back before reuse, so every path ends the transaction. BEGIN goes out with the first statement,
// in the same round trip (a transaction that runs nothing never reaches the server).
class Transaction {
 public:
  [[nodiscard]] static boost::asio::awaitable<Result<Transaction>> begin(
      Lease lease, Deadline deadline, Isolation isolation = Isolation::read_committed);
  Transaction(Transaction&&) noexcept = default;
  Transaction& operator=(Transaction&&) noexcept = default;

  [[nodiscard]] boost::asio::awaitable<Result<Rows>> query(const Statement& statement,
                                                           const Params& params, Deadline deadline);
  [[nodiscard]] boost::asio::awaitable<std::vector<Result<Rows>>> pipeline(
      std::span<const Query> queries, Deadline deadline);
  [[nodiscard]] boost::asio::awaitable<Result<void>> commit(Deadline deadline);
  // Runs a last statement and COMMIT in one round trip. When the statement fails, the COMMIT rolls
  // back and its error is returned.
  [[nodiscard]] boost::asio::awaitable<Result<Rows>> commit_after(const Statement& statement,
                                                                  const Params& params,
                                                                  Deadline deadline);
  [[nodiscard]] boost::asio::awaitable<Result<void>> rollback(Deadline deadline);
  [[nodiscard]] bool open() const { return open_; }
  // Whether a statement failed in the transaction (it can only roll back now).
  [[nodiscard]] bool aborted() const;

 private:
  Transaction(Lease lease, const Statement& begin)
      : lease_(std::move(lease)), unsent_begin_(&begin) {}
  // Runs `queries` in one round trip, behind the BEGIN when it has not been sent yet.
  [[nodiscard]] boost::asio::awaitable<std::vector<Result<Rows>>> run(
      std::span<const Query> queries, Deadline deadline);
  Lease lease_;
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

  // The current worker's pool for (intent, tenant); created on first use on that worker.
  [[nodiscard]] boost::asio::awaitable<Result<Lease>> acquire(Intent intent, Tenant tenant,
                                                              Deadline deadline);

  // One autocommit statement. Runs pipelined on one of the worker's shared connections (many
  // concurrent requests share a round trip); falls back to a pooled connection while none is
  // usable.
  [[nodiscard]] boost::asio::awaitable<Result<Rows>> query(Intent intent, Tenant tenant,
                                                           const Statement& statement,
                                                           const Params& params, Deadline deadline);

  // acquire(write) + BEGIN.
  [[nodiscard]] boost::asio::awaitable<Result<Transaction>> begin(
      Tenant tenant, Deadline deadline, Isolation isolation = Isolation::read_committed);

  // Closes the worker's pools; call on that worker's thread when it stops.
  void stop_worker(std::size_t worker);

  [[nodiscard]] Deadline default_deadline() const { return deadline_after(options_.query_timeout); }
  [[nodiscard]] const DatabaseOptions& options() const { return options_; }

 private:
  class StatementMetrics;
  struct SharedSlot {
    std::shared_ptr<Connection> conn;
    bool connecting = false;
    Clock::time_point retry_at{};
    std::chrono::milliseconds backoff{0};
  };
  std::shared_ptr<Pool>& pool_for(Intent intent, Tenant tenant);
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
