#pragma once
// One Redis pub/sub channel, published to and subscribed to from a thread of its own (hiredis is
// blocking): publish() never blocks its caller, and messages arrive through `on_message` on that
// thread. The thread reconnects with backoff; `on_subscribed` runs after every (re)subscription,
// since messages published while it was not subscribed are lost (Redis pub/sub keeps nothing).
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "liftoff/core/error.hpp"

namespace liftoff::pubsub {

struct RedisOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string password;  // empty: no AUTH
};

// redis://[:password@]host[:port][/] ; 400-style validation error otherwise.
[[nodiscard]] Result<RedisOptions> parse_redis_url(std::string_view url);

class RedisChannel {
 public:
  using OnMessage = std::function<void(std::string_view message)>;
  RedisChannel(RedisOptions options, std::string channel, OnMessage on_message,
               std::function<void()> on_subscribed);
  ~RedisChannel();  // stops
  RedisChannel(const RedisChannel&) = delete;
  RedisChannel& operator=(const RedisChannel&) = delete;

  void start();
  void stop();
  // Queued and sent by the channel's thread; dropped while Redis is unreachable (subscribers
  // learn nothing was missed only through their own fallback).
  void publish(std::string message);
  [[nodiscard]] bool subscribed() const { return subscribed_.load(std::memory_order_relaxed); }

 private:
  void run();
  void wake();

  RedisOptions options_;
  std::string channel_;
  OnMessage on_message_;
  std::function<void()> on_subscribed_;
  std::mutex mutex_;
  std::vector<std::string> outbox_;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> subscribed_{false};
  std::thread thread_;
};

}  // namespace liftoff::pubsub
