#include "liftoff/identity/organizations.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "liftoff/core/id.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/identity/credentials.hpp"
#include "liftoff/identity/revocation_listener.hpp"
#include "liftoff/identity/session_cache.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
namespace json = boost::json;
using db::Intent;
using db::Params;
using db::Statement;

namespace {
constexpr Statement kInsertOrg{
    db::Plane::control, "orgs.insert",
    "INSERT INTO orgs (id, name) VALUES ($1, $2) RETURNING created_at, updated_at"};
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
    "WHERE m.org_id = o.id AND m.user_id = $2) END FROM orgs o WHERE o.id = $1 FOR UPDATE OF o"};
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
// One org whose grace period is over, locked (another process purging skips it).
constexpr Statement kNextExpired{
    db::Plane::control, "orgs.next_expired",
    "SELECT id, name FROM orgs WHERE purge_after < now() ORDER BY purge_after LIMIT 1 "
    "FOR UPDATE SKIP LOCKED"};
constexpr Statement kPurge{db::Plane::control, "orgs.purge", "DELETE FROM orgs WHERE id = $1"};
// Deleting an org deletes its tenant-plane rows by cascade: a big tenant's take long.
constexpr auto kPurgeTimeout = std::chrono::minutes(10);
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
    "SELECT u.id, u.email, u.name, u.created_at, m.role, m.created_at FROM memberships m "
    "JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id > $2 "
    "ORDER BY m.user_id LIMIT $3"};
constexpr Statement kLockMember{
    db::Plane::control, "orgs.lock_member",
    "SELECT u.id, u.email, u.name, u.created_at, m.role, m.created_at FROM memberships m "
    "JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2 FOR UPDATE OF m"};
constexpr Statement kOwnerCount{
    db::Plane::control, "orgs.owner_count",
    "SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'owner'"};
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
constexpr Statement kInvitationOrg{db::Plane::control, "invitations.org",
                                   "SELECT org_id FROM invitations WHERE token_hash = $1"};
constexpr Statement kLockInvitation{
    db::Plane::control, "invitations.lock",
    "SELECT id, email, role, expires_at <= now(), accepted_at IS NOT NULL, revoked_at IS NOT NULL "
    "FROM invitations WHERE token_hash = $1 FOR UPDATE"};
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

db::Uuid new_id() {
  return db::Uuid{core::new_uuid_v7()};
}

Error org_not_found() {
  return make_error(Errc::not_found, "no such organization");
}

Error role_too_small(Action action) {
  return make_error(Errc::permission_denied, "this needs the " +
                                                 std::string(to_string(minimum_role(action))) +
                                                 " role or higher in the organization");
}

Role role_from(const db::Row& row, int column) {
  auto role = parse_role(row.get<std::string>(column));
  if (!role) throw db::DecodeError("unknown role in the database");
  return *role;
}

std::string object_text(json::object object) {
  return json::serialize(object);
}

json::object role_object(Role role) {
  return {{"role", to_string(role)}};
}

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
               row.get<db::Timestamp>(3)},
          role_from(row, 4), row.get<db::Timestamp>(5)};
}

Invitation invitation_from(const db::Row& row) {
  return {
      row.get<db::Uuid>(0), row.get<db::Uuid>(1),      row.get<std::string>(2),   role_from(row, 3),
      row.get<db::Uuid>(4), row.get<db::Timestamp>(5), row.get<db::Timestamp>(6), {}};
}

// Runs `statement` in `tx`; only whether it worked matters.
asio::awaitable<Result<db::Rows>> run(db::Transaction& tx, const Statement& statement,
                                      const Params& params) {
  co_return co_await tx.query(statement, params);
}

asio::awaitable<Result<void>> notify(db::Transaction& tx, const std::string& payload) {
  Params params(payload);
  auto rows = co_await tx.query(kNotify, params);
  if (!rows) co_return rows.error();
  co_return Result<void>{};
}

std::string user_payload(const db::Uuid& id) {
  return std::string(kUserPayloadPrefix) + id.to_string();
}
std::string org_payload(const db::Uuid& id) {
  return std::string(kOrgPayloadPrefix) + id.to_string();
}
}  // namespace

