#include "liftoff/db/migrations.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "liftoff/db/database.hpp"

namespace liftoff::db {
namespace asio = boost::asio;

namespace {
// Arbitrary but fixed: the advisory lock key every Liftoff process uses for migrations.
constexpr std::int64_t kMigrationLockKey = 0x4C4946544F4646;  // "LIFTOFF"

constexpr std::string_view kCreateTable = R"sql(
CREATE TABLE IF NOT EXISTS liftoff_schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  checksum   bigint NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
))sql";

inline constexpr Statement kTableExists{
    Plane::any, "migrations.table_exists",
    "SELECT to_regclass('liftoff_schema_migrations') IS NOT NULL"};
inline constexpr Statement kApplied{
    Plane::any, "migrations.applied",
    "SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM liftoff_schema_migrations ORDER BY version"};
inline constexpr Statement kRecord{
    Plane::any, "migrations.record",
    "INSERT INTO liftoff_schema_migrations (version, name, checksum) "
    "VALUES ($1, $2, $3)"};
inline constexpr Statement kLock{Plane::any, "migrations.lock", "SELECT pg_advisory_xact_lock($1)"};

struct Applied {
  std::string name;
  std::int64_t checksum;
  std::string applied_at;
};

asio::awaitable<Result<std::map<int, Applied>>> read_applied(Connection& conn, Deadline deadline) {
  std::map<int, Applied> applied;
  auto exists = co_await conn.query(kTableExists, Params::none(), deadline);
  if (!exists) co_return exists.error();
  if (!exists->front().get<bool>(0)) co_return applied;
  auto rows = co_await conn.query(kApplied, Params::none(), deadline);
  if (!rows) co_return rows.error();
  for (int i = 0; i < rows->size(); ++i) {
    auto row = (*rows)[i];
    applied[row.get<std::int32_t>(0)] = {row.get<std::string>(1), row.get<std::int64_t>(2),
                                         row.get<std::string>(3)};
  }
  co_return applied;
}

Result<void> check_compatible(const std::map<int, Applied>& applied,
                              const std::vector<Migration>& migrations) {
  int known = migrations.empty() ? 0 : migrations.back().version;
  for (const auto& [applied_version, a] : applied) {
    int version = applied_version;  // captured below: clang 14 cannot capture a structured binding
    if (version > known) {
      return make_error(Errc::conflict, "the database schema is at version " +
                                            std::to_string(applied.rbegin()->first) +
                                            ", newer than this binary knows (" +
                                            std::to_string(known) + "); upgrade Liftoff");
    }
    auto it = std::find_if(migrations.begin(), migrations.end(),
                           [&](const Migration& m) { return m.version == version; });
    if (it != migrations.end() &&
        static_cast<std::int64_t>(migration_checksum(it->sql)) != a.checksum) {
      return make_error(Errc::conflict, "applied migration " + std::to_string(version) + " (" +
                                            a.name + ") differs from the one in this binary");
    }
  }
  return {};
}
constexpr Statement kAppliedVersion{
    Plane::any, "system.schema_version",  // the name metrics and dashboards know it by
    "SELECT coalesce(max(version), 0) FROM liftoff_schema_migrations"};
}  // namespace

std::size_t SchemaStatus::pending() const {
  return static_cast<std::size_t>(std::count_if(
      migrations.begin(), migrations.end(), [](const MigrationState& m) { return !m.applied; }));
}

std::uint64_t migration_checksum(std::string_view sql) {
  // FNV-1a, 63 bits so it fits a bigint.
  std::uint64_t h = 1469598103934665603ull;
  for (char c : sql) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h & 0x7FFFFFFFFFFFFFFFull;
}

asio::awaitable<Result<std::vector<int>>> migrate_up(Connection& conn,
                                                     const std::vector<Migration>& migrations,
                                                     Deadline deadline) {
  // One transaction: BEGIN, lock, create the bookkeeping table, apply, COMMIT. Any error rolls back
  // all.
  auto begun = co_await conn.execute_script("BEGIN", deadline);
  if (!begun) co_return begun.error();
  auto rollback = [&]() -> asio::awaitable<void> {
    (void)co_await conn.execute_script("ROLLBACK", deadline);
  };

  Params lock_key(kMigrationLockKey);
  auto locked = co_await conn.query(kLock, lock_key, deadline);
  Result<void> step = locked ? Result<void>{} : Result<void>(locked.error());
  if (step)
    step = co_await conn.execute_script(kCreateTable, deadline);  // no co_await in ?: (GCC 12)
  if (!step) {
    co_await rollback();
    co_return step.error();
  }
  auto applied = co_await read_applied(conn, deadline);
  if (!applied) {
    co_await rollback();
    co_return applied.error();
  }
  if (auto ok = check_compatible(*applied, migrations); !ok) {
    co_await rollback();
    co_return ok.error();
  }
  std::vector<int> done;
  for (const auto& m : migrations) {
    if (applied->contains(m.version)) continue;
    auto ran = co_await conn.execute_script(m.sql, deadline);
    if (ran) {
      Params record(std::int32_t{m.version}, m.name,
                    static_cast<std::int64_t>(migration_checksum(m.sql)));
      auto recorded = co_await conn.query(kRecord, record, deadline);
      if (!recorded) ran = recorded.error();
    }
    if (!ran) {
      co_await rollback();
      auto error = ran.error();
      error.detail = "migration " + std::to_string(m.version) + " (" + std::string(m.name) +
                     ") failed: " + error.for_log();
      co_return error;
    }
    done.push_back(m.version);
  }
  auto committed = co_await conn.execute_script("COMMIT", deadline);
  if (!committed) co_return committed.error();
  for (int v : done) spdlog::info("applied migration {}", v);
  co_return done;
}

asio::awaitable<Result<SchemaStatus>> schema_status(Connection& conn,
                                                    const std::vector<Migration>& migrations,
                                                    Deadline deadline) {
  auto applied = co_await read_applied(conn, deadline);
  if (!applied) co_return applied.error();
  if (auto ok = check_compatible(*applied, migrations); !ok) co_return ok.error();
  SchemaStatus status;
  status.known_version = migrations.empty() ? 0 : migrations.back().version;
  status.applied_version = applied->empty() ? 0 : applied->rbegin()->first;
  for (const auto& m : migrations) {
    auto it = applied->find(m.version);
    status.migrations.push_back({m.version, std::string(m.name), it != applied->end(),
                                 it != applied->end() ? it->second.applied_at : ""});
  }
  co_return status;
}

asio::awaitable<Result<int>> applied_version(Database& database, const Scope& scope) {
  auto rows = co_await database.query(Intent::write, scope, kAppliedVersion, Params::none());
  if (!rows) co_return rows.error();
  co_return rows->front().get<std::int32_t>(0);
}

}  // namespace liftoff::db
