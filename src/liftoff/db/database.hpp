#pragma once
// The data tier's front door. Every query states its intent (write, latest, read, read-your-writes)
// and its tenant: writes and transactions go to the primary, reads to a replica in rotation that
// has replayed what the scope must read back (docs/decisions/0010-read-your-writes.md), else to the
// primary. Each of those is a node of the cluster that holds the scope's tenant: the control
// plane's cluster (shard main), or the shard of the scope's org, found in the shard directory
// (docs/decisions/0021-tenant-shards.md), so callers never name a cluster. One pool and one set of
// shared connections per worker thread per node; a caller always gets its own worker's.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "liftoff/db/connection.hpp"
#include "liftoff/db/consistency.hpp"
#include "liftoff/db/outbox.hpp"
#include "liftoff/db/pool.hpp"
#include "liftoff/db/scan_gate.hpp"
#include "liftoff/db/shard_cache.hpp"
#include "liftoff/db/slow_log.hpp"

namespace liftoff::core {
class Registry;
}

namespace liftoff::db {

using Pool = BasicPool<Connection>;
using Lease = Pool::Lease;

enum class Intent {
  write,             // the primary of the tenant's shard
  latest,            // a read that must see every commit, anyone's (credentials, revocations,
                     // reloads after a notification): the primary
  read,              // any replica in rotation (may lag, even behind the caller's own writes)
  read_your_writes,  // a replica that has replayed the scope's Consistency, else the primary
};

enum class Isolation { read_committed, repeatable_read, serializable };

// Which planes a transaction's statements may touch. `one`: the plane of its scope's tenant (and
// Plane::any statements). `both`: a change of the control plane for an organization (its row, its
// members or keys) that also writes the org's tenant plane (the audit event in its chain, a job).
// It runs on the control plane's cluster. When the org's shard is another cluster, it is a
// control-plane transaction there: its tenant-plane rows are post()ed to the shard through the
// outbox instead (Transaction::holds_tenant says which), and a tenant-plane statement is refused.
// Each is listed in docs/architecture.md.
enum class Planes { one, both };

// Whether `statement` may be issued for `tenant`: a tenant-plane statement needs a tenant (one org
// or every org), a control-plane one the control plane (or a transaction over both planes). A
// violation is a bug in the caller: debug builds abort, release builds answer Errc::internal.
[[nodiscard]] Result<void> check_plane(const Statement& statement, const Tenant& tenant,
                                       Planes planes = Planes::one);

class Database;

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
    // Where the commit leaves the log is recorded here, for `shard` (asked in the COMMIT's round
    // trip); null: not asked.
    std::shared_ptr<Consistency> consistency;
    // The database and the shard (its index in Database::shards()) the transaction runs on, for
    // holds_tenant() and post(); null: a database of one cluster.
    Database* database = nullptr;
    std::size_t shard = 0;
    // Each round trip of the transaction is a span under `trace`, on this shard and node.
    trace::Context trace;
    std::string_view shard_name;
    std::string_view node_name;
    // Where the time of its statements is added (its scope's); null: nowhere.
    std::shared_ptr<core::StatementTime> statement_time;
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
  // Runs `action` once the transaction has committed (not when it rolls back, fails or is
  // dropped): side effects outside the database that must follow the commit, such as waking the
  // workers of a job enqueued in it.
  void after_commit(std::function<void()> action) { after_commit_.push_back(std::move(action)); }
  // Whether a statement failed in the transaction (it can only roll back now).
  [[nodiscard]] bool aborted() const;
  // The span the transaction's work is part of (its scope's).
  [[nodiscard]] const trace::Context& trace() const { return options_.trace; }

  // The org this transaction creates is on `shard` (its index in Database::shards()):
  // holds_tenant() and post() follow this, since the directory does not show it before the commit.
  void placing(const Uuid& org, std::size_t shard) { placing_ = {org, shard}; }
  // Whether `org`'s tenant-plane rows can be written in this transaction: its shard is this
  // transaction's cluster. When not, they are post()ed.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> holds_tenant(const Uuid& org);
  // Posts `item` to its org's shard through the outbox (docs/decisions/0021-tenant-shards.md):
  // committed with this transaction, and written on the shard by the relay, once, right after the
  // commit (commit() waits for it; what it cannot do then, the background relay does).
  [[nodiscard]] boost::asio::awaitable<Result<void>> post(const OutboxItem& item);