Result<Access> OrgService::access(const Principal& principal, std::string_view org_text,
                                  Action action) {
  auto org_id = db::Uuid::parse(org_text);
  if (!org_id) return org_not_found();
  auto role = principal.role_in(*org_id);
  if (!role) return org_not_found();
  if (!allows(*role, action)) return role_too_small(action);
  return Access{*org_id, *role};
}

void OrgService::evict_user(const db::Uuid& user_id) {
  if (cache_) cache_->evict_user(user_id);
}

void OrgService::evict_org(const db::Uuid& org_id) {
  if (cache_) cache_->evict_org(org_id);
}

asio::awaitable<Result<OrgService::Locked>> OrgService::lock(db::Transaction& tx,
                                                             const Principal& principal,
                                                             const db::Uuid& org_id, Action action,
                                                             bool deleted_too) {
  Params params(org_id, principal.actor_id(), !principal.is_user());
  auto rows = co_await tx.query(kLockOrg, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return org_not_found();
  auto row = rows->front();
  Org org = org_from(row, Role::viewer);
  org.deleted_at = row.get<std::optional<db::Timestamp>>(4);
  org.purge_after = row.get<std::optional<db::Timestamp>>(5);
  bool deleted = org.deleted_at.has_value();
  bool restorable = row.get<std::optional<bool>>(6).value_or(false);
  if (row.is_null(7) || (deleted && !(deleted_too && restorable))) co_return org_not_found();
  auto role = role_from(row, 7);
  if (!allows(role, action)) co_return role_too_small(action);
  org.role = role;
  co_return Locked{std::move(org), role};
}

asio::awaitable<Result<Org>> OrgService::create(const db::Scope& scope, const Principal& principal,
                                                const std::string& name) {
  if (auto problem = name_problem(name)) {
    co_return Error{Errc::validation_failed, "the organization is invalid", {{"name", *problem}}};
  }
  Org org{new_id(), name, {}, {}, {}, {}, Role::owner};
  auto org_scope = scope.for_tenant(db::Tenant::org(org.id));
  auto tx = co_await db_.begin(org_scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  Params org_params(org.id, name);
  auto inserted = co_await run(*tx, kInsertOrg, org_params);
  if (!inserted) co_return inserted.error();
  org.created_at = inserted->front().get<db::Timestamp>(0);
  org.updated_at = inserted->front().get<db::Timestamp>(1);
  std::string owner(to_string(Role::owner));
  Params member_params(org.id, principal.user.id, owner);
  auto member = co_await run(*tx, kInsertMembership, member_params);
  if (!member) co_return member.error();
  auto chain = co_await audit::start_chain(*tx, org.id);
  if (!chain) co_return chain.error();
  audit::Change change{"org.created", "org", org.id.to_string(), std::nullopt,
                       object_text({{"name", name}})};
  auto notified = co_await notify(*tx, user_payload(principal.user.id));
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, org_scope, change);
  if (!event) co_return event.error();
  evict_user(principal.user.id);
  co_return org;
}

asio::awaitable<Result<std::vector<Org>>> OrgService::list(const db::Scope& scope,
                                                           const Principal& principal) {
  Params params(principal.user.id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kListOrgs, params);
  if (!rows) co_return rows.error();
  std::vector<Org> orgs;
  for (int i = 0; i < rows->size(); ++i) {
    auto row = (*rows)[i];
    orgs.push_back(org_from(row, role_from(row, 4)));
  }
  co_return orgs;
}

asio::awaitable<Result<Org>> OrgService::get(const db::Scope& scope, const Access& access) {
  Params params(access.org_id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope.control(), kGetOrg, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return org_not_found();
  co_return org_from(rows->front(), access.role);
}

asio::awaitable<Result<Org>> OrgService::rename(const db::Scope& scope, const Principal& principal,
                                                const std::string& name) {
  const auto& org_id = scope.org();
  if (auto problem = name_problem(name)) {
    co_return Error{Errc::validation_failed, "the organization is invalid", {{"name", *problem}}};
  }
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::org_update);
  if (!locked) co_return locked.error();
  Org org = std::move(locked->org);
  if (org.name == name) co_return org;  // nothing changes, nothing to record
  Params params(org_id, name);
  auto updated = co_await run(*tx, kRename, params);
  if (!updated) co_return updated.error();
  org.updated_at = updated->front().get<db::Timestamp>(0);
  audit::Change change{"org.renamed", "org", org_id.to_string(), object_text({{"name", org.name}}),
                       object_text({{"name", name}})};
  auto notified = co_await notify(*tx, org_payload(org_id));
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  evict_org(org_id);
  org.name = name;
  co_return org;
}

asio::awaitable<Result<Org>> OrgService::remove(const db::Scope& scope,
                                                const Principal& principal) {
  const auto& org_id = scope.org();
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::org_delete);
  if (!locked) co_return locked.error();
  Org org = std::move(locked->org);
  Params params(org_id, static_cast<double>(options_.deletion_grace.count()));
  auto updated = co_await run(*tx, kSoftDelete, params);
  if (!updated) co_return updated.error();
  org.updated_at = updated->front().get<db::Timestamp>(0);
  org.deleted_at = updated->front().get<db::Timestamp>(1);
  org.purge_after = updated->front().get<db::Timestamp>(2);
  audit::Change change{"org.deleted", "org", org_id.to_string(), std::nullopt,
                       object_text({{"purge_after", core::format_rfc3339(*org.purge_after)}})};
  auto notified = co_await notify(*tx, org_payload(org_id));
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  evict_org(org_id);
  co_return org;
}

