#pragma once
// What the service integration tests share: one migrated database of their own on the test
// server, a Database over it, and users and organizations made through the real services.
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "liftoff/core/metrics.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/store.hpp"

namespace liftoff::testing {

// A database `name` created afresh on the test server with every migration applied.
std::string migrated_database(const std::string& name);

class ServiceWorld {
 public:
  explicit ServiceWorld(const std::string& database_name);

  // A user with its own org (the user owns it): the principal and the org's scope.
  struct Owner {
    identity::Principal principal;
    identity::Org org;
  };
  boost::asio::awaitable<Owner> new_owner(const std::string& email);
  // `who` joins `owner`'s org with `role` through an invitation it accepts; the org it joined.
  boost::asio::awaitable<Result<identity::Org>> join(const Owner& owner, Owner& who,
                                                     identity::Role role);
  // The scope of a request by `principal` for `org` (or the control plane).
  [[nodiscard]] static db::Scope scope_of(const identity::Principal& principal,
                                          const std::optional<db::Uuid>& org);

  boost::asio::io_context io{1};
  core::Registry metrics;
  std::unique_ptr<db::Database> database;
  std::unique_ptr<identity::IdentityStore> identities;
  std::unique_ptr<identity::OrgService> orgs;
};

}  // namespace liftoff::testing
