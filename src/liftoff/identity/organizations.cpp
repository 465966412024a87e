#include "liftoff/identity/organizations.hpp"

#include <algorithm>
#include <boost/json/array.hpp>

#include "liftoff/core/origin.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/identity/credentials.hpp"
#include "liftoff/identity/org_common.hpp"
#include "liftoff/identity/session_cache.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
using namespace org_common;

namespace {
// Purging an org deletes its tenant-plane rows by cascade: a big tenant's take long.
constexpr auto kPurgeTimeout = std::chrono::minutes(10);

Error org_not_found() {
  return make_error(Errc::not_found, "no such organization");
}

Error role_too_small(Action action) {
  return make_error(Errc::permission_denied, "this needs the " +
                                                 std::string(to_string(minimum_role(action))) +
                                                 " role or higher in the organization");
}
}  // namespace

Result<Access> OrgService::access(const Principal& principal, std::string_view org_text,
                                  Action action) {
  auto org_id = db::Uuid::parse(org_text);
  if (!org_id) return org_not_found();
  const auto* membership = principal.membership_in(*org_id);
  if (!membership) return org_not_found();
  if (membership->suspended) {
    return make_error(Errc::permission_denied,
                      "this organization is suspended; its owners may contact support");
  }
  if (!allows(membership->role, action)) return role_too_small(action);
  return Access{*org_id, membership->role, membership->plan, membership->limits};
}

void OrgService::evict_user(const db::Uuid& user_id) {
  if (cache_) cache_->evict_user(user_id);
}

void OrgService::evict_org(const db::Uuid& org_id) {
  if (cache_) cache_->evict_org(org_id);
}

asio::awaitable<Result<bool>> OrgService::set_suspended(const db::Scope& scope, bool suspended,
                                                        const std::string& reason) {
  const auto& org_id = scope.org();
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto was = co_await store_.set_suspended(*tx, org_id, suspended, reason);
  if (!was) co_return was.error();
  if (!*was) co_return org_not_found();
  if (**was == suspended) {  // the reason may have changed; nothing to record
    auto done = co_await tx->commit();
    if (!done) co_return done.error();
    co_return false;
  }
  // The reason is the operators' own: the org's audit log says only what changed.
  audit::Change change{suspended ? "org.suspended" : "org.unsuspended", "org", org_id.to_string(),
                       object_text({{"suspended", !suspended}}),
                       object_text({{"suspended", suspended}})};
  // Every member's and key's cached memberships carry the suspension: they reload.
  auto notified = co_await store_.notify(*tx, org_payload(org_id));
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  evict_org(org_id);
  co_return true;
}

asio::awaitable<Result<OrgService::Locked>> OrgService::lock(db::Transaction& tx,
                                                             const Principal& principal,
                                                             const db::Uuid& org_id, Action action,
                                                             bool deleted_too) {
  auto locked = co_await store_.lock_org(tx, org_id, principal.actor_id(), !principal.is_user());
  if (!locked) co_return locked.error();
  if (!*locked) co_return org_not_found();
  auto& [org, restorable, role, plan, overrides] = **locked;
  bool deleted = org.deleted_at.has_value();
  if (!role || (deleted && !(deleted_too && restorable))) co_return org_not_found();
  if (!allows(*role, action)) co_return role_too_small(action);
  org.role = *role;
  auto limits = plans::effective_limits(*plan, overrides);
  co_return Locked{std::move(org), *role, plan, std::move(overrides), limits};
}

asio::awaitable<Result<Org>> OrgService::create(const db::Scope& scope, const Principal& principal,
                                                const std::string& name) {
  if (auto problem = name_problem(name)) {
    co_return Error{Errc::validation_failed, "the organization is invalid", {{"name", *problem}}};
  }
  Org org{new_id(), name, {}, {}, {}, {}, Role::owner};
  std::size_t shard = 0;
  if (options_.place_org) {
    auto chosen = co_await options_.place_org(scope);
    if (!chosen) co_return chosen.error();
    shard = *chosen;
  }
  auto org_scope = scope.for_tenant(db::Tenant::org(org.id));
  auto tx = co_await db_.begin(org_scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  tx->placing(org.id, shard);
  auto inserted = co_await store_.insert_org(*tx, org, db_.shards()[shard]);
  if (!inserted) co_return inserted.error();
  auto member = co_await store_.add_member(*tx, org.id, principal.user.id, Role::owner);
  if (!member) co_return member.error();
  auto chain = co_await audit::start_chain(*tx, org.id);
  if (!chain) co_return chain.error();
  audit::Change change{"org.created", "org", org.id.to_string(), std::nullopt,
                       object_text({{"name", name}})};
  auto notified = co_await store_.notify(*tx, user_payload(principal.user.id));
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, org_scope, change);
  if (!event) co_return event.error();
  evict_user(principal.user.id);
  co_return org;
}

asio::awaitable<Result<std::vector<Org>>> OrgService::list(const db::Scope& scope,
                                                           const Principal& principal) {
  co_return co_await store_.orgs_of(scope, principal.user.id);
}