asio::awaitable<Result<Org>> OrgService::restore(const db::Scope& scope, const Principal& principal,
                                                 std::string_view org_text) {
  auto org_id = db::Uuid::parse(org_text);
  if (!org_id) co_return org_not_found();
  auto org_scope = scope.for_tenant(db::Tenant::org(*org_id));
  auto tx = co_await db_.begin(org_scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, *org_id, Action::org_delete, /*deleted_too=*/true);
  if (!locked) co_return locked.error();
  Org org = std::move(locked->org);
  if (!org.deleted_at) co_return make_error(Errc::conflict, "the organization is not deleted");
  Params params(*org_id);
  auto updated = co_await run(*tx, kRestore, params);
  if (!updated) co_return updated.error();
  org.updated_at = updated->front().get<db::Timestamp>(0);
  org.deleted_at.reset();
  org.purge_after.reset();
  audit::Change change{"org.restored", "org", org_id->to_string(), std::nullopt, std::nullopt};
  // Members' cached principals left the org out while it was deleted: each is told by user.
  Params members_params(*org_id);
  auto notified = co_await run(*tx, kNotifyMembers, members_params);
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, org_scope, change);
  if (!event) co_return event.error();
  for (int i = 0; i < notified->size(); ++i) evict_user((*notified)[i].get<db::Uuid>(0));
  co_return org;
}

asio::awaitable<Result<std::vector<Member>>> OrgService::members(
    const db::Scope& scope, const Access& access, const std::optional<db::Uuid>& after,
    std::int32_t limit) {
  Params params(access.org_id, after.value_or(db::Uuid{}), static_cast<std::int64_t>(limit));
  auto rows = co_await db_.query(Intent::read_your_writes, scope.control(), kMembers, params);
  if (!rows) co_return rows.error();
  std::vector<Member> members;
  for (int i = 0; i < rows->size(); ++i) members.push_back(member_from((*rows)[i]));
  co_return members;
}

asio::awaitable<Result<Member>> OrgService::change_role(const db::Scope& scope,
                                                        const Principal& principal,
                                                        std::string_view user_text, Role role) {
  const auto& org_id = scope.org();
  auto user_id = db::Uuid::parse(user_text);
  if (!user_id) co_return make_error(Errc::not_found, "no such member");
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::members_manage);
  if (!locked) co_return locked.error();
  Params member_params(org_id, *user_id);
  auto rows = co_await run(*tx, kLockMember, member_params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return make_error(Errc::not_found, "no such member");
  auto member = member_from(rows->front());
  if (!may_manage(locked->role, member.role) || !may_grant(locked->role, role)) {
    co_return make_error(Errc::permission_denied,
                         "a " + std::string(to_string(locked->role)) +
                             " cannot change a role from or to one above their own");
  }
  if (member.role == role) co_return member;
  if (member.role == Role::owner) {
    Params owner_params(org_id);
    auto owners = co_await run(*tx, kOwnerCount, owner_params);
    if (!owners) co_return owners.error();
    if (owners->front().get<std::int64_t>(0) <= 1) {
      co_return make_error(Errc::conflict,
                           "an organization needs at least one owner: make another member owner "
                           "first");
    }
  }
  std::string role_text(to_string(role));
  Params update_params(org_id, *user_id, role_text);
  auto updated = co_await run(*tx, kSetRole, update_params);
  if (!updated) co_return updated.error();
  audit::Change change{"member.role_changed", "user", user_id->to_string(),
                       object_text(role_object(member.role)), object_text(role_object(role))};
  auto notified = co_await notify(*tx, user_payload(*user_id));
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  evict_user(*user_id);
  member.role = role;
  co_return member;
}

