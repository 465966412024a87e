#include "integration/services_support.hpp"

#include <gtest/gtest.h>

#include "liftoff/audit/audit.hpp"
#include "liftoff/core/id.hpp"
#include "liftoff/db/migrations.hpp"
#include "liftoff/identity/shard_directory.hpp"
#include "liftoff/jobs/queue.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"

namespace liftoff::testing {
namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string migrated_database(const std::string& name) {
  const auto url = fresh_database(name);
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await connect_test(url);
    CO_ASSERT_TRUE(conn);
    auto applied =
        co_await db::migrate_up(*conn, db::embedded_migrations(), db::deadline_after(30s));
    EXPECT_TRUE(applied) << (applied ? "" : applied.error().for_log());
  }());
  return url;
}

ServiceWorld::ServiceWorld(const std::string& database_name, std::vector<std::string> shards)
    : url(migrated_database(database_name)) {
  db::DatabaseOptions options;
  options.connect = {url, {}, "liftoff-test"};
  for (std::size_t i = 0; i < shards.size(); ++i) {
    shard_urls.push_back(migrated_database(database_name + "_" + std::to_string(i + 1)));
    options.shards.push_back({shards[i], shard_urls.back(), {}});
  }
  database = std::make_unique<db::Database>(options, metrics, 1);
  database->use_directory(identity::shard_directory(*database));
  audit::receive_relayed(*database);
  jobs::receive_relayed(*database);
  identities = std::make_unique<identity::IdentityStore>(*database);
  orgs = std::make_unique<identity::OrgService>(*database, identity::OrgOptions{});
}

db::Scope ServiceWorld::scope_of(const identity::Principal& principal,
                                 const std::optional<db::Uuid>& org) {
  db::Scope scope{org ? db::Tenant::org(*org) : db::Tenant::control(),
                  db::deadline_after(10s),
                  {"user", principal.actor_id(), "127.0.0.1", "services-test", "test"},
                  std::nullopt};
  return scope;
}

asio::awaitable<ServiceWorld::Owner> ServiceWorld::new_owner(const std::string& email) {
  Owner owner;
  owner.principal.kind = identity::Principal::Kind::user;
  auto id = db::Uuid{core::new_uuid_v7()};
  auto user = co_await identities->create_user(scope_of(owner.principal, std::nullopt), id, email,
                                               "Test User", "not-a-real-hash");
  EXPECT_TRUE(user) << (user ? "" : user.error().for_log());
  if (!user) co_return owner;
  owner.principal.user = *user;
  auto org = co_await orgs->create(scope_of(owner.principal, std::nullopt), owner.principal,
                                   "Org of " + email);
  EXPECT_TRUE(org) << (org ? "" : org.error().for_log());
  if (!org) co_return owner;
  owner.org = *org;
  owner.principal.memberships.push_back({org->id, org->name, identity::Role::owner});
  co_return owner;
}

asio::awaitable<Result<identity::Org>> ServiceWorld::join(const Owner& owner, Owner& who,
                                                          identity::Role role) {
  auto invitation = co_await orgs->invite(scope_of(owner.principal, owner.org.id), owner.principal,
                                          who.principal.user.email, role);
  if (!invitation) co_return invitation.error();
  auto joined = co_await orgs->accept_invitation(scope_of(who.principal, std::nullopt),
                                                 who.principal, invitation->token);
  if (joined) who.principal.memberships.push_back({owner.org.id, owner.org.name, role});
  co_return joined;
}

}  // namespace liftoff::testing