 private:
  Transaction(Lease lease, const Options& options, const Statement& begin)
      : lease_(std::move(lease)), options_(options), unsent_begin_(&begin) {}
  // Runs `queries` in one round trip, behind the BEGIN when it has not been sent yet.
  [[nodiscard]] boost::asio::awaitable<std::vector<Result<Rows>>> run(
      std::span<const Query> queries);
  [[nodiscard]] Deadline statement_deadline() const;
  // The span of a round trip of `count` statements, the first `statement`.
  [[nodiscard]] trace::ActiveSpan span(const Statement& statement, std::size_t count) const;
  Lease lease_;
  Options options_;
  // Once the COMMIT succeeded: relays what the transaction posted, then runs the after_commit()
  // actions.
  [[nodiscard]] boost::asio::awaitable<void> committed();
  const Statement* unsent_begin_;  // null once sent
  bool open_ = true;
  std::vector<std::function<void()>> after_commit_;
  std::vector<Uuid> posted_;  // the orgs whose items post() sent to the outbox
  std::optional<std::pair<Uuid, std::size_t>> placing_;
  // The shard of `org`: placing_'s, else the directory's.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> shard_of(const Uuid& org);
};

// Streaming replicas of the primary that serve reads (docs/architecture.md, "Replicas").
struct ReplicaOptions {
  std::vector<std::string> conninfos;  // libpq URIs, one per replica
  // A replica further behind the primary than this leaves the rotation; it returns once it is
  // within half of it again.
  std::chrono::milliseconds max_lag{5'000};
  // How often each replica's position and the primary's are read (a replica that fails a probe is
  // probed again after an exponential backoff, up to 5 s).
  std::chrono::milliseconds probe_interval{100};
};

// A tenant shard besides main: a cluster of its own, a primary with its replicas
// (docs/decisions/0021-tenant-shards.md). Connections to it are made as DatabaseOptions::connect
// says, to other servers.
struct ShardOptions {
  std::string name;
  std::string conninfo;  // its primary
  std::vector<std::string> replica_conninfos;
  // Its primary without a pooler, as the login user (no database role): for an operator's admin
  // sessions (Database::connect_admin). Empty: `conninfo`.
  std::string admin_conninfo;
};

struct DatabaseOptions {
  ConnectOptions connect;      // the control plane's cluster, which also holds shard main
  std::string admin_conninfo;  // main's, as ShardOptions::admin_conninfo says
  ReplicaOptions replicas;
  std::vector<ShardOptions> shards;
  // Directory entries each process keeps (ShardCache); used only with shards.
  std::size_t shard_cache_entries = 100'000;
  PoolOptions pool;
  std::chrono::milliseconds query_timeout{5'000};
  // Connections per worker that Database::query() multiplexes single statements over (pipelined,
  // see Connection::submit). 0: every query leases a pooled connection.
  std::size_t shared_connections = 2;
  // The bound on each organization's statements that scan (Statement::scans).
  ScanOptions scans;
  // Which statements are logged as slow, and how often they are EXPLAINed (slow_log.hpp).
  SlowLogOptions slow_statements;
};

// Through a transaction-mode pooler (ConnectOptions::pooled) Liftoff sends no startup options: the
// pooler must give its sessions the role (options.role) and the UTC time zone Liftoff would have
// set (docs/operations.md, "Behind PgBouncer"). Checks both on a connection through it; an error
// names what is wrong and how to set it. Without a pooler there is nothing to check.
[[nodiscard]] boost::asio::awaitable<Result<void>> check_pooled_session(
    const ConnectOptions& options);

// One org's entry in the shard directory.
struct DirectoryEntry {
  std::string shard;  // the name of the shard that holds the org's tenant plane
  // A move's write fence holds (docs/decisions/0021-tenant-shards.md): the org's writes wait.
  bool fenced = false;
};
// Reads the shard directory: `org`'s entry (nullopt: no such org), by a statement on the control
// plane for `control`. The data tier cannot name identity's tables: identity::shard_directory()
// gives one (Database::use_directory).
using ShardDirectory = std::function<boost::asio::awaitable<Result<std::optional<DirectoryEntry>>>(
    const Scope& control, const Uuid& org)>;

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
  // falls back to a pooled connection while none is usable or every one has a statement older
  // than a few milliseconds at its head. A statement that scans, issued for one organization,
  // waits for its organization's turn (ScanGate) and runs on a pooled connection.
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

