#include "liftoff/shards/rebalance.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace liftoff::shards {
namespace {
double total_of(const ShardLoad& shard) {
  return std::accumulate(shard.orgs.begin(), shard.orgs.end(), 0.0,
                         [](double sum, const OrgLoad& org) { return sum + org.load; });
}
}  // namespace

std::vector<PlannedMove> plan_rebalance(std::vector<ShardLoad> shards,
                                        const RebalanceOptions& options) {
  std::erase_if(shards, [](const ShardLoad& shard) { return shard.reserved; });
  std::vector<PlannedMove> plan;
  if (shards.size() < 2) return plan;
  std::vector<double> totals(shards.size());
  std::transform(shards.begin(), shards.end(), totals.begin(), total_of);
  const double mean =
      std::accumulate(totals.begin(), totals.end(), 0.0) / static_cast<double>(shards.size());
  while (plan.size() < options.max_moves) {
    auto busiest =
        static_cast<std::size_t>(std::max_element(totals.begin(), totals.end()) - totals.begin());
    auto idlest =
        static_cast<std::size_t>(std::min_element(totals.begin(), totals.end()) - totals.begin());
    if (totals[busiest] <= mean * (1 + options.tolerance)) break;
    const double gap = totals[busiest] - totals[idlest];
    // The org whose move leaves the pair closest together: load nearest gap / 2, and below gap.
    auto& orgs = shards[busiest].orgs;
    auto best = orgs.end();
    for (auto org = orgs.begin(); org != orgs.end(); ++org) {
      if (org->load <= 0 || org->load >= gap) continue;
      if (best == orgs.end() || std::abs(org->load - gap / 2) < std::abs(best->load - gap / 2))
        best = org;
    }
    if (best == orgs.end()) break;
    plan.push_back({best->org, shards[busiest].name, shards[idlest].name, best->load});
    totals[busiest] -= best->load;
    totals[idlest] += best->load;
    shards[idlest].orgs.push_back(*best);
    orgs.erase(best);
  }
  return plan;
}

}  // namespace liftoff::shards