asio::awaitable<Result<Org>> OrgService::get(const db::Scope& scope, const Access& access) {
  auto org = co_await store_.org(scope.control(), access.org_id);
  if (!org) co_return org.error();
  if (!*org) co_return org_not_found();
  (*org)->role = access.role;
  co_return std::move(**org);
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
  auto updated = co_await store_.rename(*tx, org_id, name);
  if (!updated) co_return updated.error();
  org.updated_at = *updated;
  audit::Change change{"org.renamed", "org", org_id.to_string(), object_text({{"name", org.name}}),
                       object_text({{"name", name}})};
  auto notified = co_await store_.notify(*tx, org_payload(org_id));
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  evict_org(org_id);
  org.name = name;
  co_return org;
}

asio::awaitable<Result<std::vector<std::string>>> OrgService::cors_origins(const db::Scope& scope,
                                                                           const Access& access) {
  auto origins = co_await store_.cors_origins(scope.control(), access.org_id);
  if (!origins) co_return origins.error();
  if (!*origins) co_return org_not_found();
  co_return std::move(**origins);
}

asio::awaitable<Result<std::vector<std::string>>> OrgService::set_cors_origins(
    const db::Scope& scope, const Principal& principal, const std::vector<std::string>& origins) {
  const auto& org_id = scope.org();
  Error invalid{Errc::validation_failed, "the origins are invalid", {}};
  if (origins.size() > kMaxCorsOrigins) {
    invalid.fields.push_back(
        {"origins", "may list at most " + std::to_string(kMaxCorsOrigins) + " origins"});
  }
  std::vector<std::string> canonical;
  for (std::size_t i = 0; i < origins.size() && invalid.fields.empty(); ++i) {
    auto origin = core::canonical_origin(origins[i]);
    if (!origin || *origin == "null") {
      invalid.fields.push_back({"origins[" + std::to_string(i) + "]",
                                "is not an origin: scheme://host[:port], without a path"});
    } else if (std::find(canonical.begin(), canonical.end(), *origin) == canonical.end()) {
      canonical.push_back(std::move(*origin));
    }
  }
  if (!invalid.fields.empty()) co_return invalid;
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::org_update);
  if (!locked) co_return locked.error();
  auto before = co_await store_.set_cors_origins(*tx, org_id, canonical);
  if (!before) co_return before.error();
  if (*before == canonical) co_return canonical;  // nothing changes, nothing to record
  auto as_object = [](const std::vector<std::string>& list) {
    return object_text({{"origins", boost::json::array(list.begin(), list.end())}});
  };
  audit::Change change{"org.cors_origins_changed", "org", org_id.to_string(), as_object(*before),
                       as_object(canonical)};
  // Every process reloads the org's origins (OrgOrigins), this one too.
  auto notified = co_await store_.notify(*tx, org_payload(org_id));
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  evict_org(org_id);
  co_return canonical;
}

asio::awaitable<Result<Org>> OrgService::remove(const db::Scope& scope,
                                                const Principal& principal) {
  const auto& org_id = scope.org();
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::org_delete);
  if (!locked) co_return locked.error();
  Org org = std::move(locked->org);
  auto deleted = co_await store_.soft_delete(*tx, org, options_.deletion_grace);
  if (!deleted) co_return deleted.error();
  audit::Change change{"org.deleted", "org", org_id.to_string(), std::nullopt,
                       object_text({{"purge_after", core::format_rfc3339(*org.purge_after)}})};
  auto notified = co_await store_.notify(*tx, org_payload(org_id));
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
  auto updated = co_await store_.restore(*tx, *org_id);
  if (!updated) co_return updated.error();
  org.updated_at = *updated;
  org.deleted_at.reset();
  org.purge_after.reset();
  audit::Change change{"org.restored", "org", org_id->to_string(), std::nullopt, std::nullopt};
  // Members' cached principals left the org out while it was deleted: each is told by user.
  auto members = co_await store_.notify_members(*tx, *org_id);
  if (!members) co_return members.error();
  auto event = co_await audit::append_and_commit(*tx, org_scope, change);
  if (!event) co_return event.error();
  for (const auto& member : *members) evict_user(member);
  co_return org;
}

asio::awaitable<Result<std::size_t>> OrgService::purge_expired(std::size_t limit) {
  std::size_t purged = 0;
  for (; purged < limit; ++purged) {
    // A big tenant's records go with it: its statements may take long.
    auto scope = db::Scope::background(db::Tenant::every_org(), kPurgeTimeout);
    scope.statement_timeout = kPurgeTimeout;
    auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
    if (!tx) co_return tx.error();
    auto next = co_await store_.next_expired(*tx);
    if (!next) co_return next.error();
    if (!*next) break;
    const auto& [org_id, name] = **next;
    // Its tenant data first, while this transaction holds its row (other processes' purges pass
    // over it): an error leaves the org to the next round, which deletes what is left.
    if (options_.purge_tenant) {
      auto tenant = scope.for_tenant(db::Tenant::org(org_id));
      if (auto purged = co_await options_.purge_tenant(tenant); !purged) co_return purged.error();
    }
    auto deleted = co_await store_.purge(*tx, org_id);
    if (!deleted) co_return deleted.error();
    audit::Change change{"org.purged", "org", org_id.to_string(), object_text({{"name", name}}),
                         std::nullopt};
    auto event =
        co_await audit::append_and_commit(*tx, scope.for_tenant(db::Tenant::org(org_id)), change);
    if (!event) co_return event.error();
  }
  co_return purged;
}

}  // namespace liftoff::identity
