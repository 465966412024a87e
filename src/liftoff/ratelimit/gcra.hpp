#pragma once
// The generic cell rate algorithm (GCRA): a limit of `quota` requests per `window`, as a
// theoretical arrival time (TAT) per key. Each request moves the key's TAT one emission interval
// (window / quota) later, starting from now when the TAT is in the past; a request is refused when
// that would put the TAT more than the window ahead of now. So a key that was idle may send its
// whole quota at once, and then one request per interval: the same answer as a sliding window of
// `quota` per `window`, kept in one number per key.
//
// The same arithmetic runs here (a process's own table, the fallback) and in Redis's Lua script
// (redis_limiter.cpp, cluster-wide): both in microseconds.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace liftoff::ratelimit {

using Micros = std::int64_t;

struct Policy {
  std::string name;    // what RateLimit-Policy calls it: "address", "credential", "org"
  std::int64_t quota;  // requests per window; 0: no limit
  std::int64_t window_seconds = 60;
  // At least a microsecond: a quota above a million a second is a million a second.
  [[nodiscard]] Micros interval() const {
    return std::max<Micros>(1, window_seconds * 1'000'000 / quota);
  }
  [[nodiscard]] Micros tolerance() const { return window_seconds * 1'000'000; }
};

// One key under one policy: what a request is checked against.
struct Check {
  std::string key;  // e.g. "org:<id>"
  Policy policy;
};

struct Outcome {
  std::int64_t remaining = 0;  // requests the key may still send at once
  Micros reset = 0;            // until the key's whole quota is back
  Micros retry_after = 0;      // refused: until one request is allowed again; 0 when allowed
};

struct Decision {
  bool allowed = true;
  std::vector<Outcome> outcomes;  // one per check, in order
};

// The GCRA step for one key whose TAT is `tat` (0: unknown), at `now`: the outcome, and the new TAT
// to keep when every check of the request allows it.
struct Step {
  Outcome outcome;
  Micros new_tat = 0;
  bool allowed = true;
};
[[nodiscard]] Step gcra_step(Micros tat, Micros now, const Policy& policy);

// A process's own TATs: thread-safe (sharded mutexes), at most `max_keys` keys (past that a shard
// forgets a key whose TAT has passed, which knows nothing a new one would not, or else its oldest).
class LocalLimiter {
 public:
  explicit LocalLimiter(std::size_t max_keys = 100'000);
  // All of the checks or none: a refused request consumes nothing.
  [[nodiscard]] Decision check(std::span<const Check> checks, Micros now);

 private:
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Micros> tats;
  };
  static constexpr std::size_t kShards = 16;
  Shard& shard_of(std::string_view key);
  void make_room(Shard& shard, Micros now);
  std::size_t max_per_shard_;
  std::array<Shard, kShards> shards_;
};

// Microseconds on the system clock: the clock Redis's TIME shares across processes and machines.
[[nodiscard]] Micros now_micros();

}  // namespace liftoff::ratelimit
