#include "liftoff/identity/password_hasher.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "support/async.hpp"

namespace liftoff::identity {
namespace {
namespace asio = boost::asio;
using testing::block_on;

// Small parameters keep the unit tests fast; production uses the defaults.
PasswordHashOptions fast(std::size_t max_queue = 64) {
  PasswordHashOptions o;
  o.ops_limit = 1;
  o.mem_limit = 8 * 1024;
  o.threads = 2;
  o.max_queue = max_queue;
  return o;
}

TEST(PasswordHasher, HashesWithArgon2idAndVerifies) {
  PasswordHasher hasher(fast());
  block_on([&]() -> asio::awaitable<void> {
    // Named strings, not temporaries, in co_await expressions (GCC 12, see Params::none()).
    const std::string password = "correct horse battery staple";
    const std::string wrong = "correct horse battery stapler";
    const std::string x = "x", not_a_hash = "not a hash";
    auto h = co_await hasher.hash(password);
    CO_ASSERT_TRUE(h);
    EXPECT_EQ(h->rfind("$argon2id$", 0), 0u) << *h;
    auto again = co_await hasher.hash(password);
    EXPECT_NE(*h, *again);  // salted
    auto good = co_await hasher.verify(password, *h);
    EXPECT_TRUE(good->matches);
    EXPECT_FALSE(good->needs_rehash);
    auto bad = co_await hasher.verify(wrong, *h);
    EXPECT_FALSE(bad->matches);
    auto garbage = co_await hasher.verify(x, not_a_hash);
    EXPECT_FALSE(garbage->matches);
  }());
}

TEST(PasswordHasher, RaisedParametersAskForARehash) {
  PasswordHasher weak(fast());
  auto stronger = fast();
  stronger.ops_limit = 2;
  PasswordHasher strong(stronger);
  block_on([&]() -> asio::awaitable<void> {
    const std::string password = "a long enough password";
    auto h = co_await weak.hash(password);
    auto v = co_await strong.verify(password, *h);
    EXPECT_TRUE(v->matches);
    EXPECT_TRUE(v->needs_rehash);
  }());
}

TEST(PasswordHasher, DecoyHashNeverMatchesButCostsAVerification) {
  PasswordHasher hasher(fast());
  block_on([&]() -> asio::awaitable<void> {
    const std::string password = "anything at all";
    auto v = co_await hasher.verify(password, hasher.decoy_hash());
    CO_ASSERT_TRUE(v);
    EXPECT_FALSE(v->matches);
  }());
}

TEST(PasswordHasher, ABurstBeyondTheQueueIsRefusedNotQueued) {
  PasswordHasher hasher(fast(/*max_queue=*/4));
  int ok = 0, refused = 0;
  block_on([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < 20; ++i) {
      asio::co_spawn(
          ex,
          [&]() -> asio::awaitable<void> {
            const std::string password = "password number whatever";
            auto h = co_await hasher.hash(password);
            if (h) {
              ++ok;
            } else {
              EXPECT_EQ(h.error().code, Errc::too_many_requests);
              ++refused;
            }
          },
          asio::detached);
    }
    co_return;
  }());
  EXPECT_EQ(ok, 4);  // all 20 were admitted or refused in the same turn of the loop
  EXPECT_EQ(refused, 16);
  EXPECT_EQ(hasher.admitted(), 0u);
}

}  // namespace
}  // namespace liftoff::identity
