#pragma once
// What the service integration tests share: one migrated database of their own on the test
// server (and one more per tenant shard they ask for), a Database over them, and users and
// organizations made through the real services.
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "liftoff/core/metrics.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/store.hpp"

namespace liftoff::testing {

// A database `name` created afresh on the test server with every migration applied.
std::string migrated_database(const std::string& name);

class ServiceWorld {
 public:
  // `shards`: names of tenant shards besides main, each a database "<database_name>_<i>" of its
  // own, which the Database routes to as to another cluster (through the shard directory).
  explicit ServiceWorld(const std::string& database_name, std::vector<std::string> shards = {});

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

  std::string url;                      // main's database: the control plane and shard main
  std::vector<std::string> shard_urls;  // of `shards`, in order
  boost::asio::io_context io{1};
  core::Registry metrics;
  std::unique_ptr<db::Database> database;
  std::unique_ptr<identity::IdentityStore> identities;
  std::unique_ptr<identity::OrgService> orgs;
};

}  // namespace liftoff::testing
