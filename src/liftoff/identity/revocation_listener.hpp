#pragma once
// Keeps every process's SessionCache honest: LISTENs on the `liftoff_sessions` channel, where every
// change that a cached principal could depend on NOTIFYs, in the changing transaction:
//   "<uuid>"       a revoked session or API key
//   "user:<uuid>"  a user whose memberships changed
//   "org:<uuid>"   an organization renamed, deleted, restored or moved to another shard
// and evicts what the payload names (and tells the org's followers, db::OrgChanges: OrgOrigins
// reloads its CORS origins, the shard cache forgets its shard). While
// the listening connection is down the cache is bypassed-by-clearing: it is emptied on every
// (re)connect, so no revocation can be missed.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <vector>

#include "liftoff/db/connection.hpp"
#include "liftoff/db/org_changes.hpp"
#include "liftoff/identity/session_cache.hpp"

namespace liftoff::identity {

inline constexpr std::string_view kSessionsChannel = "liftoff_sessions";
inline constexpr std::string_view kUserPayloadPrefix = "user:";
inline constexpr std::string_view kOrgPayloadPrefix = "org:";

// Evicts what one notification payload names.
void evict(SessionCache& cache, std::string_view payload);

class SessionRevocationListener {
 public:
  SessionRevocationListener(db::ConnectOptions connect, SessionCache& cache,
                            std::vector<db::OrgChanges*> org_followers = {})
      : connect_(std::move(connect)), cache_(cache), org_followers_(std::move(org_followers)) {}

  // Runs until stop(); spawn it on one worker. Reconnects with backoff.
  boost::asio::awaitable<void> run();
  void stop() { stopping_.store(true, std::memory_order_relaxed); }
  [[nodiscard]] bool listening() const { return listening_.load(std::memory_order_relaxed); }

 private:
  db::ConnectOptions connect_;
  SessionCache& cache_;
  std::vector<db::OrgChanges*> org_followers_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> listening_{false};
};

}  // namespace liftoff::identity
