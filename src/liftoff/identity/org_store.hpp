#pragma once
// The SQL of organizations, memberships, invitations and API keys, and the decoding of their rows:
// what OrgService's rules run on. Every statement is of the control plane; writes run in the
// caller's transaction (which has locked the org's row first), reads through the Database. Nothing
// here decides who may do what.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/identity/roles.hpp"
#include "liftoff/identity/store.hpp"
#include "liftoff/plans/plans.hpp"

namespace liftoff::db {
class Database;
class Transaction;
}  // namespace liftoff::db

namespace liftoff::identity {

struct Org {
  db::Uuid id;
  std::string name;
  db::Timestamp created_at;
  db::Timestamp updated_at;
  std::optional<db::Timestamp> deleted_at;
  std::optional<db::Timestamp> purge_after;
  Role role = Role::viewer;  // the caller's
};

struct Member {
  User user;
  Role role = Role::viewer;
  db::Timestamp joined_at;
};

struct Invitation {
  db::Uuid id;
  db::Uuid org_id;
  std::string email;
  Role role = Role::viewer;
  db::Uuid invited_by;
  db::Timestamp created_at;
  db::Timestamp expires_at;
  std::string token;  // only when just created: shown once
};

struct ApiKey {
  db::Uuid id;
  std::string name;
  Role role = Role::viewer;
  db::Uuid created_by;
  db::Timestamp created_at;
  std::optional<db::Timestamp> last_used_at;
  std::string key;  // only when just created: shown once
};

class OrgStore {
 public:
  explicit OrgStore(db::Database& database) : db_(database) {}

