#include "liftoff/identity/session_cache.hpp"

#include <algorithm>

namespace liftoff::identity {

SessionCache::SessionCache(std::chrono::milliseconds ttl, std::size_t capacity,
                           core::CacheMetrics metrics, Now now)
    : ttl_(ttl),
      shard_capacity_(std::max<std::size_t>(1, capacity / 16)),
      metrics_(metrics),
      now_(now) {}

SessionCache::Shard& SessionCache::shard_for(const std::string& digest) {
  // The digest is a SHA-256: its first byte is uniformly distributed.
  auto index = digest.empty() ? 0 : static_cast<unsigned char>(digest[0]) % shards_.size();
  return shards_[index];
}

SessionCache::EntryIt SessionCache::erase(Shard& shard, EntryIt it) {
  shard.digest_by_credential.erase(it->second.principal.credential_id.to_string());
  metrics_.resized(-1);
  return shard.by_digest.erase(it);
}

std::optional<Principal> SessionCache::get(const std::string& digest) {
  if (!trusted_.load(std::memory_order_acquire)) {
    metrics_.miss();
    return std::nullopt;
  }
  auto& shard = shard_for(digest);
  std::lock_guard lock(shard.mutex);
  auto it = shard.by_digest.find(digest);
  if (it != shard.by_digest.end() && now_() >= it->second.valid_until) {
    erase(shard, it);
    it = shard.by_digest.end();
  }
  if (it == shard.by_digest.end()) {
    metrics_.miss();
    return std::nullopt;
  }
  metrics_.hit();
  return it->second.principal;
}

void SessionCache::put(const std::string& digest, const Principal& principal,
                       db::Timestamp expires_at, std::uint64_t generation) {
  if (ttl_.count() == 0 || !trusted_.load(std::memory_order_acquire)) return;
  auto remaining = expires_at - std::chrono::time_point_cast<std::chrono::microseconds>(
                                    std::chrono::system_clock::now());
  auto lifetime = std::min<std::chrono::microseconds>(ttl_, remaining);
  if (lifetime.count() <= 0) return;
  auto& shard = shard_for(digest);
  std::lock_guard lock(shard.mutex);
  // Checked under the shard lock: an eviction bumps the generation before it takes any shard lock,
  // so either we see its bump here or it runs after our insert and removes the entry.
  if (generation_.load(std::memory_order_acquire) != generation) return;
  if (shard.by_digest.size() >= shard_capacity_ && !shard.by_digest.contains(digest)) {
    erase(shard, shard.by_digest.begin());
  }
  Entry entry{principal, now_() + lifetime};
  if (shard.by_digest.insert_or_assign(digest, std::move(entry)).second) metrics_.resized(1);
  shard.digest_by_credential.insert_or_assign(principal.credential_id.to_string(), digest);
}

void SessionCache::evict_if(const std::function<bool(const Principal&)>& matches) {
  generation_.fetch_add(1, std::memory_order_acq_rel);
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    for (auto it = shard.by_digest.begin(); it != shard.by_digest.end();) {
      it = matches(it->second.principal) ? erase(shard, it) : std::next(it);
    }
  }
}

void SessionCache::evict_credential(const db::Uuid& credential_id) {
  generation_.fetch_add(1, std::memory_order_acq_rel);
  auto key = credential_id.to_string();
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    auto found = shard.digest_by_credential.find(key);
    if (found == shard.digest_by_credential.end()) continue;
    auto entry = shard.by_digest.find(found->second);
    if (entry != shard.by_digest.end()) {
      erase(shard, entry);
    } else {
      shard.digest_by_credential.erase(found);
    }
  }
}

void SessionCache::evict_user(const db::Uuid& user_id) {
  evict_if([&](const Principal& p) { return p.is_user() && p.user.id == user_id; });
}

void SessionCache::evict_org(const db::Uuid& org_id) {
  evict_if([&](const Principal& p) { return p.role_in(org_id).has_value(); });
}

void SessionCache::trust(bool trusted) {
  trusted_.store(trusted, std::memory_order_release);
  if (!trusted) clear();
}

void SessionCache::clear() {
  evict_if([](const Principal&) { return true; });
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
