#include "liftoff/db/admin.hpp"

#include "liftoff/db/value.hpp"

namespace liftoff::db {
namespace {
constexpr Statement kDatabaseActivity{
    Plane::any, "admin.database_activity",
    "SELECT xact_commit + xact_rollback, COALESCE(active_time, 0) FROM pg_stat_database "
    "WHERE datname = current_database()"};
}  // namespace

boost::asio::awaitable<Result<DatabaseActivity>> database_activity(Connection& conn,
                                                                   Deadline deadline) {
  auto rows = co_await conn.query(kDatabaseActivity, Params::none(), deadline);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return DatabaseActivity{};
  co_return DatabaseActivity{rows->front().get<std::int64_t>(0), rows->front().get<double>(1)};
}

boost::asio::awaitable<Result<std::int64_t>> database_bytes(Connection& conn, Deadline deadline) {
  auto rows = co_await conn.query(kDatabaseBytes, Params::none(), deadline);
  if (!rows) co_return rows.error();
  co_return rows->front().get<std::int64_t>(0);
}

}  // namespace liftoff::db
