// The pace of the mover's copy and clean-up (shards::pause_after); the moves themselves are
// tested against real clusters in tests/integration/db/shard_move_pgtest.cpp.
#include "liftoff/shards/move.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace liftoff::shards {
namespace {

// The mover's copy and clean-up keep to their share of the time: a batch that took t is followed
// by a pause of t * (1 - share) / share.
TEST(MovePace, APausesKeepTheWorkToItsShare) {
  using std::chrono::milliseconds;
  using std::chrono::nanoseconds;
  EXPECT_EQ(pause_after(milliseconds(40), 0.5), milliseconds(40));
  EXPECT_EQ(pause_after(milliseconds(40), 0.25), milliseconds(120));
  EXPECT_EQ(pause_after(milliseconds(40), 0.8), milliseconds(10));
  EXPECT_EQ(pause_after(milliseconds(40), 1.0), nanoseconds::zero());
  EXPECT_EQ(pause_after(nanoseconds::zero(), 0.5), nanoseconds::zero());
  // Out of range (the command line refuses these): no pause rather than an endless one.
  EXPECT_EQ(pause_after(milliseconds(40), 0.0), nanoseconds::zero());
}

}  // namespace
}  // namespace liftoff::shards
