#pragma once
// Authenticated sessions remembered in-process, so the hot path (GET /v1/me and every authenticated
// call) needs no database round trip for the session. Entries live for a short TTL (never past the
// session's own expiry); a revocation anywhere evicts within a second through NOTIFY
// (SessionRevocationListener), and locally at once.
//
// Thread-safety: all members may be called from any thread. Striped by key: 16 shards, each under
// its own mutex, so the worker threads rarely meet. Bounded: a full shard drops an arbitrary entry.
#include <array>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "liftoff/db/value.hpp"
#include "liftoff/identity/store.hpp"

namespace liftoff::identity {

struct CachedSession {
  User user;
  db::Uuid session_id;
  db::Timestamp last_seen_at;
};

class SessionCache {
 public:
  SessionCache(std::chrono::milliseconds ttl, std::size_t capacity);

  [[nodiscard]] std::optional<CachedSession> get(const std::string& digest);
  void put(const std::string& digest, const CachedSession& session,
           db::Timestamp session_expires_at);
  void evict_session(const std::string& session_id);  // the uuid's text form
  void clear();
  [[nodiscard]] std::size_t size();

 private:
  using SteadyClock = std::chrono::steady_clock;
  struct Entry {
    CachedSession session;
    SteadyClock::time_point valid_until;
  };
  struct alignas(64) Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Entry> by_digest;
    std::unordered_map<std::string, std::string> digest_by_session;
  };
  Shard& shard_for(const std::string& digest);

  std::chrono::milliseconds ttl_;
  std::size_t shard_capacity_;
  std::array<Shard, 16> shards_;
};

}  // namespace liftoff::identity
