// redis_url parsing: what the event hub connects to.
#include <gtest/gtest.h>

#include "liftoff/pubsub/redis_channel.hpp"

namespace liftoff::pubsub {
namespace {

TEST(RedisUrl, ReadsHostPortAndPassword) {
  auto plain = parse_redis_url("redis://127.0.0.1");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, 6379);
  EXPECT_EQ(plain->password, "");
  auto full = parse_redis_url("redis://user:p%4ss@cache.internal:6380/");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->host, "cache.internal");
  EXPECT_EQ(full->port, 6380);
  EXPECT_EQ(full->password, "p%4ss");
  EXPECT_EQ(parse_redis_url("redis://:secret@h:1")->password, "secret");
  for (auto bad :
       {"http://h", "redis://", "redis://h:0", "redis://h:70000", "redis://h:x", "redis://:pw@"}) {
    EXPECT_FALSE(parse_redis_url(bad)) << bad;
  }
}

}  // namespace
}  // namespace liftoff::pubsub
