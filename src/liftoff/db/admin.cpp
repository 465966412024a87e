#include "liftoff/db/admin.hpp"

#include "liftoff/db/value.hpp"

namespace liftoff::db {
boost::asio::awaitable<Result<std::int64_t>> database_bytes(Connection& conn, Deadline deadline) {
  auto rows = co_await conn.query(kDatabaseBytes, Params::none(), deadline);
  if (!rows) co_return rows.error();
  co_return rows->front().get<std::int64_t>(0);
}

}  // namespace liftoff::db
