#include "liftoff/identity/shard_directory.hpp"

#include "liftoff/db/value.hpp"

namespace liftoff::identity {
namespace {
constexpr db::Statement kOrgsPerShard{
    db::Plane::control, "orgs.per_shard",
    "SELECT shard, count(*), count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM orgs "
    "GROUP BY shard ORDER BY shard"};
constexpr db::Statement kShardOfOrg{
    db::Plane::control, "orgs.shard",
    "SELECT shard, coalesce(fenced_until > now(), false) FROM orgs WHERE id = $1"};
constexpr db::Statement kFenceOrg{
    db::Plane::control, "orgs.fence",
    "WITH fenced AS (UPDATE orgs SET fenced_until = now() + $3 * interval '1 millisecond' "
    "WHERE id = $1 AND shard = $2 RETURNING id) "
    "SELECT pg_notify('liftoff_sessions', 'org:' || id::text) FROM fenced"};
constexpr db::Statement kUnfenceOrg{
    db::Plane::control, "orgs.unfence",
    "WITH lifted AS (UPDATE orgs SET fenced_until = NULL WHERE id = $1 RETURNING id) "
    "SELECT pg_notify('liftoff_sessions', 'org:' || id::text) FROM lifted"};
constexpr db::Statement kSwitchOrgShard{
    db::Plane::control, "orgs.switch_shard",
    "WITH switched AS (UPDATE orgs SET shard = $3, fenced_until = NULL "
    "WHERE id = $1 AND shard = $2 RETURNING id) "
    "SELECT pg_notify('liftoff_sessions', 'org:' || id::text) FROM switched"};
}  // namespace

boost::asio::awaitable<Result<std::optional<db::DirectoryEntry>>> directory_entry(
    db::Connection& control, const db::Uuid& org, db::Deadline deadline) {
  db::Params params(org);
  auto rows = co_await control.query(kShardOfOrg, params, deadline);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<db::DirectoryEntry>{};
  co_return db::DirectoryEntry{rows->front().get<std::string>(0), rows->front().get<bool>(1)};
}

boost::asio::awaitable<Result<bool>> fence_org(db::Connection& control, const db::Uuid& org,
                                               const std::string& source,
                                               std::chrono::milliseconds limit,
                                               db::Deadline deadline) {
  db::Params params(org, source, static_cast<std::int64_t>(limit.count()));
  auto rows = co_await control.query(kFenceOrg, params, deadline);
  if (!rows) co_return rows.error();
  co_return !rows->empty();
}

boost::asio::awaitable<Result<void>> unfence_org(db::Connection& control, const db::Uuid& org,
                                                 db::Deadline deadline) {
  db::Params params(org);
  auto rows = co_await control.query(kUnfenceOrg, params, deadline);
  if (!rows) co_return rows.error();
  co_return Result<void>{};
}

boost::asio::awaitable<Result<bool>> switch_org_shard(db::Connection& control, const db::Uuid& org,
                                                      const std::string& source,
                                                      const std::string& target,
                                                      db::Deadline deadline) {
  db::Params params(org, source, target);
  auto rows = co_await control.query(kSwitchOrgShard, params, deadline);
  if (!rows) co_return rows.error();
  co_return !rows->empty();
}

db::ShardDirectory shard_directory(db::Database& database) {
  return [&database](const db::Scope& control, const db::Uuid& org)
             -> boost::asio::awaitable<Result<std::optional<db::DirectoryEntry>>> {
    db::Params params(org);
    auto rows = co_await database.query(db::Intent::latest, control, kShardOfOrg, params);
    if (!rows) co_return rows.error();
    if (rows->empty()) co_return std::optional<db::DirectoryEntry>{};
    co_return db::DirectoryEntry{rows->front().get<std::string>(0), rows->front().get<bool>(1)};
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
