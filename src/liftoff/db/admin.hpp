#pragma once
// What operators' commands read of a cluster besides its schema (db/migrations.hpp).
#include <boost/asio/awaitable.hpp>
#include <cstdint>

#include "liftoff/core/error.hpp"
#include "liftoff/db/connection.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::db {

// The size on disk of the current database: tables, indexes, TOAST.
inline constexpr Statement kDatabaseBytes{Plane::any, "admin.database_bytes",
                                          "SELECT pg_database_size(current_database())"};

// What the database `conn` is connected to has done since its statistics were last reset
// (pg_stat_database): transactions committed and rolled back, and the time its sessions spent
// executing statements (CPU and waits), in milliseconds.
struct DatabaseActivity {
  std::int64_t transactions = 0;
  double active_ms = 0;
};
[[nodiscard]] boost::asio::awaitable<Result<DatabaseActivity>> database_activity(Connection& conn,
                                                                                 Deadline deadline);

// The size on disk of the database `conn` is connected to: tables, indexes, TOAST.
[[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> database_bytes(Connection& conn,
                                                                          Deadline deadline);

}  // namespace liftoff::db
