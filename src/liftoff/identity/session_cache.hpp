#pragma once
// Authenticated credentials (session tokens and API keys) remembered in-process, so the hot path
// (GET /v1/me and every authenticated call) needs no database round trip to know who is calling and
// in which organizations. Entries live for a short TTL (never past the session's own expiry). A
// change anywhere evicts within a second through NOTIFY (SessionRevocationListener), and locally at
// once: a revoked session or key by its id, a user whose memberships changed, or every entry that
// names an organization that changed.
//
// A lookup that started before an eviction must not re-insert what the eviction removed: callers
// take generation() before reading the database and pass it to put(), which drops the entry when
// any eviction happened in between.
//
// Thread-safety: all members may be called from any thread. Striped by key: 16 shards, each under
// its own mutex, so the worker threads rarely meet. Bounded: a full shard drops an arbitrary entry.
// Counted (with a registry): lookups by hit or miss, entries held (cache="session").
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "liftoff/core/metrics.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/identity/store.hpp"

namespace liftoff::identity {

class SessionCache {
 public:
  using SteadyClock = std::chrono::steady_clock;
  // The clock the TTL is measured on (tests drive their own).
  using Now = SteadyClock::time_point (*)();
  SessionCache(std::chrono::milliseconds ttl, std::size_t capacity, core::CacheMetrics metrics = {},
               Now now = &SteadyClock::now);

  [[nodiscard]] std::optional<Principal> get(const std::string& digest);
  [[nodiscard]] std::uint64_t generation() const {
    return generation_.load(std::memory_order_acquire);
  }
  void put(const std::string& digest, const Principal& principal, db::Timestamp expires_at,
           std::uint64_t generation);
  void evict_credential(const db::Uuid& credential_id);  // a session or an API key
  void evict_user(const db::Uuid& user_id);
  void evict_org(const db::Uuid& org_id);
  void clear();
  // While untrusted (its listener is not connected, so evictions may be missed) the cache answers
  // nothing and keeps nothing; distrust also clears it. Trusted when constructed.
  void trust(bool trusted);
  [[nodiscard]] std::size_t size();

 private:
  struct Entry {
    Principal principal;
    SteadyClock::time_point valid_until;
  };
  struct alignas(64) Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Entry> by_digest;
    // The same entries by credential id (text), so revoking one session or key is a lookup per
    // shard, not a scan.
    std::unordered_map<std::string, std::string> digest_by_credential;
  };
  using EntryIt = std::unordered_map<std::string, Entry>::iterator;
  // Removes an entry from both maps of its shard (whose lock the caller holds); returns the next
  // entry of by_digest.
  EntryIt erase(Shard& shard, EntryIt it);
  Shard& shard_for(const std::string& digest);
  void evict_if(const std::function<bool(const Principal&)>& matches);

  std::chrono::milliseconds ttl_;
  std::size_t shard_capacity_;
  core::CacheMetrics metrics_;
  Now now_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> trusted_{true};
  std::array<Shard, 16> shards_;
};

}  // namespace liftoff::identity
