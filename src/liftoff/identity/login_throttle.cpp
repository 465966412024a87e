#include "liftoff/identity/login_throttle.hpp"

#include <algorithm>

namespace liftoff::identity {

LoginThrottle::Entry& LoginThrottle::touch(const std::string& key, Clock::time_point now) {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= options_.max_keys) {
      entries_.erase(recency_.back());
      recency_.pop_back();
    }
    recency_.push_front(key);
    it = entries_.emplace(key, Entry{0, now, {}, recency_.begin()}).first;
  } else {
    recency_.splice(recency_.begin(), recency_, it->second.position);
  }
  auto& e = it->second;
  if (now - e.window_start > options_.window && now >= e.locked_until) {
    e.attempts = 0;
    e.window_start = now;
  }
  return e;
}

unsigned LoginThrottle::record(const std::string& key, unsigned limit, Clock::time_point now) {
  auto& e = touch(key, now);
  ++e.attempts;
  if (e.attempts >= limit) {
    // 30 s at the limit, doubling with each attempt after it, up to max_lock.
    auto doublings = std::min(e.attempts - limit, 20u);
    auto lock =
        std::min<std::chrono::seconds>(options_.first_lock * (1LL << doublings), options_.max_lock);
    e.locked_until = now + lock;
  }
  return e.attempts;
}

LoginThrottle::Attempt LoginThrottle::attempt(const std::string& account, const std::string& ip,
                                              Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto account_key = "account:" + account;
  Clock::time_point until{};
  for (const auto& key : {account_key, "ip:" + ip}) {
    auto it = entries_.find(key);
    if (it != entries_.end()) until = std::max(until, it->second.locked_until);
  }
  if (until > now) return {std::chrono::ceil<std::chrono::seconds>(until - now), {}};
  auto attempts = record(account_key, options_.account_limit, now);
  if (attempts <= 1) return {};
  auto doublings = std::min(attempts - 2, 20u);
  return {std::nullopt, std::min<std::chrono::milliseconds>(
                            options_.first_delay * (1LL << doublings), options_.max_delay)};
}

void LoginThrottle::failed(const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  record("ip:" + ip, options_.ip_limit, now);
}

void LoginThrottle::succeeded(const std::string& account) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find("account:" + account);
  if (it == entries_.end()) return;
  recency_.erase(it->second.position);
  entries_.erase(it);
}

std::size_t LoginThrottle::size() {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace liftoff::identity
