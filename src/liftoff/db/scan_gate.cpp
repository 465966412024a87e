#include "liftoff/db/scan_gate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "liftoff/core/metrics.hpp"

namespace liftoff::db {
namespace asio = boost::asio;

// A scan waiting for its turn: its coroutine sleeps on `timer` until the deadline; admitting it
// sets `admitted` (under the gate's mutex) and moves the timer's expiry to the past on the
// waiter's own executor, which ends the wait whether or not it has begun.
struct ScanGate::Waiter {
  explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;
  bool admitted = false;
};

ScanGate::ScanGate(ScanOptions options, core::Registry* metrics) : options_(options) {
  options_.per_org = std::max<std::size_t>(options_.per_org, 1);
  options_.total = std::max(options_.total, options_.per_org);
  if (!metrics) return;
  running_gauge_ = &metrics->gauge("db_scans_running",
                                   "Statements that scan (exact counts, unindexed filters, "
                                   "searches) running now, all organizations");
  waiting_gauge_ = &metrics->gauge("db_scans_waiting",
                                   "Scanning statements waiting for their organization's turn");
  refused_ = &metrics->counter("db_scans_refused_total",
                               "Scans refused because their organization had too many waiting",
                               "reason=\"queue_full\"");
  timed_out_ = &metrics->counter("db_scans_refused_total",
                                 "Scans refused because their organization had too many waiting",
                                 "reason=\"deadline\"");
}

ScanGate::~ScanGate() = default;

ScanGate::Ticket& ScanGate::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    release();
    gate_ = other.gate_;
    org_ = other.org_;
    other.gate_ = nullptr;
  }
  return *this;
}

void ScanGate::Ticket::release() {
  if (gate_) gate_->leave(org_);
  gate_ = nullptr;
}

std::size_t ScanGate::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

std::size_t ScanGate::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

asio::awaitable<Result<ScanGate::Ticket>> ScanGate::enter(const Uuid& org, Deadline deadline) {
  auto executor = co_await asio::this_coro::executor;
  std::shared_ptr<Waiter> waiter;
  {
    std::lock_guard lock(mutex_);
    auto& state = orgs_[org];
    if (running_ < options_.total && state.running < options_.per_org && state.waiting.empty()) {
      ++running_;
      ++state.running;
      if (running_gauge_) running_gauge_->set(static_cast<std::int64_t>(running_));
      co_return Ticket(this, org);
    }
    if (state.waiting.size() >= options_.queue_per_org) {
      if (refused_) refused_->inc();
      Error error{Errc::too_many_requests,
                  fmt::format("the organization already has {} database queries that scan "
                              "waiting for their turn; retry once they are answered",
                              state.waiting.size())};
      error.retry_after = std::chrono::seconds(1);
      co_return error;
    }
    waiter = std::make_shared<Waiter>(executor);
    waiter->timer.expires_at(deadline);
    if (state.waiting.empty()) turns_.push_back(org);
    state.waiting.push_back(waiter);
    ++waiting_;
    if (waiting_gauge_) waiting_gauge_->set(static_cast<std::int64_t>(waiting_));
  }
  co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  std::lock_guard lock(mutex_);
  if (waiter->admitted) co_return Ticket(this, org);
  auto& state = orgs_[org];
  std::erase(state.waiting, waiter);
  --waiting_;
  if (waiting_gauge_) waiting_gauge_->set(static_cast<std::int64_t>(waiting_));
  if (state.waiting.empty()) std::erase(turns_, org);
  forget_if_idle(org);
  if (timed_out_) timed_out_->inc();
  co_return make_error(Errc::timeout,
                       "the request's time ran out while it waited behind the organization's "
                       "other database queries that scan");
}

void ScanGate::leave(const Uuid& org) {
  std::lock_guard lock(mutex_);
  --running_;
  --orgs_[org].running;
  admit_waiters();
  forget_if_idle(org);
  if (running_gauge_) running_gauge_->set(static_cast<std::int64_t>(running_));
  if (waiting_gauge_) waiting_gauge_->set(static_cast<std::int64_t>(waiting_));
}

void ScanGate::admit_waiters() {
  // `passed`: organizations looked at since one was admitted, all at their own bound.
  std::size_t passed = 0;
  while (running_ < options_.total && passed < turns_.size()) {
    auto org = turns_.front();
    turns_.pop_front();
    auto& state = orgs_[org];
    if (state.running >= options_.per_org) {
      turns_.push_back(org);
      ++passed;
      continue;
    }
    auto waiter = std::move(state.waiting.front());
    state.waiting.pop_front();
    --waiting_;
    ++state.running;
    ++running_;
    if (!state.waiting.empty()) turns_.push_back(org);
    passed = 0;
    waiter->admitted = true;
    asio::post(waiter->timer.get_executor(),
               [waiter] { waiter->timer.expires_at(Deadline{}); });  // in the past: wakes it
  }
}

void ScanGate::forget_if_idle(const Uuid& org) {
  auto it = orgs_.find(org);
  if (it != orgs_.end() && it->second.running == 0 && it->second.waiting.empty()) orgs_.erase(it);
}

}  // namespace liftoff::db
