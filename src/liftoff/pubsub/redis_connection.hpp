#pragma once
// One pipelined Redis connection of one event loop (a worker's io_context): commands from any
// coroutine of that loop are written as they come, and replies matched to them in order (Redis
// answers a connection's commands in the order it got them). RESP is formatted and parsed by
// hiredis (redisFormatCommandArgv, redisReader); the socket is Asio's, so nothing blocks.
//
// It never makes its caller wait long: while it is not connected a command fails at once (and
// the first one after the back-off starts a new connection in the background); a command without
// a reply within its timeout fails, and the connection is dropped (a hung Redis looks like that),
// failing the commands behind it. `on_connect` runs first on every new connection (SCRIPT LOAD).
// Used only from its event loop's thread.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/pubsub/redis_channel.hpp"

namespace liftoff::pubsub {

struct RedisReply {
  enum class Type { string, status, error, integer, nil, array };
  Type type = Type::nil;
  std::string text;  // string, status, error
  std::int64_t integer = 0;
  std::vector<RedisReply> elements;  // array
};

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  using Clock = std::chrono::steady_clock;
  // Commands sent on every new connection before any other; their replies must not be errors.
  using OnConnect = std::vector<std::vector<std::string>>;
  RedisConnection(boost::asio::any_io_executor executor, RedisOptions options,
                  OnConnect on_connect);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // The reply (a Redis error reply is a reply), or Errc::unavailable: not connected, the
  // connection broke, or no reply within `timeout`.
  [[nodiscard]] boost::asio::awaitable<Result<RedisReply>> command(
      std::vector<std::string> args, std::chrono::microseconds timeout);
  // Starts connecting now (in the background) unless it is connected or connecting.
  void connect_soon();
  // Whether it is connected now.
  [[nodiscard]] bool connected() const { return state_ == State::up; }
  // Closes the socket and fails what waits (the event loop is stopping).
  void close();

 private:
  struct Pending;
  enum class State { down, connecting, up };
  boost::asio::awaitable<void> connect();
  // The loops of the connection of `generation`; each ends once that connection is dropped.
  boost::asio::awaitable<void> read_loop(std::uint64_t generation);
  boost::asio::awaitable<void> write_loop(std::uint64_t generation);
  void enqueue(const std::vector<std::string>& args, const std::shared_ptr<Pending>& pending);
  // Closes the connection and fails what waits on it, with `why` (logged when it was up).
  void drop(std::string_view why, bool quietly = false);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  RedisOptions options_;
  OnConnect on_connect_;
  State state_ = State::down;
  Clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{50};
  std::uint64_t generation_ = 0;  // which connection a loop belongs to
};

}  // namespace liftoff::pubsub
