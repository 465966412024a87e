// The per-process schema cache: fresh for its TTL, evicted at once by forget, and bounded without
// forgetting everything at the bound (it used to clear itself when full, so a process serving
// more collections than the bound read every collection from the database again and again).
#include "liftoff/records/schema_cache.hpp"

#include <gtest/gtest.h>

#include "liftoff/records/service.hpp"

namespace liftoff::records {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const Collection> named(const std::string& name) {
  auto c = std::make_shared<Collection>();
  c->name = name;
  return c;
}

TEST(SchemaCache, ServesACollectionForItsTtlAndForgetsItOnDemand) {
  SchemaCache cache(5s, 100);
  auto t0 = SchemaCache::Clock::now();
  EXPECT_EQ(cache.find("org/tickets", t0), nullptr);
  cache.store("org/tickets", named("tickets"), t0);
  auto hit = cache.find("org/tickets", t0 + 4s);
  EXPECT_NE(hit, nullptr);
  if (hit) {
    EXPECT_EQ(hit->name, "tickets");
  }
  EXPECT_EQ(cache.find("org/tickets", t0 + 5s), nullptr);  // stale: read it again
  EXPECT_NE(cache.find("org/tickets"), nullptr);           // unless any age will do
  cache.store("org/tickets", named("tickets"), t0 + 5s);
  cache.forget("org/tickets");
  EXPECT_EQ(cache.find("org/tickets", t0 + 6s), nullptr);
  EXPECT_EQ(cache.find("org/tickets"), nullptr);
}

TEST(SchemaCache, AFullCacheMakesRoomForOneByDroppingOne) {
  SchemaCache cache(1min, 1000);
  auto t0 = SchemaCache::Clock::now();
  for (int i = 0; i < 4500; ++i) cache.store("org/c" + std::to_string(i), named("c"), t0);
  EXPECT_EQ(cache.size(), 1000u);
  int kept = 0;
  for (int i = 0; i < 4500; ++i) kept += cache.find("org/c" + std::to_string(i), t0) != nullptr;
  EXPECT_EQ(kept, 1000);
  EXPECT_NE(cache.find("org/c4499", t0), nullptr);  // the newest is always in
  cache.store("org/c4499", named("again"), t0);     // replacing an entry drops nothing
  EXPECT_EQ(cache.size(), 1000u);

  SchemaCache off(0ms, 1000);
  EXPECT_FALSE(off.enabled());
  off.store("org/c", named("c"), t0);
  EXPECT_EQ(off.find("org/c", t0), nullptr);
}

TEST(SchemaCache, CountsLookupsAndEntries) {
  core::Registry registry;
  auto metrics = core::CacheMetrics::in(registry, "schema");
  SchemaCache cache(5s, 10, metrics);
  auto t0 = SchemaCache::Clock::now();
  EXPECT_EQ(cache.find("org/a", t0), nullptr);
  cache.store("org/a", named("a"), t0);
  cache.store("org/a", named("a"), t0);  // replaced: still one entry
  EXPECT_NE(cache.find("org/a", t0), nullptr);
  EXPECT_NE(cache.find("org/a"), nullptr);
  EXPECT_EQ(cache.find("org/a", t0 + 5s), nullptr);  // stale
  EXPECT_EQ(metrics.hits->value(), 2u);
  EXPECT_EQ(metrics.misses->value(), 2u);
  EXPECT_EQ(metrics.entries->value(), 1);
  for (int i = 0; i < 50; ++i) cache.store("org/c" + std::to_string(i), named("c"), t0);
  EXPECT_EQ(metrics.entries->value(), 10);
  cache.forget("org/c49");
  cache.forget("org/c49");  // forgetting what is not there changes nothing
  EXPECT_EQ(metrics.entries->value(), 9);
}

}  // namespace
}  // namespace liftoff::records
