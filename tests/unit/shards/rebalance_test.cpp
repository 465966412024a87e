// The rebalancing plan (shards::plan_rebalance): moves from the busiest open shard to the idlest,
// the org nearest half their gap first, bounded, never touching reserved shards, and nothing when
// the shards are within tolerance or no org would narrow the gap.
#include "liftoff/shards/rebalance.hpp"

#include <gtest/gtest.h>

namespace liftoff::shards {
namespace {

db::Uuid org(int n) {
  db::Uuid id;
  id.bytes[15] = static_cast<std::uint8_t>(n);
  return id;
}

ShardLoad shard(std::string name, std::vector<double> loads, int first_org, bool reserved = false) {
  ShardLoad s{std::move(name), reserved, {}};
  for (std::size_t i = 0; i < loads.size(); ++i)
    s.orgs.push_back({org(first_org + static_cast<int>(i)), loads[i]});
  return s;
}

TEST(Rebalance, MovesTheOrgNearestHalfTheGapFromTheBusiestToTheIdlest) {
  // main 100 (60 + 30 + 10), eu-1 20: the gap is 80, and 30 is the load nearest half of it (main
  // 70, eu-1 50 after it; moving 60 would leave 40 and 80).
  auto plan = plan_rebalance({shard("main", {60, 30, 10}, 1), shard("eu-1", {20}, 10)}, {});
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].org, org(2));
  EXPECT_EQ(plan[0].from, "main");
  EXPECT_EQ(plan[0].to, "eu-1");
  EXPECT_EQ(plan[0].load, 30);
}

TEST(Rebalance, PlansAtMostMaxMovesAndStopsWithinTolerance) {
  RebalanceOptions options;
  options.max_moves = 10;
  auto plan = plan_rebalance(
      {shard("main", {10, 10, 10, 10, 10, 10}, 1), shard("eu-1", {}, 10), shard("eu-2", {}, 20)},
      options);
  // 60 over three shards: two moves of 10 to each idle shard leave 20 / 20 / 20.
  ASSERT_EQ(plan.size(), 4u);
  int to_eu1 = 0, to_eu2 = 0;
  for (const auto& m : plan) {
    EXPECT_EQ(m.from, "main");
    (m.to == "eu-1" ? to_eu1 : to_eu2)++;
  }
  EXPECT_EQ(to_eu1, 2);
  EXPECT_EQ(to_eu2, 2);
  options.max_moves = 1;
  EXPECT_EQ(
      plan_rebalance({shard("main", {10, 10, 10, 10, 10, 10}, 1), shard("eu-1", {}, 10)}, options)
          .size(),
      1u);
  EXPECT_TRUE(plan_rebalance({shard("main", {52}, 1), shard("eu-1", {48}, 10)}, options).empty());
}

TEST(Rebalance, LeavesReservedShardsAndOrgsTooBigToHelpAlone) {
  // The reserved shard is idle, but takes nothing; the one open shard has nowhere to go.
  EXPECT_TRUE(plan_rebalance({shard("main", {50, 50}, 1), shard("vip", {}, 10, true)}, {}).empty());
  // One org of 90 against 10: moving it would only swap the imbalance.
  EXPECT_TRUE(plan_rebalance({shard("main", {90}, 1), shard("eu-1", {10}, 10)}, {}).empty());
  // A reserved busy shard gives nothing either.
  EXPECT_TRUE(
      plan_rebalance(
          {shard("vip", {500, 5}, 1, true), shard("main", {10}, 10), shard("eu-1", {10}, 20)}, {})
          .empty());
}

}  // namespace
}  // namespace liftoff::shards
