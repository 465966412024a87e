// The record list cache: an answer is served only at the org state it was made at, and memory
// stays within its bound.
#include "liftoff/records/list_cache.hpp"

#include <gtest/gtest.h>

namespace liftoff::records {
namespace {

TEST(ListCache, ServesAnAnswerOnlyAtTheStateItWasMadeAt) {
  ListCache cache(1 << 20);
  EXPECT_FALSE(cache.find("org/tickets?a", 7));
  cache.store("org/tickets?a", 7, "body at 7");
  EXPECT_EQ(cache.find("org/tickets?a", 7), "body at 7");
  EXPECT_FALSE(cache.find("org/tickets?a", 8));  // the org changed since
  EXPECT_FALSE(cache.find("org/tickets?b", 7));
  cache.store("org/tickets?a", 8, "body at 8");
  EXPECT_EQ(cache.find("org/tickets?a", 8), "body at 8");
  cache.store("org/tickets?a", 7, "late body at 7");  // a slower request must not go back in time
  EXPECT_EQ(cache.find("org/tickets?a", 8), "body at 8");
}

TEST(ListCache, StaysWithinItsBytesLeastRecentlyUsedFirst) {
  ListCache cache(16 * 4096);  // 4 KiB per shard
  std::string body(600, 'x');
  for (int i = 0; i < 2000; ++i) cache.store("key" + std::to_string(i), 1, body);
  int kept = 0;
  for (int i = 0; i < 2000; ++i) kept += cache.find("key" + std::to_string(i), 1).has_value();
  EXPECT_GT(kept, 0);
  EXPECT_LE(kept * 600, 16 * 4096);
  EXPECT_TRUE(cache.find("key1999", 1));  // the newest survive
  EXPECT_FALSE(cache.find("key0", 1));

  ListCache off(0);
  EXPECT_FALSE(off.enabled());
  off.store("k", 1, "b");
  EXPECT_FALSE(off.find("k", 1));
}

TEST(ListCache, CountsLookupsAndEntries) {
  core::Registry registry;
  auto metrics = core::CacheMetrics::in(registry, "list");
  ListCache cache(16 * 4096, metrics);  // 4 KiB per shard
  EXPECT_FALSE(cache.find("a", 1));
  cache.store("a", 1, "one");
  cache.store("a", 2, "two");  // replaced: still one entry
  EXPECT_TRUE(cache.find("a", 2));
  EXPECT_FALSE(cache.find("a", 1));
  EXPECT_EQ(metrics.hits->value(), 1u);
  EXPECT_EQ(metrics.misses->value(), 2u);
  EXPECT_EQ(metrics.entries->value(), 1);

  std::string body(600, 'x');
  for (int i = 0; i < 2000; ++i) cache.store("key" + std::to_string(i), 1, body);
  int kept = 0;
  for (int i = 0; i < 2000; ++i) kept += cache.find("key" + std::to_string(i), 1).has_value();
  kept += cache.find("a", 2).has_value();
  EXPECT_EQ(metrics.entries->value(), kept);  // least recently used ones left and were counted out
}

}  // namespace
}  // namespace liftoff::records
