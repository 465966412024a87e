#pragma once
// Organizations, their members and roles, invitations and API keys. Every mutation runs in one
// transaction that first locks the organization's row (so one org's membership changes are
// serialized and the last-owner rule holds under concurrency), re-checks the caller's role, makes
// the change, appends its audit event, and NOTIFYs the session caches.
//
// Access: on an organization a caller is not in (or one that is deleted) every method answers
// not_found, never permission_denied; a member whose role is too small gets permission_denied.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "liftoff/audit/audit.hpp"
#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/identity/org_store.hpp"
#include "liftoff/identity/roles.hpp"
#include "liftoff/identity/store.hpp"
#include "liftoff/notify/notifications.hpp"

namespace liftoff::db {
class Database;
class Transaction;
}  // namespace liftoff::db

namespace liftoff::identity {

class AccountMail;

class SessionCache;

// What an org keeps on the tenant plane that its plan counts (collections, records, storage,
// webhook endpoints), read for the org of `scope` by the domains that own those tables (the app
// composes them: identity does not reach into records or webhooks).
using TenantHoldings =
    std::function<boost::asio::awaitable<Result<plans::Holdings>>(const db::Scope& scope)>;

// Deletes what an org past its grace period keeps on the tenant plane, besides its audit log, for
// the org of `scope`, in statements of its own (the org's data lives on its shard; see
// docs/decisions/0021-tenant-shards.md); idempotent: a purge that failed runs it again.
using TenantPurge = std::function<boost::asio::awaitable<Result<void>>(const db::Scope& scope)>;

struct OrgOptions {
  std::chrono::seconds deletion_grace{std::chrono::hours(24 * 30)};  // restorable this long
  std::chrono::seconds invitation_ttl{std::chrono::hours(24 * 7)};
  TenantHoldings tenant_holdings;  // none: plans count seats only
  TenantPurge purge_tenant;        // none: orgs keep nothing on the tenant plane but their log
  // The shard a new org goes to (db::ShardPlacement::choose); none: main.
  std::function<boost::asio::awaitable<Result<std::size_t>>(const db::Scope&)> place_org;
};

// The caller's standing in one organization, established by OrgService::access().
struct Access {
  db::Uuid org_id;
  Role role = Role::viewer;
  const plans::Plan* plan = &plans::default_plan();  // the org's, and its limits
  plans::Limits limits = plans::default_plan().limits;
};

class OrgService {
 public:
  // `mail` may be null: invitations are then not emailed (the inviter passes the token on).
  // `notify`: whether members are told in their notification feeds what happened to their
  // membership (a role changed, removed, a member joined: kinds liftoff.member.*).
  OrgService(db::Database& database, OrgOptions options, SessionCache* cache = nullptr,
             AccountMail* mail = nullptr, bool notify = true)
      : db_(database),
        store_(database),
        options_(std::move(options)),
        cache_(cache),
        mail_(mail),
        notify_(notify) {}

  // May the principal do `action` in the org named by `org_text` (a path segment)? From the
  // principal's memberships (kept current by the session cache's NOTIFY), no database round trip.
  [[nodiscard]] static Result<Access> access(const Principal& principal, std::string_view org_text,
                                             Action action);

  [[nodiscard]] boost::asio::awaitable<Result<Org>> create(const db::Scope& scope,
                                                           const Principal& principal,
                                                           const std::string& name);
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Org>>> list(const db::Scope& scope,
                                                                      const Principal& principal);
  [[nodiscard]] boost::asio::awaitable<Result<Org>> get(const db::Scope& scope,
                                                        const Access& access);
  [[nodiscard]] boost::asio::awaitable<Result<Org>> rename(const db::Scope& scope,
                                                           const Principal& principal,
                                                           const std::string& name);
  // Soft delete: hidden at once, restorable by an owner until purge_after.
  [[nodiscard]] boost::asio::awaitable<Result<Org>> remove(const db::Scope& scope,
                                                           const Principal& principal);
  [[nodiscard]] boost::asio::awaitable<Result<Org>> restore(const db::Scope& scope,
                                                            const Principal& principal,
                                                            std::string_view org_text);