asio::awaitable<Result<void>> OrgService::remove_member(const db::Scope& scope,
                                                        const Principal& principal,
                                                        std::string_view user_text) {
  const auto& org_id = scope.org();
  auto user_id = db::Uuid::parse(user_text);
  if (!user_id) co_return make_error(Errc::not_found, "no such member");
  bool leaving = principal.is_user() && principal.user.id == *user_id;
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked =
      co_await lock(*tx, principal, org_id, leaving ? Action::org_read : Action::members_manage);
  if (!locked) co_return locked.error();
  Params member_params(org_id, *user_id);
  auto rows = co_await run(*tx, kLockMember, member_params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return make_error(Errc::not_found, "no such member");
  auto member = member_from(rows->front());
  if (!leaving && !may_manage(locked->role, member.role)) {
    co_return make_error(Errc::permission_denied,
                         "a " + std::string(to_string(locked->role)) +
                             " cannot remove a member whose role is above their own");
  }
  if (member.role == Role::owner) {
    Params owner_params(org_id);
    auto owners = co_await run(*tx, kOwnerCount, owner_params);
    if (!owners) co_return owners.error();
    if (owners->front().get<std::int64_t>(0) <= 1) {
      co_return make_error(Errc::conflict,
                           "an organization needs at least one owner: make another member owner "
                           "first, or delete the organization");
    }
  }
  auto deleted = co_await run(*tx, kDeleteMember, member_params);
  if (!deleted) co_return deleted.error();
  audit::Change change{leaving ? "member.left" : "member.removed", "user", user_id->to_string(),
                       object_text(role_object(member.role)), std::nullopt};
  auto notified = co_await notify(*tx, user_payload(*user_id));
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  evict_user(*user_id);
  co_return Result<void>{};
}

asio::awaitable<Result<Invitation>> OrgService::invite(const db::Scope& scope,
                                                       const Principal& principal,
                                                       const std::string& email, Role role) {
  const auto& org_id = scope.org();
  auto normalized = normalize_email(email);
  if (!normalized) {
    co_return Error{Errc::validation_failed,
                    "the invitation is invalid",
                    {{"email", "is not a valid email address"}}};
  }
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::invitations_manage);
  if (!locked) co_return locked.error();
  if (!may_grant(locked->role, role)) {
    co_return make_error(Errc::permission_denied,
                         "you cannot invite someone with a role above "
                         "your own");
  }
  Params email_params(org_id, *normalized);
  auto existing = co_await run(*tx, kMemberByEmail, email_params);
  if (!existing) co_return existing.error();
  if (!existing->empty())
    co_return make_error(Errc::conflict, "that address belongs to a member already");
  auto closed = co_await run(*tx, kCloseExpiredInvitations, email_params);
  if (!closed) co_return closed.error();

  Invitation invitation{new_id(),
                        org_id,
                        *normalized,
                        role,
                        principal.actor_id(),
                        {},
                        {},
                        new_token(kInvitationTokenPrefix)};
  invitation.expires_at =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()) +
      std::chrono::duration_cast<std::chrono::microseconds>(options_.invitation_ttl);
  std::string role_text(to_string(role));
  Params params;
  params.add(invitation.id).add(org_id).add(invitation.email).add(role_text);
  params.add(db::Bytes{token_digest(invitation.token)}).add(invitation.invited_by);
  params.add(invitation.expires_at);
  auto inserted = co_await run(*tx, kInsertInvitation, params);
  if (!inserted) {
    if (inserted.error().code == Errc::conflict)
      co_return make_error(Errc::conflict, "an invitation to that address is pending already");
    co_return inserted.error();
  }
  invitation.created_at = inserted->front().get<db::Timestamp>(0);
  audit::Change change{"invitation.created", "invitation", invitation.id.to_string(), std::nullopt,
                       object_text({{"email", invitation.email},
                                    {"role", role_text},
                                    {"expires_at", core::format_rfc3339(invitation.expires_at)}})};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  co_return invitation;
}

