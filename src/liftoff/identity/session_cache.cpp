#include "liftoff/identity/session_cache.hpp"

#include <functional>

namespace liftoff::identity {

SessionCache::SessionCache(std::chrono::milliseconds ttl, std::size_t capacity)
    : ttl_(ttl), shard_capacity_(std::max<std::size_t>(1, capacity / 16)) {}

SessionCache::Shard& SessionCache::shard_for(const std::string& digest) {
  // The digest is a SHA-256: its first byte is uniformly distributed.
  auto index = digest.empty() ? 0 : static_cast<unsigned char>(digest[0]) % shards_.size();
  return shards_[index];
}

std::optional<CachedSession> SessionCache::get(const std::string& digest) {
  auto& shard = shard_for(digest);
  std::lock_guard lock(shard.mutex);
  auto it = shard.by_digest.find(digest);
  if (it == shard.by_digest.end()) return std::nullopt;
  if (SteadyClock::now() >= it->second.valid_until) {
    shard.digest_by_session.erase(it->second.session.session_id.to_string());
    shard.by_digest.erase(it);
    return std::nullopt;
  }
  return it->second.session;
}

void SessionCache::put(const std::string& digest, const CachedSession& session,
                       db::Timestamp session_expires_at) {
  if (ttl_.count() == 0) return;
  auto remaining = session_expires_at - std::chrono::time_point_cast<std::chrono::microseconds>(
                                            std::chrono::system_clock::now());
  auto lifetime = std::min<std::chrono::microseconds>(ttl_, remaining);
  if (lifetime.count() <= 0) return;
  auto& shard = shard_for(digest);
  std::lock_guard lock(shard.mutex);
  if (shard.by_digest.size() >= shard_capacity_ && !shard.by_digest.contains(digest)) {
    auto victim = shard.by_digest.begin();
    shard.digest_by_session.erase(victim->second.session.session_id.to_string());
    shard.by_digest.erase(victim);
  }
  shard.by_digest.insert_or_assign(digest, Entry{session, SteadyClock::now() + lifetime});
  shard.digest_by_session.insert_or_assign(session.session_id.to_string(), digest);
}

void SessionCache::evict_session(const std::string& session_id) {
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    auto it = shard.digest_by_session.find(session_id);
    if (it == shard.digest_by_session.end()) continue;
    shard.by_digest.erase(it->second);
    shard.digest_by_session.erase(it);
  }
}

void SessionCache::clear() {
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    shard.by_digest.clear();
    shard.digest_by_session.clear();
  }
}

std::size_t SessionCache::size() {
  std::size_t n = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    n += shard.by_digest.size();
  }
  return n;
}

}  // namespace liftoff::identity
