#pragma once
// Argon2id password hashing (libsodium) off the event loops. Hashing is deliberately slow (tens of
// milliseconds, tens of MiB), so it runs on a small dedicated thread pool; admission control bounds
// the queue, and a burst beyond it is refused at once with Errc::too_many_requests (429 +
// Retry-After) instead of stalling every other request. One client address holds at most
// `max_per_client` of the queue, so a single address cannot keep every slot busy. The parameters
// are stored in each hash (PHC string format), so raising them later only makes `verify` report
// `needs_rehash`.
//
// Thread-safety: hash() and verify() may be called concurrently from any worker's coroutines; each
// resumes on the executor it was called from.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "liftoff/core/error.hpp"

namespace liftoff::identity {

struct PasswordHashOptions {
  unsigned long long ops_limit = 2;             // Argon2id passes (libsodium's "interactive" is 2)
  std::size_t mem_limit = 64ull * 1024 * 1024;  // bytes (libsodium's "interactive" is 64 MiB)
  std::size_t threads = 2;                      // hashing threads
  std::size_t max_queue = 64;       // hashes admitted (running + waiting) before refusing
  std::size_t max_per_client = 16;  // of them, from one client address (0: no bound of its own)
};

struct Verification {
  bool matches = false;
  bool needs_rehash = false;  // matches, but was hashed with weaker parameters than configured
};

class PasswordHasher {
 public:
  explicit PasswordHasher(PasswordHashOptions options);
  ~PasswordHasher();
  PasswordHasher(const PasswordHasher&) = delete;
  PasswordHasher& operator=(const PasswordHasher&) = delete;

  // The PHC-format Argon2id hash ("$argon2id$v=19$m=...,t=...,p=1$salt$hash").
  // `client` is the caller's address, for its share of the queue (empty: not counted by address).
  [[nodiscard]] boost::asio::awaitable<Result<std::string>> hash(const std::string& password,
                                                                 std::string_view client = {});

  // Checks `password` against a stored hash. A malformed stored hash does not match.
  [[nodiscard]] boost::asio::awaitable<Result<Verification>> verify(const std::string& password,
                                                                    const std::string& stored,
                                                                    std::string_view client = {});

  // A hash of a random password with the current parameters: verifying against it costs what a real
  // verification costs, so "no such user" takes as long as "wrong password".
  [[nodiscard]] const std::string& decoy_hash() const { return decoy_; }

  [[nodiscard]] std::size_t admitted() const { return admitted_.load(std::memory_order_relaxed); }

 private:
  // Runs `work` (moved from before the first suspension) on the pool; resumes on the caller's
  // executor.
  template <class T, class Work>
  boost::asio::awaitable<Result<T>> run(Work& work, std::string_view client);
  class Admission;  // a place in the queue (and in its client's share) while held
  Result<void> admit(const std::string& client);
  void release(const std::string& client);

  PasswordHashOptions options_;
  boost::asio::thread_pool pool_;
  std::atomic<std::size_t> admitted_{0};
  std::mutex clients_mutex_;
  std::unordered_map<std::string, std::size_t> clients_;  // admitted per client address
  std::string decoy_;
};

}  // namespace liftoff::identity
