#pragma once
// Versioned SQL migrations embedded in the binary (migrations/control/NNNN_name.sql). `migrate_up`
// applies the pending ones in one transaction under an advisory lock, so two processes migrating at
// once serialize and the second finds nothing to do. A database whose schema is newer than this
// binary knows, or whose applied migration differs from the embedded text, is refused.
#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "liftoff/db/connection.hpp"

namespace liftoff::db {

class Database;

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// The migrations compiled into this binary, ascending by version (generated at build time).
const std::vector<Migration>& embedded_migrations();

struct MigrationState {
  int version;
  std::string name;
  bool applied;
  std::string applied_at;  // ISO 8601, empty when pending
};

struct SchemaStatus {
  std::vector<MigrationState> migrations;
  int applied_version = 0;  // highest applied
  int known_version = 0;    // highest this binary knows
  [[nodiscard]] bool current() const { return applied_version == known_version; }
  [[nodiscard]] std::size_t pending() const;
};

[[nodiscard]] std::uint64_t migration_checksum(std::string_view sql);

// Applies pending migrations; returns the versions applied (empty when already current).
[[nodiscard]] boost::asio::awaitable<Result<std::vector<int>>> migrate_up(
    Connection& conn, const std::vector<Migration>& migrations, Deadline deadline);

// Reads the applied migrations. Errc::conflict when the database is newer than `migrations` or an
// applied migration's checksum differs.
[[nodiscard]] boost::asio::awaitable<Result<SchemaStatus>> schema_status(
    Connection& conn, const std::vector<Migration>& migrations, Deadline deadline);

// The highest applied migration's version (0 for none), in one statement through `database`: what
// the readiness probe compares with the binary's.
[[nodiscard]] boost::asio::awaitable<Result<int>> applied_version(Database& database,
                                                                  const Scope& scope);

}  // namespace liftoff::db
