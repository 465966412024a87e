#include "liftoff/identity/revocation_listener.hpp"

#include <spdlog/spdlog.h>

#include "liftoff/db/listener.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;

namespace {
// The id after `prefix` in a payload ("org:<uuid>"); nullopt for a payload of another kind.
std::optional<db::Uuid> id_after(std::string_view payload, std::string_view prefix) {
  if (!payload.starts_with(prefix)) return std::nullopt;
  return db::Uuid::parse(payload.substr(prefix.size()));
}
}  // namespace

void evict(SessionCache& cache, std::string_view payload) {
  if (auto user = id_after(payload, kUserPayloadPrefix)) {
    cache.evict_user(*user);
  } else if (auto org = id_after(payload, kOrgPayloadPrefix)) {
    cache.evict_org(*org);
  } else if (auto credential = db::Uuid::parse(payload)) {
    cache.evict_credential(*credential);
  } else {
    cache.clear();  // not ours to understand: forget everything rather than keep something stale
  }
}

asio::awaitable<void> SessionRevocationListener::run() {
  // The cache is trusted only while we listen: evictions sent while we are not would be missed.
  cache_.trust(false);
  co_await db::listen(
      connect_, std::string(kSessionsChannel),
      {[this] { return stopping_.load(std::memory_order_relaxed); },
       [this] {
         for (auto* follower : org_followers_) {
           follower->stale_all();  // what changed while we were not listening
           follower->listening(true);
         }
         cache_.clear();  // whatever was revoked while we were not listening is forgotten with it
         cache_.trust(true);
         listening_.store(true, std::memory_order_relaxed);
       },
       [this](const std::vector<db::Notification>& batch) {
         for (const auto& n : batch) {
           evict(cache_, n.payload);
           auto org = id_after(n.payload, kOrgPayloadPrefix);
           for (auto* follower : org_followers_) {
             if (org) {
               follower->stale(*org);
             } else if (!id_after(n.payload, kUserPayloadPrefix) && !db::Uuid::parse(n.payload)) {
               follower->stale_all();  // not ours to understand, as evict() does
             }
           }
         }
       },
       [this] {
         listening_.store(false, std::memory_order_relaxed);
         for (auto* follower : org_followers_) follower->listening(false);
         cache_.trust(false);
       }});
}

}  // namespace liftoff::identity