  // The org's own CORS origins: the front ends whose pages may call its routes from a browser,
  // beside the deployment's (http/cors.hpp). Every process keeps them in memory (OrgOrigins).
  static constexpr std::size_t kMaxCorsOrigins = 20;
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<std::string>>> cors_origins(
      const db::Scope& scope, const Access& access);
  // Replaces them, canonical and without repeats (returned). Each must be an origin,
  // scheme://host[:port] (validation_failed naming origins[i]; "*" and "null" are not: any origin
  // is the deployment's choice), at most kMaxCorsOrigins. Audited as org.cors_origins_changed.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<std::string>>> set_cors_origins(
      const db::Scope& scope, const Principal& principal, const std::vector<std::string>& origins);

  // Ordered by user id; `after` is the last user id of the previous page.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Member>>> members(
      const db::Scope& scope, const Access& access, const std::optional<db::Uuid>& after,
      std::int32_t limit);
  // conflict when it would leave the org without an owner.
  [[nodiscard]] boost::asio::awaitable<Result<Member>> change_role(const db::Scope& scope,
                                                                   const Principal& principal,
                                                                   std::string_view user_text,
                                                                   Role role);
  // Removing oneself is leaving; conflict for the last owner.
  [[nodiscard]] boost::asio::awaitable<Result<void>> remove_member(const db::Scope& scope,
                                                                   const Principal& principal,
                                                                   std::string_view user_text);

  [[nodiscard]] boost::asio::awaitable<Result<Invitation>> invite(const db::Scope& scope,
                                                                  const Principal& principal,
                                                                  const std::string& email,
                                                                  Role role);
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Invitation>>> invitations(
      const db::Scope& scope, const Access& access);
  [[nodiscard]] boost::asio::awaitable<Result<void>> revoke_invitation(const db::Scope& scope,
                                                                       const Principal& principal,
                                                                       std::string_view id_text);
  // By a signed-in user whose email is the invited one. not_found for an unknown token, conflict
  // when already used, gone when expired or revoked.
  [[nodiscard]] boost::asio::awaitable<Result<Org>> accept_invitation(const db::Scope& scope,
                                                                      const Principal& principal,
                                                                      std::string_view token);

  // An in-app notification from the org (its app, through an admin's session or API key) to
  // members: those of `user_ids` (each must be a member: validation_failed naming the others) and
  // every member whose role is in `roles`. At most kMaxRecipients in all. Audited as
  // notification.sent. Returns how many members got it.
  static constexpr std::size_t kMaxRecipients = 10'000;
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> send_notification(
      const db::Scope& scope, const Principal& principal, const notify::Draft& draft,
      const std::vector<db::Uuid>& user_ids, const std::vector<Role>& roles);

  // Deletes, for good, organizations whose grace period is over (with their memberships,
  // invitations, keys, collections and records; the audit log stays, ending in `org.purged`).
  // At most `limit` per call; safe to run on every process at once. Returns how many it purged.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> purge_expired(std::size_t limit);

  // --- Plans (docs/decisions/0016-plans-and-limits.md) ---
  struct PlanState {
    const plans::Plan* plan = &plans::default_plan();
    std::string overrides = "{}";  // the org's own limits over the plan's (a JSON object)
    plans::Limits limits;          // the plan's with the overrides
    plans::Holdings holdings;      // what the org keeps of each counted limit
  };
  [[nodiscard]] boost::asio::awaitable<Result<PlanState>> plan(const db::Scope& scope,
                                                               const Access& access);
  // The org's limits under its plan, for the platform's own checks (no caller, no access check:
  // the jobs per day quota); nullopt when the org is deleted or gone.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<plans::Limits>>> limits(
      const db::Scope& scope, const db::Uuid& org_id);
  // By an owner, to a self-serve plan (another is permission_denied: an operator sets it). A plan
  // whose limits the org is over is refused (conflict, a field error per limit over); the
  // org's overrides are dropped. Audited as org.plan_changed.
  [[nodiscard]] boost::asio::awaitable<Result<PlanState>> change_plan(const db::Scope& scope,
                                                                      const Principal& principal,
                                                                      std::string_view plan_name);
  // By an operator (`liftoff orgs plan`; the scope's actor is the system): any plan, with
  // overrides (a JSON object of limits, plans::parse_overrides). Refused like change_plan when the
  // org holds more than the new limits, unless `force`.
  [[nodiscard]] boost::asio::awaitable<Result<PlanState>> set_plan(const db::Scope& scope,
                                                                   std::string_view plan_name,
                                                                   std::string_view overrides,
                                                                   bool force);

  // --- Suspension (docs/decisions/0025-operators-console.md) ---
  // By a platform operator (the scope acts for the org, as the operator): suspends the org (its
  // routes refused to members and keys alike, 403, from every process's next request) with the
  // operator's `reason`, or lifts its suspension. Audited as org.suspended / org.unsuspended;
  // suspending a suspended org only updates the reason. not_found for a deleted or unknown org.
  // Returns whether the org's state changed.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> set_suspended(const db::Scope& scope,
                                                                   bool suspended,
                                                                   const std::string& reason);

  [[nodiscard]] boost::asio::awaitable<Result<ApiKey>> create_api_key(const db::Scope& scope,
                                                                      const Principal& principal,
                                                                      const std::string& name,
                                                                      Role role);
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<ApiKey>>> api_keys(const db::Scope& scope,
                                                                             const Access& access);
  [[nodiscard]] boost::asio::awaitable<Result<void>> revoke_api_key(const db::Scope& scope,
                                                                    const Principal& principal,
                                                                    std::string_view id_text);

 private:
  struct Locked {
    Org org;
    Role role;
    const plans::Plan* plan;
    std::string overrides;  // the org's own limits (a JSON object)
    plans::Limits limits;   // the plan's, with the overrides
  };
  // In `tx`: locks the org row, then checks the caller may do `action` there.
  [[nodiscard]] boost::asio::awaitable<Result<Locked>> lock(db::Transaction& tx,
                                                            const Principal& principal,
                                                            const db::Uuid& org_id, Action action,
                                                            bool deleted_too = false);
  // In `tx` (the org locked, on plan `from` with `from_overrides`): the plan becomes `plan` with
  // `overrides`, refused when the org holds more than it allows (unless `force`); audited.
  [[nodiscard]] boost::asio::awaitable<Result<PlanState>> apply_plan(
      db::Transaction& tx, const db::Scope& scope, const plans::Plan& from,
      const std::string& from_overrides, const plans::Plan& plan, const std::string& overrides,
      bool force);
  // A 402 unless the org has a seat for one more: members and, when `with_invitations`, pending
  // invitations hold one each.
  [[nodiscard]] boost::asio::awaitable<Result<void>> seat_free(db::Transaction& tx,
                                                               const db::Uuid& org_id,
                                                               const plans::Plan& plan,
                                                               const plans::Limits& limits,
                                                               bool with_invitations);
  // After a commit: this process's cache forgets at once what the NOTIFY tells the others.
  void evict_user(const db::Uuid& user_id);
  void evict_org(const db::Uuid& org_id);
  // In `tx`, when notify_ is on: `draft` about the org to `users`.
  [[nodiscard]] boost::asio::awaitable<Result<void>> tell(db::Transaction& tx,
                                                          const db::Uuid& org_id,
                                                          const notify::Draft& draft,
                                                          std::span<const db::Uuid> users);

  db::Database& db_;
  OrgStore store_;
  OrgOptions options_;
  SessionCache* cache_;
  AccountMail* mail_;
  bool notify_;
};

}  // namespace liftoff::identity
