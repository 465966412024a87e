#pragma once
// How many bytes each key (an organization) may have the process move per second: a token bucket
// per key, refilled at `rate` bytes a second up to `burst`. A request asks wait() before it starts
// and spend()s what it moved after, so one tenant reading large records in a loop gets 429s with
// Retry-After instead of taking every core from the others. A balance may go below zero (a request
// is not cut short): the next ones wait until it is repaid.
//
// Thread-safe (sharded mutexes). At most `max_keys` keys are kept: past that a shard forgets a
// bucket that is full (it knows nothing that a new one would not), or else its oldest.
#include <array>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace liftoff::core {

class ByteRate {
 public:
  using Clock = std::chrono::steady_clock;
  // rate 0: no limit (wait() is always zero).
  ByteRate(double bytes_per_second, double burst, std::size_t max_keys = 100'000);

  // How long `key` must wait before it may move bytes again; zero: now.
  [[nodiscard]] std::chrono::milliseconds wait(std::string_view key,
                                               Clock::time_point now = Clock::now());
  void spend(std::string_view key, std::size_t bytes, Clock::time_point now = Clock::now());
  [[nodiscard]] bool enabled() const { return rate_ > 0; }

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
  };
  static constexpr std::size_t kShards = 16;
  Bucket& bucket(Shard& shard, std::string_view key, Clock::time_point now);

  double rate_;
  double burst_;
  std::size_t max_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace liftoff::core
