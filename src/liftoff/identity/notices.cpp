// OrgService: in-app notifications. Members are told what happened to their membership, in the
// transaction that changed it; an org's app notifies its members through send_notification.
#include "liftoff/identity/notices.hpp"

#include <algorithm>

#include "liftoff/db/database.hpp"
#include "liftoff/identity/org_common.hpp"
#include "liftoff/identity/organizations.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace org_common;

namespace {
// Who did it, as a notification names them: a user by name, else "An API key".
std::string actor_name(const Principal& principal) {
  if (!principal.is_user()) return "An API key";
  return principal.user.name.empty() ? principal.user.email : principal.user.name;
}

json::object about(const Org& org, const Principal& principal) {
  return {{"org_id", org.id.to_string()},
          {"org_name", org.name},
          {"actor_id", principal.actor_id().to_string()},
          {"actor_name", actor_name(principal)}};
}
}  // namespace

notify::Draft role_changed_notice(const Org& org, const Principal& principal, Role from, Role to) {
  auto data = about(org, principal);
  data["previous_role"] = to_string(from);
  data["role"] = to_string(to);
  return {"liftoff.member.role_changed",
          "You are now " + std::string(to_string(to)) + " of " + org.name,
          actor_name(principal) + " changed your role in " + org.name + " from " +
              std::string(to_string(from)) + " to " + std::string(to_string(to)) + ".",
          std::nullopt, std::move(data)};
}

notify::Draft removed_notice(const Org& org, const Principal& principal) {
  return {"liftoff.member.removed", "You were removed from " + org.name,
          actor_name(principal) + " removed you from " + org.name + ".", std::nullopt,
          about(org, principal)};
}

notify::Draft joined_notice(const Org& org, const Principal& joiner, Role role) {
  auto data = about(org, joiner);
  data["user_id"] = joiner.user.id.to_string();
  data["email"] = joiner.user.email;
  data["role"] = to_string(role);
  return {"liftoff.member.joined", actor_name(joiner) + " joined " + org.name,
          actor_name(joiner) + " (" + joiner.user.email + ") accepted an invitation to " +
              org.name + " as " + std::string(to_string(role)) + ".",
          std::nullopt, std::move(data)};
}

asio::awaitable<Result<void>> OrgService::tell(db::Transaction& tx, const db::Uuid& org_id,
                                               const notify::Draft& draft,
                                               std::span<const db::Uuid> users) {
  if (!notify_ || users.empty()) co_return Result<void>{};
  const std::optional<db::Uuid> org{org_id};
  auto told = co_await notify::Notifications::deliver(tx, org, draft, users);
  if (!told) co_return told.error();
  co_return Result<void>{};
}

asio::awaitable<Result<std::size_t>> OrgService::send_notification(
    const db::Scope& scope, const Principal& principal, const notify::Draft& draft,
    const std::vector<db::Uuid>& user_ids, const std::vector<Role>& roles) {
  const auto& org_id = scope.org();
  if (auto valid = notify::validate(draft); !valid) co_return valid.error();
  if (user_ids.empty() && roles.empty()) {
    co_return Error{Errc::validation_failed,
                    "the notification has no recipients",
                    {{"user_ids", "name members here, or roles in roles"}}};
  }
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::notifications_send);
  if (!locked) co_return locked.error();
  auto members = co_await store_.members_among(*tx, org_id, user_ids, roles,
                                               static_cast<std::int64_t>(kMaxRecipients) + 1);
  if (!members) co_return members.error();
  if (members->size() > kMaxRecipients) {
    co_return Error{Errc::validation_failed,
                    "the notification has too many recipients",
                    {{"roles", "select at most " + std::to_string(kMaxRecipients) +
                                   " members; send to them in parts by user_ids"}}};
  }
  std::vector<FieldError> strangers;
  for (std::size_t i = 0; i < user_ids.size(); ++i) {
    if (!std::binary_search(members->begin(), members->end(), user_ids[i],
                            [](const db::Uuid& a, const db::Uuid& b) { return a.bytes < b.bytes; }))
      strangers.push_back({"user_ids[" + std::to_string(i) + "]", "is not a member"});
  }
  if (!strangers.empty()) {
    co_return Error{Errc::validation_failed, "a recipient is not a member of the organization",
                    std::move(strangers)};
  }
  const std::optional<db::Uuid> org{org_id};
  auto told = co_await notify::Notifications::deliver(*tx, org, draft, *members);
  if (!told) co_return told.error();
  audit::Change change{"notification.sent", "notification", draft.kind, std::nullopt,
                       object_text({{"kind", draft.kind},
                                    {"title", draft.title},
                                    {"recipients", static_cast<std::int64_t>(*told)}})};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  co_return *told;
}

}  // namespace liftoff::identity
