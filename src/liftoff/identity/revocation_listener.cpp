#include "liftoff/identity/revocation_listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace liftoff::identity {
namespace asio = boost::asio;

void evict(SessionCache& cache, std::string_view payload) {
  auto id_after = [&](std::string_view prefix) -> std::optional<db::Uuid> {
    if (!payload.starts_with(prefix)) return std::nullopt;
    return db::Uuid::parse(payload.substr(prefix.size()));
  };
  if (auto user = id_after(kUserPayloadPrefix)) {
    cache.evict_user(*user);
  } else if (auto org = id_after(kOrgPayloadPrefix)) {
    cache.evict_org(*org);
  } else if (auto credential = db::Uuid::parse(payload)) {
    cache.evict_credential(*credential);
  } else {
    cache.clear();  // not ours to understand: forget everything rather than keep something stale
  }
}

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
      for (const auto& n : *batch) evict(cache_, n.payload);
    }
    listening_.store(false, std::memory_order_relaxed);
    cache_.clear();
  }
}

}  // namespace liftoff::identity
