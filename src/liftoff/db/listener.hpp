#pragma once
// One PostgreSQL channel, LISTENed to on a connection of its own for as long as `stopping()` is
// false: (re)connects with backoff, and tells its owner when it starts listening (notifications
// sent while it was not are lost: the owner must catch up), each batch that arrives, and when it
// loses the connection.
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <vector>

#include "liftoff/db/connection.hpp"

namespace liftoff::db {

struct ListenHandlers {
  std::function<bool()> stopping;
  std::function<void()> on_listening;
  std::function<void(const std::vector<Notification>&)> on_batch;
  std::function<void()> on_lost;
};

// Returns once stopping() is true; it is checked at least every 250 ms.
[[nodiscard]] boost::asio::awaitable<void> listen(ConnectOptions connect, std::string channel,
                                                  ListenHandlers handlers);

}  // namespace liftoff::db
