#include "liftoff/identity/session_cache.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "liftoff/core/id.hpp"
#include "liftoff/identity/credentials.hpp"

namespace liftoff::identity {
namespace {
using namespace std::chrono_literals;

CachedSession session() {
  return {
      User{db::Uuid{core::new_uuid_v7()}, "a@x.io", "A", {}}, db::Uuid{core::new_uuid_v7()}, {}};
}

db::Timestamp in(std::chrono::seconds d) {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now() +
                                                                 d);
}

TEST(SessionCache, RemembersUntilTheTtl) {
  SessionCache cache(50ms, 1000);
  auto digest = token_digest(new_session_token());
  auto s = session();
  cache.put(digest, s, in(3600s));
  ASSERT_TRUE(cache.get(digest));
  EXPECT_EQ(cache.get(digest)->session_id, s.session_id);
  std::this_thread::sleep_for(80ms);
  EXPECT_FALSE(cache.get(digest));
}

TEST(SessionCache, NeverOutlivesTheSession) {
  SessionCache cache(60s, 1000);
  auto digest = token_digest(new_session_token());
  cache.put(digest, session(), in(-1s));  // already expired
  EXPECT_FALSE(cache.get(digest));
}

TEST(SessionCache, EvictsBySessionIdAndClears) {
  SessionCache cache(60s, 1000);
  auto a = token_digest(new_session_token()), b = token_digest(new_session_token());
  auto sa = session(), sb = session();
  cache.put(a, sa, in(3600s));
  cache.put(b, sb, in(3600s));
  cache.evict_session(sa.session_id.to_string());
  EXPECT_FALSE(cache.get(a));
  EXPECT_TRUE(cache.get(b));
  cache.clear();
  EXPECT_FALSE(cache.get(b));
}

TEST(SessionCache, StaysWithinItsCapacity) {
  SessionCache cache(60s, 160);  // 10 per shard
  for (int i = 0; i < 5000; ++i) cache.put(token_digest(new_session_token()), session(), in(3600s));
  EXPECT_LE(cache.size(), 160u);
}

TEST(SessionCache, ZeroTtlDisablesIt) {
  SessionCache cache(0ms, 1000);
  auto digest = token_digest(new_session_token());
  cache.put(digest, session(), in(3600s));
  EXPECT_FALSE(cache.get(digest));
}

}  // namespace
}  // namespace liftoff::identity
