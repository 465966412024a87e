#include "liftoff/identity/password_hasher.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <map>

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

TEST(PasswordHasher, OneAddressHoldsOnlyItsShareOfTheQueue) {
  // Issue 19: one address could keep every Argon2 slot busy through signup or password change.
  auto options = fast(/*max_queue=*/8);
  options.max_per_client = 3;
  PasswordHasher hasher(options);
  std::map<std::string, int> ok, refused;
  // No captures: the spawned coroutines outlive the one that spawns them.
  auto one = [](PasswordHasher& hasher, std::map<std::string, int>& ok,
                std::map<std::string, int>& refused, std::string client) -> asio::awaitable<void> {
    const std::string password = "password number whatever";
    auto h = co_await hasher.hash(password, client);
    if (h) {
      ++ok[client];
    } else {
      EXPECT_EQ(h.error().code, Errc::too_many_requests);
      ++refused[client];
    }
  };
  block_on([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < 10; ++i)
      asio::co_spawn(ex, one(hasher, ok, refused, "198.51.100.1"), asio::detached);
    for (int i = 0; i < 2; ++i)
      asio::co_spawn(ex, one(hasher, ok, refused, "198.51.100.2"), asio::detached);
    for (int i = 0; i < 4; ++i)  // not counted by address
      asio::co_spawn(ex, one(hasher, ok, refused, ""), asio::detached);
    co_return;
  }());
  EXPECT_EQ(ok["198.51.100.1"], 3);  // its share; the rest refused at once
  EXPECT_EQ(refused["198.51.100.1"], 7);
  EXPECT_EQ(ok["198.51.100.2"], 2);  // another address still gets in
  EXPECT_EQ(ok[""], 3);              // the queue's own bound: 8 in all
  EXPECT_EQ(refused[""], 1);
  EXPECT_EQ(hasher.admitted(), 0u);

  // Released when done: the address gets its share again.
  auto again = block_on([&]() -> asio::awaitable<Result<std::string>> {
    const std::string password = "password number whatever";
    auto h = co_await hasher.hash(password, "198.51.100.1");
    co_return h;
  }());
  EXPECT_TRUE(again);
}

}  // namespace
}  // namespace liftoff::identity
