// The rate limiter against a real Redis 7: two limiters (two processes) share one count through
// the Lua script, and when Redis is killed, paused or slow every decision is still made, at once,
// by the process alone; when Redis is back the counts are shared again.
#include "liftoff/ratelimit/limiter.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <thread>

#include "liftoff/core/metrics.hpp"
#include "support/async.hpp"
#include "support/redis.hpp"

namespace liftoff::ratelimit {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

// A process's limiter on an event loop of its own thread (its Redis connection's loops run there
// for as long as it lives, as on a server's worker).
struct Process {
  explicit Process(const testing::TestRedis& redis) {
    LimiterOptions options;
    options.redis = pubsub::RedisOptions{"127.0.0.1", redis.port(), ""};
    options.redis_timeout = 50ms;  // generous under sanitizers; a hung Redis still costs little
    limiter = std::make_unique<Limiter>(options, metrics);
    thread = std::thread([this] { io.run(); });
  }
  ~Process() {
    asio::post(io, [this] { limiter->stop_worker(0); });
    work.reset();
    thread.join();
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  Decision check(const std::vector<Check>& checks) {
    return asio::co_spawn(io, limiter->check(checks), asio::use_future).get();
  }
  // `count` requests checked at once on the process's event loop (as a worker's ready requests).
  std::vector<Decision> check_together(const std::vector<Check>& checks, int count) {
    std::vector<std::future<Decision>> futures;
    std::promise<void> started;
    asio::post(io, [&] {
      for (int i = 0; i < count; ++i) {
        futures.push_back(asio::co_spawn(io, limiter->check(checks), asio::use_future));
      }
      started.set_value();
    });
    started.get_future().wait();
    std::vector<Decision> decisions;
    for (auto& f : futures) decisions.push_back(f.get());
    return decisions;
  }
  double local_decisions() {
    auto text = metrics.render();
    auto at = text.find("\nliftoff_rate_limit_local_decisions_total ");
    return at == std::string::npos ? -1 : std::stod(text.substr(text.find(' ', at + 1)));
  }
  // Checks until Redis decides again (the first calls after an outage start the reconnect).
  bool reconnects(const std::vector<Check>& probe) {
    return testing::eventually([&] {
      auto before = local_decisions();
      (void)check(probe);
      return local_decisions() == before;
    });
  }

  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  core::Registry metrics;
  std::unique_ptr<Limiter> limiter;
  std::thread thread;
};

TEST(RedisLimiter, TwoProcessesShareOneCount) {
  testing::TestRedis redis;
  ASSERT_TRUE(redis.running());
  Process a(redis), b(redis);
  const std::vector<Check> checks{{"org:shared", {"org", 10}}};
  ASSERT_TRUE(a.reconnects({{"probe:a", {"org", 1'000'000}}}));
  ASSERT_TRUE(b.reconnects({{"probe:b", {"org", 1'000'000}}}));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(a.check(checks).allowed) << i;
    ASSERT_TRUE(b.check(checks).allowed) << i;
  }
  auto refused = a.check(checks);
  EXPECT_FALSE(refused.allowed);
  EXPECT_FALSE(b.check(checks).allowed);
  // The script's arithmetic is the process's: a sixth of a minute until the next request.
  EXPECT_GT(refused.outcomes.at(0).retry_after, 5'000'000);
  EXPECT_LE(refused.outcomes.at(0).retry_after, 6'000'000);
  EXPECT_GT(refused.outcomes.at(0).reset, 59'000'000);
  // The key expires from Redis with its quota: nothing is kept past the window.
  auto ttl = std::stoll(redis.cli("PTTL liftoff:rl:org:shared"));
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 60'002);
}

TEST(RedisLimiter, RequestsReadyTogetherShareOneScriptCallAndAreDecidedInOrder) {
  testing::TestRedis redis;
  ASSERT_TRUE(redis.running());
  Process p(redis);
  ASSERT_TRUE(p.reconnects({{"probe", {"org", 1'000'000}}}));
  auto calls = [&] {
    auto stats = redis.cli("INFO commandstats");
    auto at = stats.find("cmdstat_evalsha:calls=");
    return at == std::string::npos ? 0 : std::stoi(stats.substr(at + 22));
  };
  const auto before = calls();
  const auto local_before = p.local_decisions();
  // 30 requests at once against a quota of 10, each also spending its address's quota of 100.
  const std::vector<Check> checks{{"addr:batch", {"address", 100}}, {"org:batch", {"org", 10}}};
  auto decisions = p.check_together(checks, 30);
  EXPECT_EQ(p.local_decisions(), local_before);  // Redis decided every one
  EXPECT_LT(calls() - before, 30);               // in fewer script calls than requests
  // Decided in order, each seeing what the ones before it spent: the first 10 pass.
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(decisions[i].allowed, i < 10) << i;
    if (i < 10) {
      EXPECT_EQ(decisions[i].outcomes.at(1).remaining, 9 - i) << i;
      EXPECT_EQ(decisions[i].outcomes.at(0).remaining, 99 - i) << i;
    }
  }
  // The refused ones spent nothing: the address has 90 left, and the org key expires with its
  // quota.
  auto address = p.check({{"addr:batch", {"address", 100}}});
  EXPECT_EQ(address.outcomes.at(0).remaining, 89);
  auto ttl = std::stoll(redis.cli("PTTL liftoff:rl:org:batch"));
  EXPECT_GT(ttl, 59'000);
  EXPECT_LE(ttl, 60'002);
}

TEST(RedisLimiter, AKilledOrPausedRedisLeavesTheProcessToDecideAlone) {
  testing::TestRedis redis;
  ASSERT_TRUE(redis.running());
  Process p(redis);
  const std::vector<Check> probe{{"probe", {"org", 1'000'000}}};
  ASSERT_TRUE(p.reconnects(probe));
  const std::vector<Check> checks{{"org:alone", {"org", 3}}};

  redis.kill();
  auto before = p.local_decisions();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(p.check(checks).allowed) << i;
  EXPECT_FALSE(p.check(checks).allowed);  // the process's own count holds the limit
  EXPECT_EQ(p.local_decisions(), before + 4);

  ASSERT_TRUE(redis.restart());
  ASSERT_TRUE(p.reconnects(probe));

  // Paused: connected, silent. A decision waits at most the timeout, then the process decides.
  redis.pause();
  auto started = std::chrono::steady_clock::now();
  auto decided = p.check({{"org:paused", {"org", 5}}});
  auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(decided.allowed);
  EXPECT_LT(waited, 2s);  // the 50 ms timeout, with room for a loaded machine
  // And the next ones do not wait at all: the connection was dropped.
  started = std::chrono::steady_clock::now();
  EXPECT_TRUE(p.check({{"org:paused", {"org", 5}}}).allowed);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  redis.resume();
  EXPECT_TRUE(p.reconnects(probe));
}

TEST(RedisLimiter, TheScriptRefusesAllOrNothing) {
  testing::TestRedis redis;
  ASSERT_TRUE(redis.running());
  Process p(redis);
  ASSERT_TRUE(p.reconnects({{"probe", {"org", 1'000'000}}}));
  const std::vector<Check> both{{"addr:x", {"address", 100}}, {"org:tight", {"org", 1}}};
  EXPECT_TRUE(p.check(both).allowed);
  auto refused = p.check(both);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.outcomes.at(0).retry_after, 0);
  EXPECT_GT(refused.outcomes.at(1).retry_after, 0);
  // The address spent one request before (the allowed one), not two: this second one leaves 98.
  auto address = p.check({{"addr:x", {"address", 100}}});
  EXPECT_EQ(address.outcomes.at(0).remaining, 98);
}

}  // namespace
}  // namespace liftoff::ratelimit