asio::awaitable<Result<std::vector<Invitation>>> OrgService::invitations(const db::Scope& scope,
                                                                         const Access& access) {
  Params params(access.org_id);
  auto rows =
      co_await db_.query(Intent::read_your_writes, scope.control(), kPendingInvitations, params);
  if (!rows) co_return rows.error();
  std::vector<Invitation> out;
  for (int i = 0; i < rows->size(); ++i) out.push_back(invitation_from((*rows)[i]));
  co_return out;
}

asio::awaitable<Result<void>> OrgService::revoke_invitation(const db::Scope& scope,
                                                            const Principal& principal,
                                                            std::string_view id_text) {
  const auto& org_id = scope.org();
  auto id = db::Uuid::parse(id_text);
  if (!id) co_return make_error(Errc::not_found, "no such pending invitation");
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::invitations_manage);
  if (!locked) co_return locked.error();
  Params params(*id, org_id);
  auto revoked = co_await run(*tx, kRevokeInvitation, params);
  if (!revoked) co_return revoked.error();
  if (revoked->empty()) co_return make_error(Errc::not_found, "no such pending invitation");
  audit::Change change{"invitation.revoked", "invitation", id->to_string(),
                       object_text({{"email", revoked->front().get<std::string>(0)},
                                    {"role", revoked->front().get<std::string>(1)}}),
                       std::nullopt};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  co_return Result<void>{};
}

asio::awaitable<Result<Org>> OrgService::accept_invitation(const db::Scope& scope,
                                                           const Principal& principal,
                                                           std::string_view token) {
  auto not_found = make_error(Errc::not_found, "no such invitation");
  if (!token_shaped(token, kInvitationTokenPrefix)) co_return not_found;
  Params token_params(db::Bytes{token_digest(token)});
  // The org first, then the invitation: every path locks an org's rows in that order.
  auto org_rows = co_await db_.query(Intent::write, scope, kInvitationOrg, token_params);
  if (!org_rows) co_return org_rows.error();
  if (org_rows->empty()) co_return not_found;
  auto org_id = org_rows->front().get<db::Uuid>(0);

  auto org_scope = scope.for_tenant(db::Tenant::org(org_id));
  auto tx = co_await db_.begin(org_scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  Params lock_params(org_id, principal.user.id, false);
  auto org_row = co_await run(*tx, kLockOrg, lock_params);
  if (!org_row) co_return org_row.error();
  if (org_row->empty() || !org_row->front().is_null(4)) co_return not_found;  // gone or deleted
  auto rows = co_await run(*tx, kLockInvitation, token_params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return not_found;
  auto row = rows->front();
  auto invitation_id = row.get<db::Uuid>(0);
  auto email = row.get<std::string>(1);
  auto role = role_from(row, 2);
  if (row.get<bool>(4)) co_return make_error(Errc::conflict, "the invitation was used already");
  if (row.get<bool>(5)) co_return make_error(Errc::gone, "the invitation was revoked");
  if (row.get<bool>(3)) co_return make_error(Errc::gone, "the invitation has expired");
  if (email != principal.user.email) {
    co_return make_error(Errc::permission_denied,
                         "the invitation is for another email address; sign in as that user");
  }
  if (!org_row->front().is_null(7))
    co_return make_error(Errc::conflict, "you are a member of the organization already");

  std::string role_text(to_string(role));
  Params member_params(org_id, principal.user.id, role_text);
  auto member = co_await run(*tx, kInsertMembership, member_params);
  if (!member) co_return member.error();
  Params accept_params(invitation_id, principal.user.id);
  auto accepted = co_await run(*tx, kAcceptInvitation, accept_params);
  if (!accepted) co_return accepted.error();
  audit::Change change{
      "member.joined", "user", principal.user.id.to_string(), std::nullopt,
      object_text({{"role", role_text}, {"invitation_id", invitation_id.to_string()}})};
  auto notified = co_await notify(*tx, user_payload(principal.user.id));
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, org_scope, change);
  if (!event) co_return event.error();
  evict_user(principal.user.id);
  co_return org_from(org_row->front(), role);
}

asio::awaitable<Result<std::size_t>> OrgService::purge_expired(std::size_t limit) {
  std::size_t purged = 0;
  for (; purged < limit; ++purged) {
    // A big tenant's records go with it: its statements may take long.
    auto scope = db::Scope::background(db::Tenant::every_org(), kPurgeTimeout);
    scope.statement_timeout = kPurgeTimeout;
    auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
    if (!tx) co_return tx.error();
    auto next = co_await run(*tx, kNextExpired, Params::none());
    if (!next) co_return next.error();
    if (next->empty()) break;
    auto org_id = next->front().get<db::Uuid>(0);
    auto longer = co_await run(*tx, kSetPurgeTimeout, Params::none());
    if (!longer) co_return longer.error();
    Params params(org_id);
    auto deleted = co_await tx->query(kPurge, params);
    if (!deleted) co_return deleted.error();
    audit::Change change{"org.purged", "org", org_id.to_string(),
                         object_text({{"name", next->front().get<std::string>(1)}}), std::nullopt};
    auto event =
        co_await audit::append_and_commit(*tx, scope.for_tenant(db::Tenant::org(org_id)), change);
    if (!event) co_return event.error();
  }
  co_return purged;
}

asio::awaitable<Result<ApiKey>> OrgService::create_api_key(const db::Scope& scope,
                                                           const Principal& principal,
                                                           const std::string& name, Role role) {
  const auto& org_id = scope.org();
  Error invalid{Errc::validation_failed, "the API key is invalid", {}};
  if (auto problem = name_problem(name)) invalid.fields.push_back({"name", *problem});
  if (role == Role::owner)
    invalid.fields.push_back({"role", "must be admin, member or viewer (keys cannot own)"});
  if (!invalid.fields.empty()) co_return invalid;
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::api_keys_manage);
  if (!locked) co_return locked.error();
  if (!may_grant(locked->role, role)) {
    co_return make_error(Errc::permission_denied,
                         "you cannot create a key with a role above your own");
  }
  ApiKey key{
      new_id(), name, role, principal.actor_id(), {}, std::nullopt, new_token(kApiKeyPrefix)};
  std::string role_text(to_string(role));
  Params params;
  params.add(key.id).add(org_id).add(name).add(role_text).add(db::Bytes{token_digest(key.key)});
  params.add(key.created_by);
  auto inserted = co_await run(*tx, kInsertApiKey, params);
  if (!inserted) co_return inserted.error();
  key.created_at = inserted->front().get<db::Timestamp>(0);
  audit::Change change{"api_key.created", "api_key", key.id.to_string(), std::nullopt,
                       object_text({{"name", name}, {"role", role_text}})};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  co_return key;
}

