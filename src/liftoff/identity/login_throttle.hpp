#pragma once
// Guessing passwords gets slower, then stops: failed logins are counted per account and per client
// IP over a window. Each failure beyond the first costs an escalating delay before the 401 (served
// by a timer, not a blocked thread); past the limit the key is locked and attempts get 429 with
// Retry-After, the lock doubling with every further failure. A successful login clears its account.
//
// State is per process (all workers share it under a mutex; logins are rare next to other
// requests). Bounded: the least recently touched keys are forgotten beyond `max_keys`.
#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace liftoff::identity {

struct LoginThrottleOptions {
  unsigned account_limit = 5;  // failures per account before locking
  unsigned ip_limit = 20;      // failures per IP before locking
  std::chrono::seconds window{15 * 60};
  std::chrono::milliseconds first_delay{250};
  std::chrono::milliseconds max_delay{2000};
  std::chrono::seconds first_lock{30};
  std::chrono::seconds max_lock{15 * 60};
  std::size_t max_keys = 100'000;
};

class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LoginThrottle(LoginThrottleOptions options = {}) : options_(options) {}

  // nullopt if the attempt may proceed; else how long until it may.
  [[nodiscard]] std::optional<std::chrono::seconds> locked(const std::string& account,
                                                           const std::string& ip,
                                                           Clock::time_point now = Clock::now());
  // Records a failure; returns how long to delay the 401.
  std::chrono::milliseconds failed(const std::string& account, const std::string& ip,
                                   Clock::time_point now = Clock::now());
  void succeeded(const std::string& account);
  // Keys (accounts and addresses) remembered now: never more than max_keys.
  [[nodiscard]] std::size_t size();

 private:
  struct Entry {
    unsigned failures = 0;
    Clock::time_point window_start;
    Clock::time_point locked_until;
    std::list<std::string>::iterator position;  // in recency_
  };
  Entry& touch(const std::string& key, Clock::time_point now);
  unsigned record(const std::string& key, unsigned limit, Clock::time_point now);

  LoginThrottleOptions options_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> recency_;  // most recent at the front
};

}  // namespace liftoff::identity
