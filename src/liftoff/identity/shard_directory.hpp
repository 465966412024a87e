#pragma once
// The shard directory (docs/decisions/0021-tenant-shards.md): which shard holds each organization's
// tenant-plane data, in `orgs.shard` on the control plane: the lookup db::Database routes org
// scopes by, and for the operators' commands, on an administrative connection to the control
// database.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
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

// What a move (shards::Mover) does to the directory, on an administrative connection to the
// control database. Each change NOTIFYs `org:<id>` on the session channel, so every process's
// cache forgets the org's entry at once.
// The org's entry; nullopt: no such org.
[[nodiscard]] boost::asio::awaitable<Result<std::optional<db::DirectoryEntry>>> directory_entry(
    db::Connection& control, const db::Uuid& org, db::Deadline deadline);
// Fences the org's writes for `limit` while it is on `source`; false: it is not there.
[[nodiscard]] boost::asio::awaitable<Result<bool>> fence_org(db::Connection& control,
                                                             const db::Uuid& org,
                                                             const std::string& source,
                                                             std::chrono::milliseconds limit,
                                                             db::Deadline deadline);
// Lifts the org's fence (a move that gives up).
[[nodiscard]] boost::asio::awaitable<Result<void>> unfence_org(db::Connection& control,
                                                               const db::Uuid& org,
                                                               db::Deadline deadline);
// Points the org's entry from `source` to `target` and lifts its fence; false: it was not on
// `source`.
[[nodiscard]] boost::asio::awaitable<Result<bool>> switch_org_shard(db::Connection& control,
                                                                    const db::Uuid& org,
                                                                    const std::string& source,
                                                                    const std::string& target,
                                                                    db::Deadline deadline);

// The organizations of every shard that holds at least one, by shard name.
[[nodiscard]] boost::asio::awaitable<Result<std::vector<ShardOrgs>>> orgs_per_shard(
    db::Connection& control, db::Deadline deadline);

}  // namespace liftoff::identity
