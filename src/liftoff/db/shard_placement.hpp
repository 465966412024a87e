#pragma once
// Where a new organization goes (docs/decisions/0021-tenant-shards.md): of the shards open to
// placement, the one with the fewest bytes. Each shard's size is measured on its primary at most
// every `refresh`; between measures, each org this process placed counts `bytes_per_new_org`
// on its shard, so a burst of sign-ups spreads instead of landing on one shard. A reserved shard
// gets no new orgs: an Enterprise org can own one (moved there by the operator).
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"

namespace liftoff::db {

class Database;

struct PlacementOptions {
  std::vector<std::string> reserved;  // shard names (Database::shards()) closed to placement
  std::chrono::milliseconds refresh{60'000};
  std::int64_t bytes_per_new_org = 1 << 20;
};

class ShardPlacement {
 public:
  // Errc::invalid_argument when `reserved` names a shard the database does not have, or every one.
  [[nodiscard]] static Result<void> check(const Database& database,
                                          const PlacementOptions& options);
  ShardPlacement(Database& database, PlacementOptions options);

  // The shard (its index in Database::shards()) for a new org; main while it is the only shard.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> choose(const Scope& scope);

 private:
  Database& database_;
  PlacementOptions options_;
  std::vector<bool> open_;  // per shard: open to placement
  std::mutex mutex_;
  std::vector<std::int64_t> bytes_;  // per shard: as measured, plus what was placed since
  std::chrono::steady_clock::time_point measured_{};
};

}  // namespace liftoff::db
