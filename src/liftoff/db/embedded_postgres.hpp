#pragma once
// A private PostgreSQL 15 cluster for development, tests and the zero-configuration default:
// initialized on first use in `data_dir` (kept across runs), listening on 127.0.0.1 and on a Unix
// socket in data_dir/run (when its path fits in a socket address), with a generated password
// (stored in data_dir, mode 0600) and scram-sha-256 authentication. When run as root, the server
// runs as the `postgres` system user (PostgreSQL refuses root). Blocking: use at startup or in test
// fixtures, never on an event loop.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"

namespace liftoff::db {

struct EmbeddedPostgresOptions {
  std::filesystem::path data_dir;  // the cluster lives in data_dir/pgdata
  std::uint16_t port = 54320;
  std::string database = "liftoff";
  std::filesystem::path bin_dir = "/usr/lib/postgresql/15/bin";
  // postgresql.conf lines at init, after the defaults (memory_settings() for this machine), so they
  // override them: e.g. "fsync = off".
  std::vector<std::string> settings;
  // Streaming replicas started beside the primary: replica i (1..replicas) lives in
  // data_dir/replica-<i>, listens on port + i, and streams from the primary through its own
  // physical replication slot (liftoff_replica_<i>), so the primary keeps the WAL it has not had.
  unsigned replicas = 0;
};

class EmbeddedPostgres {
 public:
  explicit EmbeddedPostgres(EmbeddedPostgresOptions options);

  // initdb when needed, start when not running, create the database; then each replica: a base
  // backup of the primary when it has none yet (pg_basebackup), started when not running.
  // Idempotent.
  [[nodiscard]] Result<void> start();
  // Fast shutdown of the replicas, then the primary; idempotent.
  [[nodiscard]] Result<void> stop();
  // The replicas (options().replicas of them), each an EmbeddedPostgres of its own.
  [[nodiscard]] std::vector<EmbeddedPostgres> replicas() const;
  [[nodiscard]] bool running() const;
  // libpq URI of the database (contains the password): over the Unix socket while it exists, else
  // over 127.0.0.1.
  [[nodiscard]] std::string url() const;
  [[nodiscard]] std::string url_for(const std::string& database) const;
  // libpq URI of `database` over TCP to 127.0.0.1:`port`: this server's own port, or one that
  // forwards to it (a connection pooler, or a test's fault-injecting proxy).
  [[nodiscard]] std::string tcp_url(unsigned short port, const std::string& database) const;
  [[nodiscard]] const EmbeddedPostgresOptions& options() const { return options_; }

 private:
  [[nodiscard]] Result<void> init();
  // A replica's first start: its password file, then pg_basebackup of the primary through `slot`
  // (which the primary has).
  [[nodiscard]] Result<void> clone_from(const EmbeddedPostgres& primary, const std::string& slot);
  [[nodiscard]] Result<void> start_server();
  // Points this replica's primary_conninfo and slot at `primary` as it is configured now (its
  // port may have changed since the copy), before it starts.
  [[nodiscard]] Result<void> follow(const EmbeddedPostgres& primary, const std::string& slot);
  [[nodiscard]] std::filesystem::path cluster_dir() const { return options_.data_dir / "pgdata"; }
  [[nodiscard]] std::filesystem::path password_file() const {
    return options_.data_dir / "pg.password";
  }
  [[nodiscard]] std::string password() const;
  [[nodiscard]] std::filesystem::path socket_dir() const;
  [[nodiscard]] std::filesystem::path socket_path() const;  // <socket_dir>/.s.PGSQL.<port>
  [[nodiscard]] bool socket_fits() const;

  EmbeddedPostgresOptions options_;
};

// PostgreSQL's memory for a machine with `ram_bytes` of memory: shared_buffers a quarter of it (the
// PostgreSQL documentation's starting point), between 128 MB and 8 GB, and effective_cache_size
// (the planner's estimate of what the OS caches) half of it. As postgresql.conf lines.
[[nodiscard]] std::vector<std::string> memory_settings(std::uint64_t ram_bytes);

// Runs a program (no shell) and waits; as `postgres` when we are root. Returns its exit status.
int run_program(const std::vector<std::string>& argv, bool drop_root);

}  // namespace liftoff::db
