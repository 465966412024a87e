// OrgService: an organization's API keys.
#include "liftoff/db/database.hpp"
#include "liftoff/identity/credentials.hpp"
#include "liftoff/identity/org_common.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/session_cache.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
using namespace org_common;

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
  auto inserted = co_await store_.insert_api_key(*tx, org_id, key, token_digest(key.key));
  if (!inserted) co_return inserted.error();
  audit::Change change{"api_key.created", "api_key", key.id.to_string(), std::nullopt,
                       object_text({{"name", name}, {"role", to_string(role)}})};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  co_return key;
}

asio::awaitable<Result<std::vector<ApiKey>>> OrgService::api_keys(const db::Scope& scope,
                                                                  const Access& access) {
  co_return co_await store_.api_keys(scope.control(), access.org_id);
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
  auto revoked = co_await store_.revoke_api_key(*tx, *id, org_id);
  if (!revoked) co_return revoked.error();
  if (!*revoked) co_return make_error(Errc::not_found, "no such API key");
  const auto& [name, role] = **revoked;
  audit::Change change{"api_key.revoked", "api_key", id->to_string(),
                       object_text({{"name", name}, {"role", to_string(role)}}), std::nullopt};
  auto notified = co_await store_.notify(*tx, id->to_string());
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  if (cache_) cache_->evict_credential(*id);
  co_return Result<void>{};
}

}  // namespace liftoff::identity