asio::awaitable<Result<std::vector<ApiKey>>> OrgService::api_keys(const db::Scope& scope,
                                                                  const Access& access) {
  Params params(access.org_id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope.control(), kApiKeys, params);
  if (!rows) co_return rows.error();
  std::vector<ApiKey> keys;
  for (int i = 0; i < rows->size(); ++i) {
    auto row = (*rows)[i];
    keys.push_back({row.get<db::Uuid>(0),
                    row.get<std::string>(1),
                    role_from(row, 2),
                    row.get<db::Uuid>(3),
                    row.get<db::Timestamp>(4),
                    row.get<std::optional<db::Timestamp>>(5),
                    {}});
  }
  co_return keys;
}

asio::awaitable<Result<void>> OrgService::revoke_api_key(const db::Scope& scope,
                                                         const Principal& principal,
                                                         std::string_view id_text) {
  const auto& org_id = scope.org();
  auto id = db::Uuid::parse(id_text);
  if (!id) co_return make_error(Errc::not_found, "no such API key");
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::api_keys_manage);
  if (!locked) co_return locked.error();
  Params params(*id, org_id);
  auto revoked = co_await run(*tx, kRevokeApiKey, params);
  if (!revoked) co_return revoked.error();
  if (revoked->empty()) co_return make_error(Errc::not_found, "no such API key");
  audit::Change change{"api_key.revoked", "api_key", id->to_string(),
                       object_text({{"name", revoked->front().get<std::string>(0)},
                                    {"role", revoked->front().get<std::string>(1)}}),
                       std::nullopt};
  auto notified = co_await notify(*tx, id->to_string());
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  if (cache_) cache_->evict_credential(*id);
  co_return Result<void>{};
}

}  // namespace liftoff::identity
