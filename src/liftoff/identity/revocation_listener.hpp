#pragma once
// Keeps every process's SessionCache honest: LISTENs on the `liftoff_sessions` channel, where every
// change that a cached principal could depend on NOTIFYs, in the changing transaction:
//   "<uuid>"       a revoked session or API key
//   "user:<uuid>"  a user whose memberships changed
//   "org:<uuid>"   an organization renamed, deleted or restored
// and evicts what the payload names (and has OrgOrigins reload an org's CORS origins). While
// the listening connection is down the cache is bypassed-by-clearing: it is emptied on every
// (re)connect, so no revocation can be missed.
#include <atomic>
#include <boost/asio/awaitable.hpp>

#include "liftoff/db/connection.hpp"
#include "liftoff/identity/session_cache.hpp"

namespace liftoff::identity {
class OrgOrigins;
}

namespace liftoff::identity {

inline constexpr std::string_view kSessionsChannel = "liftoff_sessions";
inline constexpr std::string_view kUserPayloadPrefix = "user:";
inline constexpr std::string_view kOrgPayloadPrefix = "org:";

// Evicts what one notification payload names.
void evict(SessionCache& cache, std::string_view payload);

class SessionRevocationListener {
 public:
  SessionRevocationListener(db::ConnectOptions connect, SessionCache& cache,
                            OrgOrigins* origins = nullptr)
      : connect_(std::move(connect)), cache_(cache), origins_(origins) {}

  // Runs until stop(); spawn it on one worker. Reconnects with backoff.
  boost::asio::awaitable<void> run();
  void stop() { stopping_.store(true, std::memory_order_relaxed); }
  [[nodiscard]] bool listening() const { return listening_.load(std::memory_order_relaxed); }

 private:
  db::ConnectOptions connect_;
  SessionCache& cache_;
  OrgOrigins* origins_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> listening_{false};
};

}  // namespace liftoff::identity
