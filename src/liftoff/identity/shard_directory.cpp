#include "liftoff/identity/shard_directory.hpp"

#include "liftoff/db/value.hpp"

namespace liftoff::identity {
namespace {
constexpr db::Statement kOrgsPerShard{
    db::Plane::control, "orgs.per_shard",
    "SELECT shard, count(*), count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM orgs "
    "GROUP BY shard ORDER BY shard"};
constexpr db::Statement kShardOfOrg{db::Plane::control, "orgs.shard",
                                    "SELECT shard FROM orgs WHERE id = $1"};
}  // namespace

db::ShardDirectory shard_directory(db::Database& database) {
  return [&database](
             const db::Scope& control,
             const db::Uuid& org) -> boost::asio::awaitable<Result<std::optional<std::string>>> {
    db::Params params(org);
    auto rows = co_await database.query(db::Intent::latest, control, kShardOfOrg, params);
    if (!rows) co_return rows.error();
    if (rows->empty()) co_return std::optional<std::string>{};
    co_return rows->front().get<std::string>(0);
  };
}

boost::asio::awaitable<Result<std::vector<ShardOrgs>>> orgs_per_shard(db::Connection& control,
                                                                      db::Deadline deadline) {
  auto rows = co_await control.query(kOrgsPerShard, db::Params::none(), deadline);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, [](const db::Row& row) {
    return ShardOrgs{row.get<std::string>(0), row.get<std::int64_t>(1), row.get<std::int64_t>(2)};
  });
}

}  // namespace liftoff::identity
