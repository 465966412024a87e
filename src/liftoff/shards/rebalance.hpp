#pragma once
// Rebalancing (`liftoff shard rebalance`, docs/decisions/0021-tenant-shards.md): which orgs to move
// so that the shards' loads come closer to even. A plan only: the moves are Mover's.
#include <cstddef>
#include <string>
#include <vector>

#include "liftoff/db/value.hpp"

namespace liftoff::shards {

// One org's load: what it asked of its shard over the measured window (its API requests, from
// the usage meter).
struct OrgLoad {
  db::Uuid org;
  double load = 0;
};

struct ShardLoad {
  std::string name;
  // Reserved shards (shard_reserved) hold orgs placed there on purpose: they neither give nor
  // take any.
  bool reserved = false;
  std::vector<OrgLoad> orgs;
};

struct PlannedMove {
  db::Uuid org;
  std::string from, to;
  double load = 0;
};

struct RebalanceOptions {
  std::size_t max_moves = 1;  // moves per run: a bounded number at a time
  // Nothing moves while the busiest shard is within this fraction above the mean.
  double tolerance = 0.1;
};

// Repeatedly moves, from the busiest open shard to the idlest, the org whose load comes closest to
// half their difference (so that both end nearer the mean), until the busiest is within tolerance
// of the mean, no org of it would narrow the gap, or max_moves are planned.
[[nodiscard]] std::vector<PlannedMove> plan_rebalance(std::vector<ShardLoad> shards,
                                                      const RebalanceOptions& options);

}  // namespace liftoff::shards
