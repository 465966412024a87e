#include "liftoff/identity/org_origins.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace liftoff::identity {
namespace asio = boost::asio;

namespace {
// How often run() looks for stale orgs: a change reaches every process within this (plus the
// NOTIFY's own delivery and one read).
constexpr auto kPollInterval = std::chrono::milliseconds(50);
// After a failed reload, what is stale stays stale, and is tried again this much later.
constexpr auto kRetryInterval = std::chrono::seconds(1);
}  // namespace

bool OrgOrigins::allows(std::string_view org_text, std::string_view origin) const {
  auto org_id = db::Uuid::parse(org_text);
  if (!org_id) return false;
  std::shared_lock lock(lists_mutex_);
  auto it = lists_.find(*org_id);
  return it != lists_.end() &&
         std::find(it->second.begin(), it->second.end(), origin) != it->second.end();
}

void OrgOrigins::stale(const db::Uuid& org_id) {
  std::lock_guard lock(stale_mutex_);
  stale_.insert(org_id);
}

void OrgOrigins::stale_all() {
  std::lock_guard lock(stale_mutex_);
  stale_all_ = true;
  stale_.clear();
}

asio::awaitable<Result<void>> OrgOrigins::reload(bool everything,
                                                 const std::vector<db::Uuid>& org_ids) {
  auto scope = db::Scope::background(db::Tenant::control(), statement_timeout_);
  if (everything) {
    auto all = co_await store_.all_cors_origins(scope);
    if (!all) co_return all.error();
    std::unordered_map<db::Uuid, std::vector<std::string>, db::UuidHash> lists;
    for (auto& [org_id, origins] : *all) lists.emplace(org_id, std::move(origins));
    std::unique_lock lock(lists_mutex_);
    lists_.swap(lists);
    loaded_.store(true, std::memory_order_release);
    co_return Result<void>{};
  }
  for (const auto& org_id : org_ids) {
    auto origins = co_await store_.cors_origins(scope, org_id);
    if (!origins) co_return origins.error();
    std::unique_lock lock(lists_mutex_);
    if (*origins && !(*origins)->empty()) {
      lists_[org_id] = std::move(**origins);
    } else {
      lists_.erase(org_id);
    }
  }
  co_return Result<void>{};
}

asio::awaitable<void> OrgOrigins::run(const std::atomic<bool>& stopping) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!stopping.load(std::memory_order_relaxed)) {
    bool everything = false;
    std::vector<db::Uuid> org_ids;
    {
      std::lock_guard lock(stale_mutex_);
      everything = std::exchange(stale_all_, false);
      org_ids.assign(stale_.begin(), stale_.end());
      stale_.clear();
    }
    auto wait = kPollInterval;
    if (everything || !org_ids.empty()) {
      auto reloaded = co_await reload(everything, org_ids);
      if (!reloaded) {
        spdlog::warn("reloading organizations' CORS origins: {}", reloaded.error().for_log());
        std::lock_guard lock(stale_mutex_);
        stale_all_ = stale_all_ || everything;
        stale_.insert(org_ids.begin(), org_ids.end());
        wait = kRetryInterval;
      }
    }
    timer.expires_after(wait);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace liftoff::identity
