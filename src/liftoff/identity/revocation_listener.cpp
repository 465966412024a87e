#include "liftoff/identity/revocation_listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace liftoff::identity {
namespace asio = boost::asio;

asio::awaitable<void> SessionRevocationListener::run() {
  constexpr auto kPoll = std::chrono::milliseconds(250);  // how soon stop() is noticed
  auto executor = co_await asio::this_coro::executor;
  std::chrono::milliseconds backoff{100};
  while (!stopping_.load(std::memory_order_relaxed)) {
    auto conn = co_await db::Connection::connect(executor, connect_,
                                                 db::deadline_after(std::chrono::seconds(5)));
    Result<void> listening = conn ? Result<void>{} : Result<void>(conn.error());
    if (listening) {
      std::string listen = "LISTEN " + std::string(kSessionsChannel);
      listening =
          co_await (*conn)->execute_script(listen, db::deadline_after(std::chrono::seconds(5)));
    }
    if (!listening) {
      spdlog::warn("session revocation listener: {}; retrying in {} ms", listening.error().detail,
                   backoff.count());
      asio::steady_timer timer(executor, backoff);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    cache_.clear();  // whatever was revoked while we were not listening is forgotten with it
    listening_.store(true, std::memory_order_relaxed);
    while (!stopping_.load(std::memory_order_relaxed)) {
      auto batch = co_await (*conn)->notifications(db::deadline_after(kPoll));
      if (!batch) {
        spdlog::warn("session revocation listener lost its connection: {}", batch.error().detail);
        break;
      }
      for (const auto& n : *batch) cache_.evict_session(n.payload);
    }
    listening_.store(false, std::memory_order_relaxed);
    cache_.clear();
  }
}

}  // namespace liftoff::identity