  // Opens the current worker's connections to every server of every cluster before it serves:
  // its shared connections, and `pooled` of its pool's (at most the pool's size), all at once,
  // each by `deadline`. Otherwise a node's first burst of requests finds none, and each of its
  // statements waits for a connection of its own to be opened (a restarted node behind a balancer
  // answered its first requests late). A server that cannot be reached is left to the pools'
  // backoff. Returns how many of the connections wanted are open.
  struct Warmth {
    std::size_t open = 0;
    std::size_t wanted = 0;
  };
  [[nodiscard]] boost::asio::awaitable<Warmth> warm(std::size_t pooled, Deadline deadline);

  // Closes the worker's pools; call on that worker's thread when it stops.
  void stop_worker(std::size_t worker);

  // EXPLAINs (FORMAT JSON) the slow statements the slow log queued, with their own parameters, on a
  // connection of its own to the node that ran each, and logs the plans, until `stopping`. Run
  // once per process; returns at once when no statement is slow (slow_statements.threshold 0).
  [[nodiscard]] boost::asio::awaitable<void> explain_slow(const std::atomic<bool>& stopping);
  // What the slow log kept of each slow statement this process ran (SlowLog::summaries).
  [[nodiscard]] std::vector<SlowSummary> slow_statements() const;

  // A connection of the caller's own to the primary of the shard at `index` in shards(), by its
  // admin_conninfo (no pooler, no database role), outside every pool and unobserved (neither
  // timed nor logged as slow): for an operator's session work, such as index advice, that needs
  // the login user and must hold no pooled connection.
  [[nodiscard]] boost::asio::awaitable<Result<std::unique_ptr<Connection>>> connect_admin(
      std::size_t index, Deadline deadline);

  // Probes the primary's log position and each replica's health, replay position and lag every
  // probe_interval, moving replicas in and out of the rotation, until `stopping`. Run once per
  // process; returns at once without replicas.
  [[nodiscard]] boost::asio::awaitable<void> watch_replicas(const std::atomic<bool>& stopping);

