#include "liftoff/records/list_cache.hpp"

#include <functional>

namespace liftoff::records {

ListCache::Shard& ListCache::shard_for(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % kShards];
}

std::optional<std::string> ListCache::find(const std::string& key, std::int64_t head) {
  if (!enabled()) return std::nullopt;
  auto& shard = shard_for(key);
  std::lock_guard lock(shard.mutex);
  auto it = shard.by_key.find(key);
  if (it == shard.by_key.end() || it->second->head != head) {
    metrics_.miss();
    return std::nullopt;
  }
  metrics_.hit();
  shard.entries.splice(shard.entries.begin(), shard.entries, it->second);
  return it->second->body;
}

void ListCache::store(const std::string& key, std::int64_t head, std::string body) {
  std::size_t size = key.size() + body.size() + sizeof(Entry);
  if (!enabled() || size > max_bytes_per_shard_ / 4) return;  // one entry never crowds out a shard
  auto& shard = shard_for(key);
  std::lock_guard lock(shard.mutex);
  if (auto it = shard.by_key.find(key); it != shard.by_key.end()) {
    if (it->second->head > head) return;  // a newer state is already stored
    shard.bytes -= it->second->key.size() + it->second->body.size() + sizeof(Entry);
    shard.entries.erase(it->second);
    shard.by_key.erase(it);
    metrics_.resized(-1);
  }
  shard.entries.push_front(Entry{key, head, std::move(body)});
  shard.by_key.emplace(key, shard.entries.begin());
  shard.bytes += size;
  metrics_.resized(1);
  while (shard.bytes > max_bytes_per_shard_ && !shard.entries.empty()) {
    auto& last = shard.entries.back();
    shard.bytes -= last.key.size() + last.body.size() + sizeof(Entry);
    shard.by_key.erase(last.key);
    shard.entries.pop_back();
    metrics_.resized(-1);
  }
}

}  // namespace liftoff::records