  // --- Organizations ---
  // Fills created_at and updated_at.
  // The org's row, its tenant plane on `shard` (a name of Database::shards()).
  [[nodiscard]] boost::asio::awaitable<Result<void>> insert_org(db::Transaction& tx, Org& org,
                                                                const std::string& shard);
  // The user's organizations (not deleted), each with the user's role, by name.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Org>>> orgs_of(const db::Scope& scope,
                                                                         const db::Uuid& user_id);
  // The organization unless deleted; its role field is left at viewer.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Org>>> org(const db::Scope& scope,
                                                                       const db::Uuid& org_id);
  // The org's row locked FOR UPDATE (deleted or not), with the role there of the actor (a user's
  // membership, or an API key's own role while it is live; nullopt for neither).
  struct LockedOrg {
    Org org;
    bool restorable = false;  // deleted and still within its grace period
    std::optional<Role> actor_role;
    const plans::Plan* plan = nullptr;
    std::string plan_limits;  // the overrides: a JSON object
  };
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<LockedOrg>>> lock_org(
      db::Transaction& tx, const db::Uuid& org_id, const db::Uuid& actor_id, bool actor_is_key);
  // Each returns the org's new updated_at.
  [[nodiscard]] boost::asio::awaitable<Result<db::Timestamp>> rename(db::Transaction& tx,
                                                                     const db::Uuid& org_id,
                                                                     const std::string& name);
  // Hidden now, purged after `grace`: fills updated_at, deleted_at and purge_after.
  [[nodiscard]] boost::asio::awaitable<Result<void>> soft_delete(db::Transaction& tx, Org& org,
                                                                 std::chrono::seconds grace);
  [[nodiscard]] boost::asio::awaitable<Result<db::Timestamp>> restore(db::Transaction& tx,
                                                                      const db::Uuid& org_id);
  // One org whose grace period is over, locked (a concurrent purger skips it): id and name.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<std::pair<db::Uuid, std::string>>>>
  next_expired(db::Transaction& tx);
  // Deletes the org for good, with its rows of both planes by cascade; its statement may take
  // long (a big tenant's records).
  [[nodiscard]] boost::asio::awaitable<Result<void>> purge(db::Transaction& tx,
                                                           const db::Uuid& org_id);

  // --- Plans (plans/plans.hpp) ---
  // Who holds a seat: members, and invitations still pending (neither used, revoked nor expired).
  struct Seats {
    std::int64_t members = 0;
    std::int64_t invited = 0;
  };
  [[nodiscard]] boost::asio::awaitable<Result<Seats>> seats(db::Transaction& tx,
                                                            const db::Uuid& org_id);
  // Returns the org's new updated_at.
  [[nodiscard]] boost::asio::awaitable<Result<db::Timestamp>> set_plan(
      db::Transaction& tx, const db::Uuid& org_id, std::string_view plan,
      const std::string& overrides);
  // The org's plan, its overrides and its members, in one statement (nullopt when it is deleted or
  // gone).
  struct PlanOf {
    const plans::Plan* plan = nullptr;
    std::string overrides;  // a JSON object
    std::int64_t members = 0;
  };
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<PlanOf>>> plan_of(
      const db::Scope& scope, const db::Uuid& org_id);

  // --- CORS origins (org_origins.hpp) ---
  // The org's origins, replaced by `origins` (a JSON array of canonical origins); returns the ones
  // it had.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<std::string>>> set_cors_origins(
      db::Transaction& tx, const db::Uuid& org_id, const std::vector<std::string>& origins);
  // The org's origins; nullopt when it is deleted or gone.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<std::vector<std::string>>>>
  cors_origins(const db::Scope& scope, const db::Uuid& org_id);
  // Every org (not deleted) that has any.
  using OriginsByOrg = std::vector<std::pair<db::Uuid, std::vector<std::string>>>;
  [[nodiscard]] boost::asio::awaitable<Result<OriginsByOrg>> all_cors_origins(
      const db::Scope& scope);

  // Suspends (or, `suspended` false, lifts the suspension of) a live org, locked; whether it was
  // suspended before, or nullopt for a deleted or unknown org.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<bool>>> set_suspended(
      db::Transaction& tx, const db::Uuid& org_id, bool suspended, const std::string& reason);

  // --- Session caches (LISTEN liftoff_sessions; see revocation_listener.hpp) ---
  // Tells every process at commit to forget what `payload` names.
  [[nodiscard]] boost::asio::awaitable<Result<void>> notify(db::Transaction& tx,
                                                            const std::string& payload);
  // Tells them, for each member of the org, to forget the member; returns the members' ids.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<db::Uuid>>> notify_members(
      db::Transaction& tx, const db::Uuid& org_id);

  // --- Members ---
  [[nodiscard]] boost::asio::awaitable<Result<void>> add_member(db::Transaction& tx,
                                                                const db::Uuid& org_id,
                                                                const db::Uuid& user_id, Role role);
  // Ordered by user id, after `after` (the nil id: from the start).
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Member>>> members(const db::Scope& scope,
                                                                            const db::Uuid& org_id,
                                                                            const db::Uuid& after,
                                                                            std::int32_t limit);
  // The membership locked FOR UPDATE.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Member>>> lock_member(
      db::Transaction& tx, const db::Uuid& org_id, const db::Uuid& user_id);
  // The members of the org among `user_ids` or with a role in `roles`, ordered by id, at most
  // `limit` of them.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<db::Uuid>>> members_among(
      db::Transaction& tx, const db::Uuid& org_id, const std::vector<db::Uuid>& user_ids,
      const std::vector<Role>& roles, std::int64_t limit);
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> owner_count(db::Transaction& tx,
                                                                         const db::Uuid& org_id);
  [[nodiscard]] boost::asio::awaitable<Result<void>> set_role(db::Transaction& tx,
                                                              const db::Uuid& org_id,
                                                              const db::Uuid& user_id, Role role);
  [[nodiscard]] boost::asio::awaitable<Result<void>> delete_member(db::Transaction& tx,
                                                                   const db::Uuid& org_id,
                                                                   const db::Uuid& user_id);
  // Whether a member of the org has this (normalized) email.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> has_member_email(db::Transaction& tx,
                                                                      const db::Uuid& org_id,
                                                                      const std::string& email);

  // --- Invitations ---
  // Marks the org's expired pending invitations to `email` revoked (they block no new one).
  [[nodiscard]] boost::asio::awaitable<Result<void>> close_expired_invitations(
      db::Transaction& tx, const db::Uuid& org_id, const std::string& email);
  // Stores the invitation under its token's digest; fills created_at. Errc::conflict when one to
  // the same address is pending.
  [[nodiscard]] boost::asio::awaitable<Result<void>> insert_invitation(
      db::Transaction& tx, Invitation& invitation, const std::string& token_digest);
  // Pending (neither accepted nor revoked), newest first.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Invitation>>> pending_invitations(
      const db::Scope& scope, const db::Uuid& org_id);
  // The revoked pending invitation's email and role; nullopt when none was pending.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<std::pair<std::string, Role>>>>
  revoke_invitation(db::Transaction& tx, const db::Uuid& id, const db::Uuid& org_id);
  // The invitation `id` of `org_id`, while pending, with `token_digest` as the digest of its
  // emailed token (replacing an earlier one): what its email says. nullopt when it is no longer
  // pending (accepted, revoked, expired) or its org is deleted.
  struct InvitationMail {
    std::string email;
    Role role = Role::viewer;
    db::Timestamp expires_at;
    std::string org_name;
    std::optional<std::string> inviter_name;  // none when an API key invited
  };
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<InvitationMail>>> invitation_for_mail(
      const db::Scope& scope, const db::Uuid& org_id, const db::Uuid& id,
      const std::string& token_digest);
  // The org of the invitation with this token digest (the one returned when it was made, or the
  // emailed one).
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<db::Uuid>>> invitation_org(
      const db::Scope& scope, const std::string& token_digest);
  struct InvitationState {
    db::Uuid id;
    std::string email;
    Role role = Role::viewer;
    bool expired = false;
    bool accepted = false;
    bool revoked = false;
  };
  // The invitation with this token digest (either), locked FOR UPDATE.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<InvitationState>>> lock_invitation(
      db::Transaction& tx, const std::string& token_digest);
  [[nodiscard]] boost::asio::awaitable<Result<void>> mark_accepted(db::Transaction& tx,
                                                                   const db::Uuid& invitation_id,
                                                                   const db::Uuid& user_id);

  // --- API keys ---
  // Stores the key under its digest; fills created_at.
  [[nodiscard]] boost::asio::awaitable<Result<void>> insert_api_key(db::Transaction& tx,
                                                                    const db::Uuid& org_id,
                                                                    ApiKey& key,
                                                                    const std::string& key_digest);
  // The org's live keys, oldest first.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<ApiKey>>> api_keys(
      const db::Scope& scope, const db::Uuid& org_id);
  // The revoked key's name and role; nullopt when it was not live.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<std::pair<std::string, Role>>>>
  revoke_api_key(db::Transaction& tx, const db::Uuid& id, const db::Uuid& org_id);

 private:
  db::Database& db_;
};

}  // namespace liftoff::identity
