#include "liftoff/ratelimit/gcra.hpp"

#include <algorithm>
#include <functional>

namespace liftoff::ratelimit {

Step gcra_step(Micros tat, Micros now, const Policy& policy) {
  const Micros interval = policy.interval();
  const Micros tolerance = policy.tolerance();
  const Micros new_tat = std::max(tat, now) + interval;
  Step step;
  step.new_tat = new_tat;
  if (new_tat - now > tolerance) {
    step.allowed = false;
    step.outcome.remaining = 0;
    step.outcome.retry_after = new_tat - now - tolerance;
    step.outcome.reset = std::max<Micros>(tat, now) - now;
    return step;
  }
  step.outcome.remaining = (tolerance - (new_tat - now)) / interval;
  step.outcome.reset = new_tat - now;
  return step;
}

LocalLimiter::LocalLimiter(std::size_t max_keys)
    : max_per_shard_(std::max<std::size_t>(1, max_keys / kShards)) {}

LocalLimiter::Shard& LocalLimiter::shard_of(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % kShards];
}

void LocalLimiter::make_room(Shard& shard, Micros now) {
  if (shard.tats.size() < max_per_shard_) return;
  auto oldest = shard.tats.begin();
  for (auto it = shard.tats.begin(); it != shard.tats.end(); ++it) {
    if (it->second <= now) {
      shard.tats.erase(it);
      return;
    }
    if (it->second < oldest->second) oldest = it;
  }
  shard.tats.erase(oldest);
}

Decision LocalLimiter::check(std::span<const Check> checks, Micros now) {
  Decision decision;
  decision.outcomes.reserve(checks.size());
  // Keys are looked at one shard lock at a time: two requests racing on the same keys may both
  // pass a check the second should not (by one request), which a limit in requests per minute
  // tolerates; Redis's script is atomic.
  for (const auto& check : checks) {
    auto& shard = shard_of(check.key);
    Micros tat = 0;
    {
      std::lock_guard lock(shard.mutex);
      if (auto it = shard.tats.find(check.key); it != shard.tats.end()) tat = it->second;
    }
    auto step = gcra_step(tat, now, check.policy);
    decision.allowed = decision.allowed && step.allowed;
    decision.outcomes.push_back(step.outcome);
  }
  if (!decision.allowed) return decision;
  // Each allowed request moves its keys' TATs one interval on from where they are now (another
  // request may have moved them since they were read).
  for (const auto& check : checks) {
    auto& shard = shard_of(check.key);
    std::lock_guard lock(shard.mutex);
    auto it = shard.tats.find(check.key);
    if (it == shard.tats.end()) {
      make_room(shard, now);
      shard.tats.emplace(check.key, now + check.policy.interval());
    } else {
      it->second = std::max(it->second, now) + check.policy.interval();
    }
  }
  return decision;
}

Micros now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace liftoff::ratelimit
