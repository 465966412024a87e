#include "liftoff/db/shard_cache.hpp"

namespace liftoff::db {

std::optional<std::size_t> ShardCache::find(const Uuid& org) const {
  std::lock_guard lock(mutex_);
  if (!trusted_) return std::nullopt;
  auto it = shards_.find(org);
  if (it == shards_.end()) return std::nullopt;
  return it->second;
}

std::uint64_t ShardCache::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

void ShardCache::store(const Uuid& org, std::size_t shard, std::uint64_t generation) {
  std::lock_guard lock(mutex_);
  if (!trusted_ || generation != generation_ || capacity_ == 0) return;
  if (shards_.size() >= capacity_ && !shards_.contains(org)) shards_.clear();
  shards_[org] = shard;
}

std::size_t ShardCache::size() const {
  std::lock_guard lock(mutex_);
  return shards_.size();
}

void ShardCache::stale(const Uuid& org) {
  std::lock_guard lock(mutex_);
  ++generation_;
  shards_.erase(org);
}

void ShardCache::stale_all() {
  std::lock_guard lock(mutex_);
  ++generation_;
  shards_.clear();
}

void ShardCache::listening(bool heard) {
  std::lock_guard lock(mutex_);
  ++generation_;
  trusted_ = heard;
  if (!heard) shards_.clear();
}

}  // namespace liftoff::db