  // Every shard's name: main first, then DatabaseOptions::shards in order. A sweep runs once per
  // shard, for Tenant::every_org_on(index).
  [[nodiscard]] const std::vector<std::string>& shards() const { return shard_names_; }
  // Where org scopes find their shard; needed once shards are configured (until then, an org
  // scope is answered Errc::internal). Call before serving.
  void use_directory(ShardDirectory directory) { directory_ = std::move(directory); }
  // The index (in shards()) of the shard that holds `org`: cached, else read from the directory
  // for `scope`'s control plane. An org the directory does not know is on main; a shard the
  // configuration does not name is Errc::unavailable. `writing`: while a move's write fence holds
  // the org, waits (re-reading the directory every kFencePoll, until the scope's deadline) for the
  // switch or the fence's end, so that a write goes to the shard that keeps it. Reads never wait.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> shard_of(const Uuid& org,
                                                                     const Scope& scope,
                                                                     bool writing = false);
  // shard_of() that tells an org the directory does not know (nullopt) from one on main.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<std::size_t>>> find_shard(
      const Uuid& org, const Scope& scope, bool writing = false);
  static constexpr std::chrono::milliseconds kFencePoll{20};
  // The directory's cache, which follows the session channel (SessionRevocationListener).
  [[nodiscard]] ShardCache& shard_cache() { return *shard_cache_; }
  // What control-plane transactions post to the orgs' shards (Transaction::post), and its relay.
  [[nodiscard]] Outbox& outbox() { return *outbox_; }

  // Read-your-writes for one request: what its reads must reflect on each cluster, from the
  // client's `token` (the positions it echoes; a shard this process does not name is ignored) and
  // what this node knows `writer` (a hash of its credential; 0: none) last wrote on each. Null
  // when no cluster has replicas (every read then goes to a primary anyway).
  [[nodiscard]] std::shared_ptr<Consistency> consistency_for(std::uint64_t writer,
                                                             const ConsistencyToken& token);
  // After the request: remembers where `writer`'s writes left each cluster's log (RecentWrites).
  void remember_writes(std::uint64_t writer, const Consistency& consistency);
  // The token to answer with: the position of each cluster the request's reads must reflect, by
  // shard name (empty: none).
  [[nodiscard]] ConsistencyToken token_of(const Consistency& consistency) const;
  struct ReplicaState {
    std::string name;  // "replica-1", ...; on another shard "eu-1/replica-1"
    bool in_rotation = false;
    Lsn replayed;
    std::chrono::milliseconds lag{0};  // as last probed
  };
  [[nodiscard]] std::vector<ReplicaState> replicas() const;

  [[nodiscard]] const DatabaseOptions& options() const { return options_; }

 private:
  class StatementMetrics;
  class NodeObserver;
  struct Node;
  struct Cluster;
  struct SharedSlot;
  struct LogSamples;
  [[nodiscard]] Cluster& main_cluster() const { return *clusters_.front(); }
  void register_metrics(Cluster& cluster, core::Registry& metrics);
  // The cluster of the scope's tenant (see shard_of).
  [[nodiscard]] boost::asio::awaitable<Result<Cluster*>> cluster_for(const Scope& scope,
                                                                     bool writing);
  // The node of `cluster` a read of `intent` goes to (and the scope's reads after it): see Intent.
  [[nodiscard]] boost::asio::awaitable<Node*> read_node(Cluster& cluster, Intent intent,
                                                        const Scope& scope);
  [[nodiscard]] boost::asio::awaitable<Node*> node_for(Cluster& cluster, Intent intent,
                                                       const Scope& scope);
  [[nodiscard]] boost::asio::awaitable<Result<Lease>> lease(Node& node, Deadline deadline);
  // Opens `count` connections of the worker's pool to `node` (see warm); how many it had is left in
  // `filled` (which must outlive it).
  [[nodiscard]] boost::asio::awaitable<void> fill_pool(Node& node, std::size_t count,
                                                       Deadline deadline, std::size_t& filled);
  // One statement on `node`: on one of its shared connections when one is usable, else leased.
  // `own_connection`: leased, never on a shared connection.
  // Each run is a span under `trace` (see statement_span).
  [[nodiscard]] boost::asio::awaitable<Result<Rows>> run(Node& node, const Statement& statement,
                                                         const Params& params, Deadline deadline,
                                                         const trace::Context& trace,
                                                         bool own_connection = false);
  // The same for statements that go out together, in order, each in its own segment.
  [[nodiscard]] boost::asio::awaitable<std::vector<Result<Rows>>> run(
      Node& node, std::span<const Query> queries, Deadline deadline, const trace::Context& trace);
  // Where the replica's replay stands now (asked on its shared connection), and remembered.
  [[nodiscard]] boost::asio::awaitable<Result<Lsn>> replayed_now(Node& node, Deadline deadline,
                                                                 const trace::Context& trace);
  // The least busy usable shared connection of this worker to `node`, starting a (re)connect
  // where needed.
  std::shared_ptr<Connection> shared_connection(Node& node,
                                                const boost::asio::any_io_executor& executor);
  boost::asio::awaitable<void> connect_shared(Node& node, SharedSlot& slot,
                                              boost::asio::any_io_executor executor);
  boost::asio::awaitable<void> watch_primary(Node& primary, std::shared_ptr<LogSamples> samples,
                                             const std::atomic<bool>& stopping);
  boost::asio::awaitable<void> watch_replica(Node& node, std::shared_ptr<LogSamples> samples,
                                             const std::atomic<bool>& stopping);
  boost::asio::awaitable<Result<Rows>> probe(std::unique_ptr<Connection>& conn,
                                             const ConnectOptions& options,
                                             const Statement& statement);
  // `statement` on `conn`, a connection of the caller's own to `options`' server (made again when
  // it was lost); a failure, or no row, drops the connection.
  boost::asio::awaitable<Result<Rows>> run_alone(std::unique_ptr<Connection>& conn,
                                                 const ConnectOptions& options,
                                                 const Statement& statement, const Params& params,
                                                 Deadline deadline);
  void leave_rotation(Node& node, std::string_view why);

  DatabaseOptions options_;
  std::unique_ptr<StatementMetrics> statement_metrics_;
  std::unique_ptr<SlowLog> slow_log_;
  ScanGate scan_gate_;
  std::vector<std::unique_ptr<Cluster>> clusters_;  // main, then the other shards
  std::vector<std::string> shard_names_;            // in the same order
  std::unique_ptr<ShardCache> shard_cache_;
  ShardDirectory directory_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<RecentWrites> recent_writes_;  // when a cluster has replicas
};

}  // namespace liftoff::db
