#include "liftoff/identity/org_store.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "liftoff/db/database.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
using db::Intent;
using db::Params;
using db::Statement;

namespace {
constexpr Statement kInsertOrg{
    db::Plane::control, "orgs.insert",
    "INSERT INTO orgs (id, name, shard) VALUES ($1, $2, $3) RETURNING created_at, updated_at"};
constexpr Statement kInsertMembership{
    db::Plane::control, "orgs.insert_membership",
    "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3) RETURNING created_at"};
constexpr Statement kListOrgs{
    db::Plane::control, "orgs.list",
    "SELECT o.id, o.name, o.created_at, o.updated_at, m.role FROM memberships m "
    "JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 AND o.deleted_at IS NULL "
    "ORDER BY o.name, o.id LIMIT 1000"};
constexpr Statement kGetOrg{db::Plane::control, "orgs.get",
                            "SELECT id, name, created_at, updated_at FROM orgs "
                            "WHERE id = $1 AND deleted_at IS NULL"};
// The org row, locked, with the caller's role there: a key's own role, or the user's membership.
constexpr Statement kLockOrg{
    db::Plane::control, "orgs.lock",
    "SELECT o.id, o.name, o.created_at, o.updated_at, o.deleted_at, o.purge_after, "
    "o.purge_after > now(), CASE WHEN $3 THEN (SELECT k.role FROM api_keys k WHERE k.id = $2 "
    "AND k.org_id = o.id AND k.revoked_at IS NULL) ELSE (SELECT m.role FROM memberships m "
    "WHERE m.org_id = o.id AND m.user_id = $2) END, o.plan, o.plan_limits::text "
    "FROM orgs o WHERE o.id = $1 FOR UPDATE OF o"};
constexpr Statement kSeats{
    db::Plane::control, "orgs.seats",
    "SELECT (SELECT count(*) FROM memberships WHERE org_id = $1), "
    "(SELECT count(*) FROM invitations WHERE org_id = $1 AND accepted_at IS NULL "
    "AND revoked_at IS NULL AND expires_at > now())"};
constexpr Statement kSetPlan{
    db::Plane::control, "orgs.set_plan",
    "UPDATE orgs SET plan = $2, plan_limits = $3::jsonb, updated_at = now() WHERE id = $1 "
    "RETURNING updated_at"};
// The previous state comes from the locked row as it was (a CTE sees the snapshot before the
// update).
constexpr Statement kSetSuspended{
    db::Plane::control, "orgs.set_suspended",
    "WITH old AS (SELECT id, suspended_at IS NOT NULL AS was FROM orgs "
    "WHERE id = $1 AND deleted_at IS NULL FOR UPDATE) "
    "UPDATE orgs o SET suspended_at = CASE WHEN $2 THEN COALESCE(o.suspended_at, now()) END, "
    "suspended_reason = CASE WHEN $2 THEN $3 END, updated_at = now() FROM old "
    "WHERE o.id = old.id RETURNING old.was"};
constexpr Statement kPlanOf{db::Plane::control, "orgs.plan_of",
                            "SELECT o.plan, o.plan_limits::text, "
                            "(SELECT count(*) FROM memberships m WHERE m.org_id = o.id) "
                            "FROM orgs o WHERE o.id = $1 AND o.deleted_at IS NULL"};
constexpr Statement kRename{db::Plane::control, "orgs.rename",
                            "UPDATE orgs SET name = $2, updated_at = now() WHERE id = $1 "
                            "RETURNING updated_at"};
constexpr Statement kSoftDelete{
    db::Plane::control, "orgs.soft_delete",
    "UPDATE orgs SET deleted_at = now(), purge_after = now() + make_interval(secs => $2), "
    "updated_at = now() WHERE id = $1 RETURNING updated_at, deleted_at, purge_after"};
constexpr Statement kRestore{db::Plane::control, "orgs.restore",
                             "UPDATE orgs SET deleted_at = NULL, purge_after = NULL, "
                             "updated_at = now() WHERE id = $1 RETURNING updated_at"};
// The old list comes from the row as it was (the org's row is locked by the caller).
constexpr Statement kSetCorsOrigins{
    db::Plane::control, "orgs.set_cors_origins",
    "UPDATE orgs o SET cors_origins = $2, updated_at = now() FROM orgs old "
    "WHERE o.id = $1 AND old.id = $1 RETURNING old.cors_origins"};
constexpr Statement kCorsOrigins{
    db::Plane::control, "orgs.cors_origins",
    "SELECT cors_origins FROM orgs WHERE id = $1 AND deleted_at IS NULL"};
constexpr Statement kAllCorsOrigins{
    db::Plane::control, "orgs.all_cors_origins",
    "SELECT id, cors_origins FROM orgs WHERE cors_origins <> '[]' AND deleted_at IS NULL"};
// One org whose grace period is over, locked (another process purging skips it).
constexpr Statement kNextExpired{
    db::Plane::control, "orgs.next_expired",
    "SELECT id, name FROM orgs WHERE purge_after < now() ORDER BY purge_after LIMIT 1 "
    "FOR UPDATE SKIP LOCKED"};
constexpr Statement kPurge{db::Plane::control, "orgs.purge", "DELETE FROM orgs WHERE id = $1"};
// Deleting an org deletes its control-plane rows (memberships, invitations, keys) by cascade; its
// tenant-plane data went before (OrgOptions::purge_tenant), but an org with many members may
// still take long.
constexpr Statement kSetPurgeTimeout{db::Plane::any, "orgs.purge_timeout",
                                     "SET LOCAL statement_timeout = '10min'"};
constexpr Statement kNotify{db::Plane::any, "orgs.notify",
                            "SELECT pg_notify('liftoff_sessions', $1)"};
constexpr Statement kNotifyMembers{
    db::Plane::control, "orgs.notify_members",
    "SELECT user_id, pg_notify('liftoff_sessions', 'user:' || user_id::text) FROM memberships "
    "WHERE org_id = $1"};

constexpr Statement kMembers{
    db::Plane::control, "orgs.members",
    "SELECT u.id, u.email, u.name, u.created_at, m.role, m.created_at, "
    "u.email_verified_at IS NOT NULL FROM memberships m "
    "JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id > $2 "
    "ORDER BY m.user_id LIMIT $3"};
constexpr Statement kLockMember{
    db::Plane::control, "orgs.lock_member",
    "SELECT u.id, u.email, u.name, u.created_at, m.role, m.created_at, "
    "u.email_verified_at IS NOT NULL FROM memberships m "
    "JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2 FOR UPDATE OF m"};
constexpr Statement kOwnerCount{
    db::Plane::control, "orgs.owner_count",
    "SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'owner'"};
constexpr Statement kMembersAmong{
    db::Plane::control, "orgs.members_among",
    "SELECT user_id FROM memberships WHERE org_id = $1 "
    "AND (user_id = ANY(string_to_array($2, ',')::uuid[]) OR role = ANY(string_to_array($3, ','))) "
    "ORDER BY user_id LIMIT $4"};
constexpr Statement kSetRole{
    db::Plane::control, "orgs.set_role",
    "UPDATE memberships SET role = $3, updated_at = now() WHERE org_id = $1 AND user_id = $2"};
constexpr Statement kDeleteMember{db::Plane::control, "orgs.delete_member",
                                  "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2"};

constexpr Statement kMemberByEmail{db::Plane::control, "invitations.member_by_email",
                                   "SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id "
                                   "WHERE m.org_id = $1 AND u.email = $2"};
// An expired invitation no longer blocks a new one to the same address.
constexpr Statement kCloseExpiredInvitations{
    db::Plane::control, "invitations.close_expired",
    "UPDATE invitations SET revoked_at = now() WHERE org_id = $1 AND email = $2 "
    "AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at <= now()"};
constexpr Statement kInsertInvitation{
    db::Plane::control, "invitations.insert",
    "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, expires_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at"};
constexpr Statement kPendingInvitations{
    db::Plane::control, "invitations.pending",
    "SELECT id, org_id, email, role, invited_by, created_at, expires_at FROM invitations "
    "WHERE org_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL "
    "ORDER BY created_at DESC LIMIT 1000"};
constexpr Statement kRevokeInvitation{
    db::Plane::control, "invitations.revoke",
    "UPDATE invitations SET revoked_at = now() WHERE id = $1 AND org_id = $2 "
    "AND accepted_at IS NULL AND revoked_at IS NULL RETURNING email, role"};
constexpr Statement kInvitationOrg{
    db::Plane::control, "invitations.org",
    "SELECT org_id FROM invitations WHERE token_hash = $1 OR email_token_hash = $1"};
constexpr Statement kInvitationForMail{
    db::Plane::control, "invitations.for_mail",
    "UPDATE invitations i SET email_token_hash = $3 FROM orgs o "
    "WHERE i.id = $2 AND i.org_id = $1 AND o.id = i.org_id AND o.deleted_at IS NULL "
    "AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now() "
    "RETURNING i.email, i.role, i.expires_at, o.name, "
    "(SELECT name FROM users WHERE id = i.invited_by)"};
constexpr Statement kLockInvitation{
    db::Plane::control, "invitations.lock",
    "SELECT id, email, role, expires_at <= now(), accepted_at IS NOT NULL, revoked_at IS NOT NULL "
    "FROM invitations WHERE token_hash = $1 OR email_token_hash = $1 FOR UPDATE"};
constexpr Statement kAcceptInvitation{
    db::Plane::control, "invitations.accept",
    "UPDATE invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1"};

constexpr Statement kInsertApiKey{
    db::Plane::control, "api_keys.insert",
    "INSERT INTO api_keys (id, org_id, name, role, key_hash, created_by) "
    "VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at"};
constexpr Statement kApiKeys{
    db::Plane::control, "api_keys.list",
    "SELECT id, name, role, created_by, created_at, last_used_at FROM api_keys "
    "WHERE org_id = $1 AND revoked_at IS NULL ORDER BY created_at, id LIMIT 1000"};
constexpr Statement kRevokeApiKey{
    db::Plane::control, "api_keys.revoke",
    "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL "
    "RETURNING name, role"};

// An org from the columns id, name, created_at, updated_at (0-3), which every org query starts
// with.
Org org_from(const db::Row& row, Role role) {
  return {row.get<db::Uuid>(0),
          row.get<std::string>(1),
          row.get<db::Timestamp>(2),
          row.get<db::Timestamp>(3),
          std::nullopt,
          std::nullopt,
          role};
}

Member member_from(const db::Row& row) {
  return {User{row.get<db::Uuid>(0), row.get<std::string>(1), row.get<std::string>(2),
               row.get<db::Timestamp>(3), row.get<bool>(6)},
          role_from(row, 4), row.get<db::Timestamp>(5)};
}

Invitation invitation_from(const db::Row& row) {
  return {
      row.get<db::Uuid>(0), row.get<db::Uuid>(1),      row.get<std::string>(2),   role_from(row, 3),
      row.get<db::Uuid>(4), row.get<db::Timestamp>(5), row.get<db::Timestamp>(6), {}};
}

std::optional<std::pair<std::string, Role>> name_and_role(const db::Rows& rows) {
  if (rows.empty()) return std::nullopt;
  return std::pair{rows.front().get<std::string>(0), role_from(rows.front(), 1)};
}
}  // namespace

