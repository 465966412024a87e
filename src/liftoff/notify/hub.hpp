#pragma once
// Wakes notification streams: every process LISTENs on `liftoff_notifications`, where each change
// to a user's feed (a delivery, a notification marked read) NOTIFYs the user's id at commit, and
// wakes that user's streams open in the process. A stream then reads what it has not shown from
// the feed itself (Notifications::after), so a notification is never lost with a wake-up: while
// the listening connection is down none arrive, and on every (re)connect the hub wakes every
// stream to read again.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/connection.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::notify {

struct HubOptions {
  std::size_t max_streams = 10'000;  // per process
  std::size_t max_per_user = 20;     // per user, per process (tabs, devices)
  std::size_t max_per_client = 100;  // per client address, per process
};

// One open stream's bell. The hub rings it from its own thread; `on_ring` runs on the stream's
// executor (several rings before it runs make one call).
class Bell : public std::enable_shared_from_this<Bell> {
 public:
  Bell(db::Uuid user, std::string client, boost::asio::any_io_executor executor)
      : user_(user), client_(std::move(client)), executor_(std::move(executor)) {}
  [[nodiscard]] const db::Uuid& user() const { return user_; }
  [[nodiscard]] const std::string& client() const { return client_; }
  // On the stream's executor; an empty function stops the calls.
  void on_ring(std::function<void()> ring) { on_ring_ = std::move(ring); }
  void ring();

 private:
  db::Uuid user_;
  std::string client_;
  boost::asio::any_io_executor executor_;
  std::mutex mutex_;
  bool posted_ = false;
  std::function<void()> on_ring_;  // touched on executor_ only
};

class Hub {
 public:
  Hub(db::ConnectOptions listen, HubOptions options)
      : listen_(std::move(listen)), options_(options) {}

  // too_many_requests past max_per_user or max_per_client, unavailable past max_streams.
  [[nodiscard]] Result<void> subscribe(const std::shared_ptr<Bell>& bell);
  void unsubscribe(const std::shared_ptr<Bell>& bell);
  // The feed of the user whose id is `user_text` changed: rings their bells here.
  void changed(std::string_view user_text);
  void ring_all();

  // LISTENs until stop(). Spawn on one worker.
  [[nodiscard]] boost::asio::awaitable<void> run();
  void stop();

 private:
  db::ConnectOptions listen_;
  HubOptions options_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Bell>>> users_;  // by user id text
  std::unordered_map<std::string, std::size_t> clients_;
  std::size_t streams_ = 0;
  bool stopping_ = false;
};

}  // namespace liftoff::notify
