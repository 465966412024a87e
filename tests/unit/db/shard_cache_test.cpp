// The shard directory's cache: trusted only while the session channel is heard, forgetting an org
// that moved, and never keeping a directory read that an eviction overtook.
#include "liftoff/db/shard_cache.hpp"

#include <gtest/gtest.h>

namespace liftoff::db {
namespace {

Uuid org(std::uint8_t n) {
  Uuid id{};
  id.bytes[15] = n;
  return id;
}

// As the session listener does when it (re)connects.
void hear(ShardCache& cache) {
  cache.stale_all();
  cache.listening(true);
}

TEST(ShardCache, KeepsNothingWhileTheChannelIsNotHeard) {
  ShardCache cache(10);
  cache.store(org(1), 1, cache.generation());
  EXPECT_FALSE(cache.find(org(1)));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ShardCache, KeepsWhatWasReadWhileHeard) {
  ShardCache cache(10);
  hear(cache);
  cache.store(org(1), 2, cache.generation());
  EXPECT_EQ(cache.find(org(1)), std::optional<std::size_t>(2));
  EXPECT_FALSE(cache.find(org(2)));
}

TEST(ShardCache, ForgetsAnOrgThatChangedAndEverythingWhenTheChannelIsLost) {
  ShardCache cache(10);
  hear(cache);
  cache.store(org(1), 1, cache.generation());
  cache.store(org(2), 1, cache.generation());
  cache.stale(org(1));
  EXPECT_FALSE(cache.find(org(1)));
  EXPECT_TRUE(cache.find(org(2)));
  cache.listening(false);
  EXPECT_FALSE(cache.find(org(2)));
  cache.listening(true);
  EXPECT_FALSE(cache.find(org(2))) << "what was held before the loss is gone";
}

TEST(ShardCache, DropsAReadThatAnEvictionOvertook) {
  ShardCache cache(10);
  hear(cache);
  auto before = cache.generation();  // a directory read starts (sees the org on its old shard)
  cache.stale(org(1));               // the move's notification arrives meanwhile
  cache.store(org(1), 0, before);    // the read finishes
  EXPECT_FALSE(cache.find(org(1)));
  cache.store(org(1), 1, cache.generation());
  EXPECT_EQ(cache.find(org(1)), std::optional<std::size_t>(1));
}

TEST(ShardCache, StartsOverBeyondItsCapacity) {
  ShardCache cache(2);
  hear(cache);
  cache.store(org(1), 1, cache.generation());
  cache.store(org(2), 1, cache.generation());
  cache.store(org(2), 0, cache.generation());  // an update does not count
  EXPECT_EQ(cache.size(), 2u);
  cache.store(org(3), 1, cache.generation());
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache.find(org(3)));
}

}  // namespace
}  // namespace liftoff::db
