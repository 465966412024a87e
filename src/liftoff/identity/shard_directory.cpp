#include "liftoff/identity/shard_directory.hpp"

#include "liftoff/db/value.hpp"

namespace liftoff::identity {
namespace {
constexpr db::Statement kOrgsPerShard{
    db::Plane::control, "orgs.per_shard",
    "SELECT shard, count(*), count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM orgs "
    "GROUP BY shard ORDER BY shard"};
}  // namespace

boost::asio::awaitable<Result<std::vector<ShardOrgs>>> orgs_per_shard(db::Connection& control,
                                                                      db::Deadline deadline) {
  auto rows = co_await control.query(kOrgsPerShard, db::Params::none(), deadline);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, [](const db::Row& row) {
    return ShardOrgs{row.get<std::string>(0), row.get<std::int64_t>(1), row.get<std::int64_t>(2)};
  });
}

}  // namespace liftoff::identity
