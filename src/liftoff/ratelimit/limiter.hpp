#pragma once
// Rate limits across the cluster (docs/decisions/0017-rate-limits.md): each request's checks (its
// client address, its session or API key, its organization) go to Redis in one round trip, a Lua
// script that runs GCRA (gcra.hpp) on every key atomically with Redis's clock, so every process
// shares one count. The requests a worker's event loop has ready at once share one script call
// (a batch: one command, one reply, one Lua invocation), decided in their order. When Redis is not
// configured, down, or slower than `redis_timeout`, the process decides alone from its own table: a
// request is never failed because Redis is gone, and each process then allows each key its whole
// quota (N processes: up to N times it) until Redis is back.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "liftoff/pubsub/redis_channel.hpp"
#include "liftoff/ratelimit/gcra.hpp"

namespace liftoff::core {
class Registry;
class Counter;
}  // namespace liftoff::core
namespace liftoff::pubsub {
class RedisConnection;
}

namespace liftoff::ratelimit {

struct LimiterOptions {
  std::optional<pubsub::RedisOptions> redis;  // none: every decision is the process's own
  std::chrono::microseconds redis_timeout{std::chrono::milliseconds(5)};
  std::size_t threads = 1;  // worker event loops (one Redis connection each)
  std::size_t local_max_keys = 100'000;
};

class Limiter {
 public:
  Limiter(LimiterOptions options, core::Registry& metrics);
  ~Limiter();
  Limiter(const Limiter&) = delete;
  Limiter& operator=(const Limiter&) = delete;

  // Decides the request: allowed (and counted against each key) or refused (counting nothing).
  // Run on a worker's event loop (core::this_worker()); never fails.
  [[nodiscard]] boost::asio::awaitable<Decision> check(std::span<const Check> checks);

  // The worker's event loop starts: its Redis connection starts connecting (so the first requests
  // find it up).
  void start_worker(std::size_t worker, const boost::asio::any_io_executor& executor);
  // The server drains: every worker's Redis connection closes on its own event loop (which may
  // then run out of work and stop); decisions after it are the process's own.
  void drain();
  // The worker's event loop is stopping: its Redis connection closes (before the loop is gone).
  void stop_worker(std::size_t worker);

  // The Lua script Redis runs (exposed for its test).
  [[nodiscard]] static std::string_view script();

 private:
  class Batch;
  [[nodiscard]] Decision local(std::span<const Check> checks);
  // Sends the batch as one script call and records its decisions (none when Redis did not
  // answer in time or answered something else).
  boost::asio::awaitable<void> send(std::size_t worker, Batch& batch);
  std::shared_ptr<pubsub::RedisConnection>& connection(
      std::size_t worker, const boost::asio::any_io_executor& executor);

  LimiterOptions options_;
  LocalLimiter local_;
  std::string script_sha_;
  std::vector<std::shared_ptr<pubsub::RedisConnection>> connections_;  // per worker, made on use
  std::vector<boost::asio::any_io_executor> executors_;  // per worker, from start_worker
  std::vector<std::shared_ptr<Batch>> forming_;          // per worker: the batch requests join now
  core::Counter& allowed_;
  core::Counter& refused_;
  core::Counter& local_decisions_;
};

}  // namespace liftoff::ratelimit
