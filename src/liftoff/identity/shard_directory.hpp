#pragma once
// The shard directory (docs/decisions/0021-tenant-shards.md): which shard holds each organization's
// tenant-plane data, in `orgs.shard` on the control plane: the lookup db::Database routes org
// scopes by, and for the operators' commands, on an administrative connection to the control
// database.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/connection.hpp"
#include "liftoff/db/database.hpp"

namespace liftoff::identity {

struct ShardOrgs {
  std::string shard;
  std::int64_t orgs = 0;     // its organizations, deleted ones (still restorable) included
  std::int64_t deleted = 0;  // of them, deleted and waiting for their purge
};

// The directory's lookup for `database` (Database::use_directory): `orgs.shard` of one org, read
// on the control plane's primary (right after a move's switch, its new shard).
[[nodiscard]] db::ShardDirectory shard_directory(db::Database& database);

// The organizations of every shard that holds at least one, by shard name.
[[nodiscard]] boost::asio::awaitable<Result<std::vector<ShardOrgs>>> orgs_per_shard(
    db::Connection& control, db::Deadline deadline);

}  // namespace liftoff::identity
