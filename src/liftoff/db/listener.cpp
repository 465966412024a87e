#include "liftoff/db/listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace liftoff::db {
namespace asio = boost::asio;

asio::awaitable<void> listen(ConnectOptions connect, std::string channel, ListenHandlers handlers) {
  constexpr auto kPoll = std::chrono::milliseconds(250);  // how soon stopping() is noticed
  auto executor = co_await asio::this_coro::executor;
  std::chrono::milliseconds backoff{100};
  while (!handlers.stopping()) {
    auto conn =
        co_await Connection::connect(executor, connect, deadline_after(std::chrono::seconds(5)));
    Result<void> listening = conn ? Result<void>{} : Result<void>(conn.error());
    if (listening) {
      std::string sql = "LISTEN " + channel;
      listening = co_await (*conn)->execute_script(sql, deadline_after(std::chrono::seconds(5)));
    }
    if (!listening) {
      spdlog::warn("listening on {}: {}; retrying in {} ms", channel, listening.error().for_log(),
                   backoff.count());
      asio::steady_timer timer(executor, backoff);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    spdlog::info("listening on {}", channel);
    handlers.on_listening();
    while (!handlers.stopping()) {
      auto batch = co_await (*conn)->notifications(deadline_after(kPoll));
      if (!batch) {
        spdlog::warn("listening on {}: lost the connection: {}", channel, batch.error().for_log());
        break;
      }
      if (!batch->empty()) handlers.on_batch(*batch);
    }
    handlers.on_lost();
  }
}

}  // namespace liftoff::db
