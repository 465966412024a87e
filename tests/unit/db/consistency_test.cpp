// Positions in the primary's log (the Liftoff-Consistency token) and each node's memory of where
// its recent writers left the log (docs/decisions/0010-read-your-writes.md).
#include "liftoff/db/consistency.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace liftoff::db {
namespace {
using namespace std::chrono_literals;

TEST(Lsn, ParsesAndPrintsPostgresTextForm) {
  auto lsn = Lsn::parse("16/B374D848");
  ASSERT_TRUE(lsn);
  EXPECT_EQ(lsn->value, (std::uint64_t{0x16} << 32) | 0xB374D848u);
  EXPECT_EQ(lsn->to_string(), "16/B374D848");
  EXPECT_EQ(Lsn::parse("0/0")->value, 0u);
  EXPECT_EQ(Lsn::parse("FFFFFFFF/FFFFFFFF")->value, ~std::uint64_t{0});
  EXPECT_EQ(Lsn::parse("0/3000148")->to_string(), "0/3000148");
  EXPECT_EQ(Lsn::parse("a/b")->to_string(), "A/B");  // lower case digits are read too
  EXPECT_LT(*Lsn::parse("0/FFFFFFFF"), *Lsn::parse("1/0"));
}

TEST(Lsn, RefusesAnythingElse) {
  for (const char* bad : {"", "/", "0/", "/0", "0", "0/0/0", "123456789/0", "0/123456789", "g/0",
                          "-1/0", "0/-1", " 0/1", "0/1 ", "0x1/0", "+1/0"}) {
    EXPECT_FALSE(Lsn::parse(bad)) << bad;
  }
}

TEST(Consistency, AWriteRaisesWhatLaterReadsMustReflect) {
  ClusterConsistency c;
  c.read_after = Lsn{100};
  c.wrote(Lsn{50});  // an earlier position never lowers the bar
  EXPECT_EQ(c.read_after, Lsn{100});
  EXPECT_EQ(c.written, Lsn{50});
  c.wrote(Lsn{200});
  EXPECT_EQ(c.read_after, Lsn{200});
  EXPECT_EQ(c.written, Lsn{200});
}

TEST(Consistency, KeepsOnePositionPerCluster) {
  Consistency c(2);
  c.at(1).wrote(Lsn{7});
  EXPECT_EQ(c.at(1).read_after, Lsn{7});
  EXPECT_FALSE(c.at(0).read_after);
  EXPECT_EQ(c.clusters(), 2u);
}

TEST(ConsistencyToken, ABarePositionIsMainsAndNamedPositionsRoundTrip) {
  auto bare = parse_consistency_token("0/3000148");
  ASSERT_TRUE(bare);
  EXPECT_EQ(*bare, (ConsistencyToken{{"main", Lsn{0x3000148}}}));
  EXPECT_EQ(to_string(*bare), "0/3000148");  // what a deployment without shards always sent
  auto named = parse_consistency_token("main:0/16B3748;eu-1:1/9A0");
  ASSERT_TRUE(named);
  EXPECT_EQ(*named, (ConsistencyToken{{"main", Lsn{0x16B3748}},
                                      {"eu-1", Lsn{(std::uint64_t{1} << 32) | 0x9A0}}}));
  EXPECT_EQ(to_string(*named), "main:0/16B3748;eu-1:1/9A0");
  EXPECT_EQ(to_string(ConsistencyToken{{"eu-1", Lsn{1}}}), "eu-1:0/1");
}

TEST(ConsistencyToken, RefusesMalformedTokens) {
  for (const char* bad : {"", ";", "main:", ":0/1", "main:0/1;", "main:0/1;main:0/2",
                          "main:0/1;eu-1", "main=0/1", "main:0/1,eu-1:0/2", "eu-1:x/1"}) {
    EXPECT_FALSE(parse_consistency_token(bad)) << bad;
  }
}

TEST(RecentWrites, RemembersTheFurthestWriteOfEachWriterUntilItExpires) {
  RecentWrites writes(200ms, 1000);
  EXPECT_FALSE(writes.last_write(7));
  writes.wrote(7, Lsn{10});
  writes.wrote(7, Lsn{5});  // a slower concurrent request of the same writer
  writes.wrote(8, Lsn{3});
  EXPECT_EQ(writes.last_write(7), Lsn{10});
  EXPECT_EQ(writes.last_write(8), Lsn{3});
  std::this_thread::sleep_for(250ms);
  EXPECT_FALSE(writes.last_write(7));
  EXPECT_FALSE(writes.last_write(8));
}

TEST(RecentWrites, StaysWithinItsCapacityDroppingTheOldestFirst) {
  RecentWrites writes(1h, 160);  // 10 per shard
  for (std::uint64_t key = 1; key <= 10'000; ++key) writes.wrote(key, Lsn{key});
  EXPECT_LE(writes.size(), 160u + 16u);
  EXPECT_EQ(writes.last_write(10'000), Lsn{10'000});  // the newest is kept
  EXPECT_FALSE(writes.last_write(1));                 // the oldest went
}

}  // namespace
}  // namespace liftoff::db
