#include "liftoff/core/byte_rate.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace liftoff::core {

ByteRate::ByteRate(double bytes_per_second, double burst, std::size_t max_keys)
    : rate_(bytes_per_second),
      burst_(burst),
      max_per_shard_(std::max<std::size_t>(1, max_keys / kShards)) {}

// Under the shard's mutex: the key's bucket, refilled up to now (a new key starts full).
ByteRate::Bucket& ByteRate::bucket(Shard& shard, std::string_view key, Clock::time_point now) {
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= max_per_shard_) {
      auto forget = shard.buckets.begin();
      for (auto b = shard.buckets.begin(); b != shard.buckets.end(); ++b) {
        double refilled = b->second.tokens +
                          rate_ * std::chrono::duration<double>(now - b->second.updated).count();
        if (refilled >= burst_) {
          forget = b;
          break;
        }
        if (b->second.updated < forget->second.updated) forget = b;
      }
      shard.buckets.erase(forget);
    }
    it = shard.buckets.emplace(std::string(key), Bucket{burst_, now}).first;
  }
  auto& b = it->second;
  b.tokens =
      std::min(burst_, b.tokens + rate_ * std::chrono::duration<double>(now - b.updated).count());
  b.updated = now;
  return b;
}

std::chrono::milliseconds ByteRate::wait(std::string_view key, Clock::time_point now) {
  if (!enabled()) return std::chrono::milliseconds(0);
  auto& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard lock(shard.mutex);
  auto& b = bucket(shard, key, now);
  if (b.tokens >= 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(-b.tokens / rate_ * 1000)));
}

void ByteRate::spend(std::string_view key, std::size_t bytes, Clock::time_point now) {
  if (!enabled()) return;
  auto& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard lock(shard.mutex);
  bucket(shard, key, now).tokens -= static_cast<double>(bytes);
}

}  // namespace liftoff::core
