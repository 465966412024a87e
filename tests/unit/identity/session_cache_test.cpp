#include "liftoff/identity/session_cache.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "liftoff/core/id.hpp"
#include "liftoff/identity/credentials.hpp"
#include "liftoff/identity/revocation_listener.hpp"

namespace liftoff::identity {
namespace {
using namespace std::chrono_literals;

db::Uuid new_id() {
  return db::Uuid{core::new_uuid_v7()};
}

Principal user_principal(std::vector<Membership> memberships = {}) {
  Principal p;
  p.user = User{new_id(), "a@x.io", "A", {}};
  p.credential_id = new_id();
  p.memberships = std::move(memberships);
  return p;
}

db::Timestamp in(std::chrono::seconds d) {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now() +
                                                                 d);
}

std::string new_digest() {
  return token_digest(new_session_token());
}

// A clock the test moves by hand.
std::chrono::steady_clock::time_point g_now{};
std::chrono::steady_clock::time_point test_now() {
  return g_now;
}

TEST(SessionCache, RemembersUntilTheTtl) {
  g_now = std::chrono::steady_clock::time_point{} + 1h;
  SessionCache cache(50ms, 1000, {}, &test_now);
  auto digest = new_digest();
  auto p = user_principal();
  cache.put(digest, p, in(3600s), cache.generation());
  ASSERT_TRUE(cache.get(digest));
  EXPECT_EQ(cache.get(digest)->credential_id, p.credential_id);
  g_now += 49ms;
  EXPECT_TRUE(cache.get(digest));  // still within the TTL
  g_now += 1ms;
  EXPECT_FALSE(cache.get(digest));  // at the TTL: gone
}

TEST(SessionCache, NeverOutlivesTheSession) {
  g_now = std::chrono::steady_clock::time_point{} + 1h;
  SessionCache cache(60s, 1000, {}, &test_now);
  auto expired = new_digest();
  cache.put(expired, user_principal(), in(-1s), cache.generation());
  EXPECT_FALSE(cache.get(expired));
  // A session with 10 s left is kept 10 s (less the moment put() took), not the 60 s TTL.
  auto ending = new_digest();
  cache.put(ending, user_principal(), in(10s), cache.generation());
  EXPECT_TRUE(cache.get(ending));
  g_now += 10s;
  EXPECT_FALSE(cache.get(ending));
}

TEST(SessionCache, EvictsByCredentialAndClears) {
  SessionCache cache(60s, 1000);
  auto a = new_digest(), b = new_digest();
  auto pa = user_principal(), pb = user_principal();
  cache.put(a, pa, in(3600s), cache.generation());
  cache.put(b, pb, in(3600s), cache.generation());
  cache.evict_credential(pa.credential_id);
  EXPECT_FALSE(cache.get(a));
  EXPECT_TRUE(cache.get(b));
  cache.clear();
  EXPECT_FALSE(cache.get(b));
}

TEST(SessionCache, EvictsEverySessionOfAUserAndEveryoneInAnOrg) {
  SessionCache cache(60s, 1000);
  auto org = new_id();
  auto alice = user_principal({{org, "Acme", Role::owner}});
  auto alice_phone = alice;
  alice_phone.credential_id = new_id();
  auto bob = user_principal({{org, "Acme", Role::viewer}});
  auto carol = user_principal();
  auto d1 = new_digest(), d2 = new_digest(), d3 = new_digest(), d4 = new_digest();
  for (auto [d, p] : {std::pair{d1, alice}, {d2, alice_phone}, {d3, bob}, {d4, carol}})
    cache.put(d, p, in(3600s), cache.generation());

  cache.evict_user(alice.user.id);
  EXPECT_FALSE(cache.get(d1));
  EXPECT_FALSE(cache.get(d2));
  EXPECT_TRUE(cache.get(d3));

  cache.evict_org(org);
  EXPECT_FALSE(cache.get(d3));
  EXPECT_TRUE(cache.get(d4));
}

TEST(SessionCache, ALookupThatRacedAnEvictionIsNotCached) {
  SessionCache cache(60s, 1000);
  auto digest = new_digest();
  auto p = user_principal();
  auto before = cache.generation();         // the lookup starts reading the database ...
  cache.evict_user(p.user.id);              // ... a change commits and evicts meanwhile ...
  cache.put(digest, p, in(3600s), before);  // ... so what it read may be stale: not kept
  EXPECT_FALSE(cache.get(digest));
}

TEST(SessionCache, StaysWithinItsCapacity) {
  SessionCache cache(60s, 160);  // 10 per shard
  for (int i = 0; i < 5000; ++i)
    cache.put(new_digest(), user_principal(), in(3600s), cache.generation());
  EXPECT_LE(cache.size(), 160u);
}

// Hits, misses and the entries held are counted, and the count of entries stays true through
// every way an entry leaves: expiry, eviction, a full shard, distrust.
TEST(SessionCache, CountsLookupsAndEntries) {
  core::Registry registry;
  auto metrics = core::CacheMetrics::in(registry, "session");
  SessionCache cache(60s, 160, metrics);  // 10 per shard
  auto a = new_digest(), b = new_digest();
  auto pa = user_principal();
  EXPECT_FALSE(cache.get(a));
  cache.put(a, pa, in(3600s), cache.generation());
  cache.put(a, pa, in(3600s), cache.generation());  // again: still one entry
  cache.put(b, user_principal(), in(3600s), cache.generation());
  EXPECT_TRUE(cache.get(a));
  EXPECT_TRUE(cache.get(b));
  EXPECT_EQ(metrics.hits->value(), 2u);
  EXPECT_EQ(metrics.misses->value(), 1u);
  EXPECT_EQ(metrics.entries->value(), 2);

  cache.evict_credential(pa.credential_id);
  EXPECT_FALSE(cache.get(a));
  EXPECT_EQ(metrics.misses->value(), 2u);
  EXPECT_EQ(metrics.entries->value(), 1);

  for (int i = 0; i < 1000; ++i)
    cache.put(new_digest(), user_principal(), in(3600s), cache.generation());
  EXPECT_EQ(metrics.entries->value(), static_cast<std::int64_t>(cache.size()));

  cache.trust(false);
  EXPECT_EQ(metrics.entries->value(), 0);
  EXPECT_FALSE(cache.get(b));  // untrusted: a miss, the database is asked
  EXPECT_EQ(metrics.misses->value(), 3u);
  EXPECT_NE(registry.render().find("cache_lookups_total{cache=\"session\",result=\"hit\"} 2"),
            std::string::npos);

  g_now = std::chrono::steady_clock::time_point{} + 1h;
  SessionCache short_lived(20ms, 160, metrics, &test_now);
  short_lived.put(a, pa, in(3600s), short_lived.generation());
  EXPECT_EQ(metrics.entries->value(), 1);
  g_now += 20ms;
  EXPECT_FALSE(short_lived.get(a));  // expired: dropped and counted out
  EXPECT_EQ(metrics.entries->value(), 0);
}

// While its revocation listener is not connected an eviction could be missed: the cache then
// neither answers nor keeps anything, and what it held is gone.
TEST(SessionCache, UntrustedItAnswersNothingAndKeepsNothing) {
  SessionCache cache(60s, 1000);
  auto held = new_digest(), offered = new_digest();
  cache.put(held, user_principal(), in(3600s), cache.generation());
  cache.trust(false);
  EXPECT_FALSE(cache.get(held));
  cache.put(offered, user_principal(), in(3600s), cache.generation());
  EXPECT_EQ(cache.size(), 0u);
  cache.trust(true);
  EXPECT_FALSE(cache.get(held));  // cleared, not just hidden
  cache.put(offered, user_principal(), in(3600s), cache.generation());
  EXPECT_TRUE(cache.get(offered));
}

TEST(SessionCache, ZeroTtlDisablesIt) {
  SessionCache cache(0ms, 1000);
  auto digest = new_digest();
  cache.put(digest, user_principal(), in(3600s), cache.generation());
  EXPECT_FALSE(cache.get(digest));
}

TEST(SessionCache, NotificationPayloadsEvictWhatTheyName) {
  SessionCache cache(60s, 1000);
  auto org = new_id();
  auto a = user_principal(), b = user_principal({{org, "Acme", Role::member}}),
       c = user_principal();
  auto da = new_digest(), db_ = new_digest(), dc = new_digest();
  cache.put(da, a, in(3600s), cache.generation());
  cache.put(db_, b, in(3600s), cache.generation());
  cache.put(dc, c, in(3600s), cache.generation());

  evict(cache, a.credential_id.to_string());
  EXPECT_FALSE(cache.get(da));
  evict(cache, "org:" + org.to_string());
  EXPECT_FALSE(cache.get(db_));
  EXPECT_TRUE(cache.get(dc));
  evict(cache, "user:" + c.user.id.to_string());
  EXPECT_FALSE(cache.get(dc));

  cache.put(dc, c, in(3600s), cache.generation());
  evict(cache, "something else");  // not understood: everything goes
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace liftoff::identity
