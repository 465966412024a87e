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

// The size on disk of the database `conn` is connected to: tables, indexes, TOAST.
[[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> database_bytes(Connection& conn,
                                                                          Deadline deadline);

}  // namespace liftoff::db
