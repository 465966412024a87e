#include "liftoff/audit/sealer.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "liftoff/audit/audit.hpp"
#include "liftoff/core/metrics.hpp"
#include "liftoff/db/database.hpp"

namespace liftoff::audit {
namespace asio = boost::asio;

Sealer::Sealer(db::Database& database, SealerOptions options, OnSealed on_sealed,
               core::Registry* metrics)
    : database_(database), options_(options), on_sealed_(std::move(on_sealed)) {
  if (metrics) {
    sealed_events_ = &metrics->counter("audit_sealed_events_total",
                                       "Audit events this process sealed into their chains");
    failed_rounds_ = &metrics->counter("audit_seal_failures_total",
                                       "Sealing rounds that failed (retried at the next round)");
  }
}

void Sealer::wake() {
  std::lock_guard lock(mutex_);
  if (woken_) return;
  woken_ = true;
  if (executor_) {
    asio::post(*executor_, [this] {
      if (timer_) timer_->cancel();
    });
  }
}

asio::awaitable<bool> Sealer::round() {
  {
    std::lock_guard lock(mutex_);
    woken_ = false;
  }
  // Each shard's chains, one shard after the other; a shard that fails does not hold the others.
  bool more = false;
  bool failed = false;
  const auto& shards = database_.shards();
  for (std::size_t shard = 0; shard < shards.size(); ++shard) {
    auto scope = db::Scope::background(db::Tenant::every_org_on(shard), options_.statement_timeout);
    auto sealed = co_await seal(database_, scope, options_.max_per_org);
    if (!sealed) {
      if (failed_rounds_) failed_rounds_->inc();
      if (!failing_)
        spdlog::warn("sealing audit events on shard {} (retried every {} ms): {}", shards[shard],
                     options_.interval.count(), sealed.error().for_log());
      failed = true;
      continue;
    }
    for (const auto& chain : *sealed) {
      if (sealed_events_) sealed_events_->inc(chain.sealed);
      if (on_sealed_) on_sealed_(chain.org_id, chain.last_seq);
      more = more || chain.sealed >= options_.max_per_org;
    }
  }
  if (failing_ && !failed) spdlog::info("sealing audit events again");
  failing_ = failed;
  co_return more;
}

asio::awaitable<void> Sealer::run(const std::atomic<bool>& stopping) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  {
    std::lock_guard lock(mutex_);
    executor_ = executor;
    timer_ = &timer;
  }
  for (;;) {
    bool last = stopping.load(std::memory_order_relaxed);
    bool more = co_await round();
    if (last) break;
    bool woken = false;
    {
      std::lock_guard lock(mutex_);
      woken = woken_;
    }
    if (more || woken) continue;
    // Until wake() cancels the wait, or `interval`.
    timer.expires_after(options_.interval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  std::lock_guard lock(mutex_);
  executor_.reset();
  timer_ = nullptr;
}

}  // namespace liftoff::audit
