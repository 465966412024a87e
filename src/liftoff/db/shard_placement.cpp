#include "liftoff/db/shard_placement.hpp"

#include <algorithm>

#include "liftoff/db/admin.hpp"
#include "liftoff/db/database.hpp"

namespace liftoff::db {
namespace asio = boost::asio;

namespace {
bool open_to_placement(const PlacementOptions& options, const std::string& shard) {
  return std::find(options.reserved.begin(), options.reserved.end(), shard) ==
         options.reserved.end();
}
}  // namespace

Result<void> ShardPlacement::check(const Database& database, const PlacementOptions& options) {
  const auto& shards = database.shards();
  for (const auto& name : options.reserved) {
    if (std::find(shards.begin(), shards.end(), name) == shards.end()) {
      return make_error(Errc::validation_failed,
                        "shard_reserved names " + name + ", which is not a configured shard");
    }
  }
  bool any_open = std::any_of(shards.begin(), shards.end(), [&](const std::string& name) {
    return open_to_placement(options, name);
  });
  if (!any_open) {
    return make_error(Errc::validation_failed,
                      "shard_reserved names every shard: new organizations would have none");
  }
  return {};
}

ShardPlacement::ShardPlacement(Database& database, PlacementOptions options)
    : database_(database), options_(std::move(options)) {
  for (const auto& name : database_.shards()) open_.push_back(open_to_placement(options_, name));
}

asio::awaitable<Result<std::size_t>> ShardPlacement::choose(const Scope& scope) {
  const auto shards = database_.shards().size();
  if (shards == 1) co_return 0;
  bool stale = false;
  {
    std::lock_guard lock(mutex_);
    stale = bytes_.empty() || std::chrono::steady_clock::now() - measured_ >= options_.refresh;
  }
  if (stale) {
    // Concurrent callers may each measure: the last one's figures stay, all of them correct.
    std::vector<std::int64_t> measured(shards, 0);
    for (std::size_t shard = 0; shard < shards; ++shard) {
      if (!open_[shard]) continue;
      auto on_shard = scope.for_tenant(Tenant::every_org_on(shard));
      auto rows = co_await database_.query(Intent::latest, on_shard, kDatabaseBytes, Params());
      if (!rows) co_return rows.error();
      measured[shard] = rows->front().get<std::int64_t>(0);
    }
    std::lock_guard lock(mutex_);
    bytes_ = std::move(measured);
    measured_ = std::chrono::steady_clock::now();
  }
  std::lock_guard lock(mutex_);
  std::size_t chosen = shards;
  for (std::size_t shard = 0; shard < shards; ++shard) {
    if (open_[shard] && (chosen == shards || bytes_[shard] < bytes_[chosen])) chosen = shard;
  }
  bytes_[chosen] += options_.bytes_per_new_org;
  co_return chosen;
}

}  // namespace liftoff::db