asio::awaitable<Result<void>> OrgStore::insert_org(db::Transaction& tx, Org& org,
                                                   const std::string& shard) {
  Params params(org.id, org.name, shard);
  auto rows = co_await tx.query(kInsertOrg, params);
  if (!rows) co_return rows.error();
  org.created_at = rows->front().get<db::Timestamp>(0);
  org.updated_at = rows->front().get<db::Timestamp>(1);
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<Org>>> OrgStore::orgs_of(const db::Scope& scope,
                                                            const db::Uuid& user_id) {
  Params params(user_id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kListOrgs, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows,
                           [](const db::Row& row) { return org_from(row, role_from(row, 4)); });
}

asio::awaitable<Result<std::optional<Org>>> OrgStore::org(const db::Scope& scope,
                                                          const db::Uuid& org_id) {
  Params params(org_id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kGetOrg, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<Org>{};
  co_return org_from(rows->front(), Role::viewer);
}

namespace {
std::vector<std::string> origins_from(const db::Json& array) {
  std::vector<std::string> out;
  auto parsed = boost::json::parse(array.text);
  for (const auto& item : parsed.as_array()) out.emplace_back(item.as_string());
  return out;
}
}  // namespace

asio::awaitable<Result<std::vector<std::string>>> OrgStore::set_cors_origins(
    db::Transaction& tx, const db::Uuid& org_id, const std::vector<std::string>& origins) {
  boost::json::array array(origins.begin(), origins.end());
  Params params(org_id, db::Json{boost::json::serialize(array)});
  auto rows = co_await tx.query(kSetCorsOrigins, params);
  if (!rows) co_return rows.error();
  co_return origins_from(rows->front().get<db::Json>(0));
}

asio::awaitable<Result<std::optional<std::vector<std::string>>>> OrgStore::cors_origins(
    const db::Scope& scope, const db::Uuid& org_id) {
  Params params(org_id);
  auto rows = co_await db_.query(Intent::latest, scope, kCorsOrigins, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<std::vector<std::string>>{};
  co_return origins_from(rows->front().get<db::Json>(0));
}

asio::awaitable<Result<OrgStore::OriginsByOrg>> OrgStore::all_cors_origins(const db::Scope& scope) {
  auto rows = co_await db_.query(Intent::latest, scope, kAllCorsOrigins, Params::none());
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, [](const db::Row& row) {
    return std::pair{row.get<db::Uuid>(0), origins_from(row.get<db::Json>(1))};
  });
}

asio::awaitable<Result<std::optional<OrgStore::LockedOrg>>> OrgStore::lock_org(
    db::Transaction& tx, const db::Uuid& org_id, const db::Uuid& actor_id, bool actor_is_key) {
  Params params(org_id, actor_id, actor_is_key);
  auto rows = co_await tx.query(kLockOrg, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<LockedOrg>{};
  auto row = rows->front();
  LockedOrg locked{org_from(row, Role::viewer), row.get<std::optional<bool>>(6).value_or(false),
                   std::nullopt};
  locked.org.deleted_at = row.get<std::optional<db::Timestamp>>(4);
  locked.org.purge_after = row.get<std::optional<db::Timestamp>>(5);
  if (!row.is_null(7)) locked.actor_role = role_from(row, 7);
  locked.plan = plans::find_plan(row.get<std::string>(8));
  if (!locked.plan) throw db::DecodeError("an org on an unknown plan");
  locked.plan_limits = row.get<std::string>(9);
  co_return locked;
}

asio::awaitable<Result<OrgStore::Seats>> OrgStore::seats(db::Transaction& tx,
                                                         const db::Uuid& org_id) {
  Params params(org_id);
  auto rows = co_await tx.query(kSeats, params);
  if (!rows) co_return rows.error();
  co_return Seats{rows->front().get<std::int64_t>(0), rows->front().get<std::int64_t>(1)};
}

asio::awaitable<Result<db::Timestamp>> OrgStore::set_plan(db::Transaction& tx,
                                                          const db::Uuid& org_id,
                                                          std::string_view plan,
                                                          const std::string& overrides) {
  Params params(org_id, std::string(plan), overrides);
  auto rows = co_await tx.query(kSetPlan, params);
  if (!rows) co_return rows.error();
  co_return rows->front().get<db::Timestamp>(0);
}

asio::awaitable<Result<std::optional<bool>>> OrgStore::set_suspended(db::Transaction& tx,
                                                                     const db::Uuid& org_id,
                                                                     bool suspended,
                                                                     const std::string& reason) {
  Params params(org_id, suspended, reason);
  auto rows = co_await tx.query(kSetSuspended, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<bool>{};
  co_return rows->front().get<bool>(0);
}

asio::awaitable<Result<std::optional<OrgStore::PlanOf>>> OrgStore::plan_of(const db::Scope& scope,
                                                                           const db::Uuid& org_id) {
  Params params(org_id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kPlanOf, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<PlanOf>{};
  const auto& row = rows->front();
  const auto* plan = plans::find_plan(row.get<std::string>(0));
  if (!plan) throw db::DecodeError("an org on an unknown plan");
  co_return PlanOf{plan, row.get<std::string>(1), row.get<std::int64_t>(2)};
}

asio::awaitable<Result<db::Timestamp>> OrgStore::rename(db::Transaction& tx, const db::Uuid& org_id,
                                                        const std::string& name) {
  Params params(org_id, name);
  auto rows = co_await tx.query(kRename, params);
  if (!rows) co_return rows.error();
  co_return rows->front().get<db::Timestamp>(0);
}

asio::awaitable<Result<void>> OrgStore::soft_delete(db::Transaction& tx, Org& org,
                                                    std::chrono::seconds grace) {
  Params params(org.id, static_cast<double>(grace.count()));
  auto rows = co_await tx.query(kSoftDelete, params);
  if (!rows) co_return rows.error();
  org.updated_at = rows->front().get<db::Timestamp>(0);
  org.deleted_at = rows->front().get<db::Timestamp>(1);
  org.purge_after = rows->front().get<db::Timestamp>(2);
  co_return Result<void>{};
}

asio::awaitable<Result<db::Timestamp>> OrgStore::restore(db::Transaction& tx,
                                                         const db::Uuid& org_id) {
  Params params(org_id);
  auto rows = co_await tx.query(kRestore, params);
  if (!rows) co_return rows.error();
  co_return rows->front().get<db::Timestamp>(0);
}

asio::awaitable<Result<std::optional<std::pair<db::Uuid, std::string>>>> OrgStore::next_expired(
    db::Transaction& tx) {
  auto rows = co_await tx.query(kNextExpired, Params::none());
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<std::pair<db::Uuid, std::string>>{};
  co_return std::pair{rows->front().get<db::Uuid>(0), rows->front().get<std::string>(1)};
}

asio::awaitable<Result<void>> OrgStore::purge(db::Transaction& tx, const db::Uuid& org_id) {
  auto longer = co_await tx.execute(kSetPurgeTimeout, Params::none());
  if (!longer) co_return longer.error();
  Params params(org_id);
  co_return co_await tx.execute(kPurge, params);
}

asio::awaitable<Result<void>> OrgStore::notify(db::Transaction& tx, const std::string& payload) {
  Params params(payload);
  co_return co_await tx.execute(kNotify, params);
}

asio::awaitable<Result<std::vector<db::Uuid>>> OrgStore::notify_members(db::Transaction& tx,
                                                                        const db::Uuid& org_id) {
  Params params(org_id);
  auto rows = co_await tx.query(kNotifyMembers, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, [](const db::Row& row) { return row.get<db::Uuid>(0); });
}

asio::awaitable<Result<void>> OrgStore::add_member(db::Transaction& tx, const db::Uuid& org_id,
                                                   const db::Uuid& user_id, Role role) {
  Params params(org_id, user_id, to_string(role));
  co_return co_await tx.execute(kInsertMembership, params);
}

asio::awaitable<Result<std::vector<Member>>> OrgStore::members(const db::Scope& scope,
                                                               const db::Uuid& org_id,
                                                               const db::Uuid& after,
                                                               std::int32_t limit) {
  Params params(org_id, after, static_cast<std::int64_t>(limit));
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kMembers, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, member_from);
}

asio::awaitable<Result<std::optional<Member>>> OrgStore::lock_member(db::Transaction& tx,
                                                                     const db::Uuid& org_id,
                                                                     const db::Uuid& user_id) {
  Params params(org_id, user_id);
  auto rows = co_await tx.query(kLockMember, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<Member>{};
  co_return member_from(rows->front());
}

asio::awaitable<Result<std::int64_t>> OrgStore::owner_count(db::Transaction& tx,
                                                            const db::Uuid& org_id) {
  Params params(org_id);
  auto rows = co_await tx.query(kOwnerCount, params);
  if (!rows) co_return rows.error();
  co_return rows->front().get<std::int64_t>(0);
}

asio::awaitable<Result<std::vector<db::Uuid>>> OrgStore::members_among(
    db::Transaction& tx, const db::Uuid& org_id, const std::vector<db::Uuid>& user_ids,
    const std::vector<Role>& roles, std::int64_t limit) {
  std::string ids, role_names;
  for (const auto& id : user_ids) {
    if (!ids.empty()) ids += ',';
    ids += id.to_string();
  }
  for (auto role : roles) {
    if (!role_names.empty()) role_names += ',';
    role_names += to_string(role);
  }
  Params params(org_id, ids, role_names, limit);
  auto rows = co_await tx.query(kMembersAmong, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, [](const db::Row& row) { return row.get<db::Uuid>(0); });
}

asio::awaitable<Result<void>> OrgStore::set_role(db::Transaction& tx, const db::Uuid& org_id,
                                                 const db::Uuid& user_id, Role role) {
  Params params(org_id, user_id, to_string(role));
  co_return co_await tx.execute(kSetRole, params);
}

asio::awaitable<Result<void>> OrgStore::delete_member(db::Transaction& tx, const db::Uuid& org_id,
                                                      const db::Uuid& user_id) {
  Params params(org_id, user_id);
  co_return co_await tx.execute(kDeleteMember, params);
}

asio::awaitable<Result<bool>> OrgStore::has_member_email(db::Transaction& tx,
                                                         const db::Uuid& org_id,
                                                         const std::string& email) {
  Params params(org_id, email);
  auto rows = co_await tx.query(kMemberByEmail, params);
  if (!rows) co_return rows.error();
  co_return !rows->empty();
}

asio::awaitable<Result<void>> OrgStore::close_expired_invitations(db::Transaction& tx,
                                                                  const db::Uuid& org_id,
                                                                  const std::string& email) {
  Params params(org_id, email);
  co_return co_await tx.execute(kCloseExpiredInvitations, params);
}

asio::awaitable<Result<void>> OrgStore::insert_invitation(db::Transaction& tx,
                                                          Invitation& invitation,
                                                          const std::string& token_digest) {
  Params params;
  params.add(invitation.id)
      .add(invitation.org_id)
      .add(invitation.email)
      .add(to_string(invitation.role));
  params.add(db::Bytes{token_digest}).add(invitation.invited_by);
  params.add(invitation.expires_at);
  auto rows = co_await tx.query(kInsertInvitation, params);
  if (!rows) co_return rows.error();
  invitation.created_at = rows->front().get<db::Timestamp>(0);
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<Invitation>>> OrgStore::pending_invitations(
    const db::Scope& scope, const db::Uuid& org_id) {
  Params params(org_id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kPendingInvitations, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, invitation_from);
}

asio::awaitable<Result<std::optional<std::pair<std::string, Role>>>> OrgStore::revoke_invitation(
    db::Transaction& tx, const db::Uuid& id, const db::Uuid& org_id) {
  Params params(id, org_id);
  auto rows = co_await tx.query(kRevokeInvitation, params);
  if (!rows) co_return rows.error();
  co_return name_and_role(*rows);
}

asio::awaitable<Result<std::optional<db::Uuid>>> OrgStore::invitation_org(
    const db::Scope& scope, const std::string& token_digest) {
  Params params(db::Bytes{token_digest});
  auto rows = co_await db_.query(Intent::write, scope, kInvitationOrg, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<db::Uuid>{};
  co_return rows->front().get<db::Uuid>(0);
}

asio::awaitable<Result<std::optional<OrgStore::InvitationMail>>> OrgStore::invitation_for_mail(
    const db::Scope& scope, const db::Uuid& org_id, const db::Uuid& id,
    const std::string& token_digest) {
  db::Bytes token{token_digest};
  Params params(org_id, id, token);
  auto rows = co_await db_.query(Intent::write, scope, kInvitationForMail, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<InvitationMail>{};
  auto row = rows->front();
  co_return InvitationMail{row.get<std::string>(0), role_from(row, 1), row.get<db::Timestamp>(2),
                           row.get<std::string>(3), row.get<std::optional<std::string>>(4)};
}

asio::awaitable<Result<std::optional<OrgStore::InvitationState>>> OrgStore::lock_invitation(
    db::Transaction& tx, const std::string& token_digest) {
  Params params(db::Bytes{token_digest});
  auto rows = co_await tx.query(kLockInvitation, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<InvitationState>{};
  auto row = rows->front();
  co_return InvitationState{row.get<db::Uuid>(0), row.get<std::string>(1), role_from(row, 2),
                            row.get<bool>(3),     row.get<bool>(4),        row.get<bool>(5)};
}

asio::awaitable<Result<void>> OrgStore::mark_accepted(db::Transaction& tx,
                                                      const db::Uuid& invitation_id,
                                                      const db::Uuid& user_id) {
  Params params(invitation_id, user_id);
  co_return co_await tx.execute(kAcceptInvitation, params);
}

asio::awaitable<Result<void>> OrgStore::insert_api_key(db::Transaction& tx, const db::Uuid& org_id,
                                                       ApiKey& key, const std::string& key_digest) {
  Params params;
  params.add(key.id).add(org_id).add(key.name).add(to_string(key.role)).add(db::Bytes{key_digest});
  params.add(key.created_by);
  auto rows = co_await tx.query(kInsertApiKey, params);
  if (!rows) co_return rows.error();
  key.created_at = rows->front().get<db::Timestamp>(0);
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<ApiKey>>> OrgStore::api_keys(const db::Scope& scope,
                                                                const db::Uuid& org_id) {
  Params params(org_id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kApiKeys, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, [](const db::Row& row) {
    return ApiKey{row.get<db::Uuid>(0),
                  row.get<std::string>(1),
                  role_from(row, 2),
                  row.get<db::Uuid>(3),
                  row.get<db::Timestamp>(4),
                  row.get<std::optional<db::Timestamp>>(5),
                  {}};
  });
}

asio::awaitable<Result<std::optional<std::pair<std::string, Role>>>> OrgStore::revoke_api_key(
    db::Transaction& tx, const db::Uuid& id, const db::Uuid& org_id) {
  Params params(id, org_id);
  auto rows = co_await tx.query(kRevokeApiKey, params);
  if (!rows) co_return rows.error();
  co_return name_and_role(*rows);
}

}  // namespace liftoff::identity
