#pragma once
// Guessing passwords gets slower, then stops: attempts are counted per account (before the
// password is checked) and failures per client IP, over a window; a success clears its account.
// Each failure beyond the first costs an escalating delay before the 401 (served by a timer, not a
// blocked thread); past the limit the key is locked and attempts get 429 with Retry-After, the lock
// doubling with every further failure. Login and password change both go through it.
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
  unsigned account_limit = 5;  // attempts per account (without a success) before locking
  unsigned ip_limit = 20;      // failed attempts per IP before locking
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

  // What an attempt may do: proceed (locked empty), and if its password turns out wrong, hold the
  // 401 for `delay`.
  struct Attempt {
    std::optional<std::chrono::seconds> locked;  // refused: how long until attempts may proceed
    std::chrono::milliseconds delay{0};
  };
  // Counts an attempt against its account before its password is checked, so guesses sent in
  // parallel cannot all pass a check that none of them has failed yet. Refused while the account
  // or the address is locked (not counted then).
  [[nodiscard]] Attempt attempt(const std::string& account, const std::string& ip,
                                Clock::time_point now = Clock::now());
  // The attempt's password was wrong: counted against the address. (Addresses count failures,
  // not attempts, so many users behind one address can sign in at once.)
  void failed(const std::string& ip, Clock::time_point now = Clock::now());
  // The attempt's password matched: the account's count is cleared.
  void succeeded(const std::string& account);
  // Keys (accounts and addresses) remembered now: never more than max_keys.
  [[nodiscard]] std::size_t size();

 private:
  struct Entry {
    unsigned attempts = 0;
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
