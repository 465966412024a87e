// OrgService: members and their roles.
#include "liftoff/db/database.hpp"
#include "liftoff/identity/notices.hpp"
#include "liftoff/identity/org_common.hpp"
#include "liftoff/identity/organizations.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
using namespace org_common;

namespace {
Error no_member() {
  return make_error(Errc::not_found, "no such member");
}

// Removing or demoting an owner must leave one: a conflict with `then` as the way out.
asio::awaitable<Result<void>> keep_an_owner(OrgStore& store, db::Transaction& tx,
                                            const db::Uuid& org_id, std::string_view then) {
  auto owners = co_await store.owner_count(tx, org_id);
  if (!owners) co_return owners.error();
  if (*owners <= 1) {
    co_return make_error(Errc::conflict,
                         "an organization needs at least one owner: make another member owner "
                         "first" +
                             std::string(then));
  }
  co_return Result<void>{};
}
}  // namespace

asio::awaitable<Result<std::vector<Member>>> OrgService::members(
    const db::Scope& scope, const Access& access, const std::optional<db::Uuid>& after,
    std::int32_t limit) {
  co_return co_await store_.members(scope.control(), access.org_id, after.value_or(db::Uuid{}),
                                    limit);
}

asio::awaitable<Result<Member>> OrgService::change_role(const db::Scope& scope,
                                                        const Principal& principal,
                                                        std::string_view user_text, Role role) {
  const auto& org_id = scope.org();
  auto user_id = db::Uuid::parse(user_text);
  if (!user_id) co_return no_member();
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::members_manage);
  if (!locked) co_return locked.error();
  auto found = co_await store_.lock_member(*tx, org_id, *user_id);
  if (!found) co_return found.error();
  if (!*found) co_return no_member();
  auto member = std::move(**found);
  if (!may_manage(locked->role, member.role) || !may_grant(locked->role, role)) {
    co_return make_error(Errc::permission_denied,
                         "a " + std::string(to_string(locked->role)) +
                             " cannot change a role from or to one above their own");
  }
  if (member.role == role) co_return member;
  if (member.role == Role::owner) {
    auto kept = co_await keep_an_owner(store_, *tx, org_id, "");
    if (!kept) co_return kept.error();
  }
  auto updated = co_await store_.set_role(*tx, org_id, *user_id, role);
  if (!updated) co_return updated.error();
  audit::Change change{"member.role_changed", "user", user_id->to_string(), role_json(member.role),
                       role_json(role)};
  auto notified = co_await store_.notify(*tx, user_payload(*user_id));
  if (!notified) co_return notified.error();
  const auto notice = role_changed_notice(locked->org, principal, member.role, role);
  auto told = co_await tell(*tx, org_id, notice, std::span(&*user_id, 1));
  if (!told) co_return told.error();
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
  if (!user_id) co_return no_member();
  bool leaving = principal.is_user() && principal.user.id == *user_id;
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked =
      co_await lock(*tx, principal, org_id, leaving ? Action::org_read : Action::members_manage);
  if (!locked) co_return locked.error();
  auto found = co_await store_.lock_member(*tx, org_id, *user_id);
  if (!found) co_return found.error();
  if (!*found) co_return no_member();
  const auto& member = **found;
  if (!leaving && !may_manage(locked->role, member.role)) {
    co_return make_error(Errc::permission_denied,
                         "a " + std::string(to_string(locked->role)) +
                             " cannot remove a member whose role is above their own");
  }
  if (member.role == Role::owner) {
    auto kept = co_await keep_an_owner(store_, *tx, org_id, ", or delete the organization");
    if (!kept) co_return kept.error();
  }
  auto deleted = co_await store_.delete_member(*tx, org_id, *user_id);
  if (!deleted) co_return deleted.error();
  audit::Change change{leaving ? "member.left" : "member.removed", "user", user_id->to_string(),
                       role_json(member.role), std::nullopt};
  auto notified = co_await store_.notify(*tx, user_payload(*user_id));
  if (!notified) co_return notified.error();
  if (!leaving) {
    const auto notice = removed_notice(locked->org, principal);
    auto told = co_await tell(*tx, org_id, notice, std::span(&*user_id, 1));
    if (!told) co_return told.error();
  }
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  evict_user(*user_id);
  co_return Result<void>{};
}

}  // namespace liftoff::identity
