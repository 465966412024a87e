#include "liftoff/records/schema_cache.hpp"

namespace liftoff::records {

std::shared_ptr<const Collection> SchemaCache::find(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.valid_until <= now) {
    metrics_.miss();
    return nullptr;
  }
  metrics_.hit();
  return it->second.collection;
}

std::shared_ptr<const Collection> SchemaCache::find(const std::string& key) {
  return find(key, Clock::time_point::min());  // every entry is fresh at the beginning of time
}

void SchemaCache::store(const std::string& key, std::shared_ptr<const Collection> collection,
                        Clock::time_point read_at) {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end() && entries_.size() >= capacity_) {
    entries_.erase(entries_.begin());
    metrics_.resized(-1);
  }
  Entry entry{std::move(collection), read_at + ttl_};
  if (entries_.insert_or_assign(key, std::move(entry)).second) metrics_.resized(1);
}

void SchemaCache::forget(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (entries_.erase(key) > 0) metrics_.resized(-1);
}

std::size_t SchemaCache::size() {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace liftoff::records
