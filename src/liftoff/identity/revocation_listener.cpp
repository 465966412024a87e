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

// What one payload names: read once, for the session cache and the org's followers alike.
struct Named {
  enum class Kind : std::uint8_t { user, org, credential, unknown };
  Kind kind = Kind::unknown;
  db::Uuid id;
};

Named named_by(std::string_view payload) {
  if (auto user = id_after(payload, kUserPayloadPrefix)) return {Named::Kind::user, *user};
  if (auto org = id_after(payload, kOrgPayloadPrefix)) return {Named::Kind::org, *org};
  if (auto credential = db::Uuid::parse(payload)) return {Named::Kind::credential, *credential};
  return {};
}

void evict(SessionCache& cache, const Named& named) {
  switch (named.kind) {
    case Named::Kind::user:
      cache.evict_user(named.id);
      return;
    case Named::Kind::org:
      cache.evict_org(named.id);
      return;
    case Named::Kind::credential:
      cache.evict_credential(named.id);
      return;
    case Named::Kind::unknown:
      cache.clear();  // not ours to understand: forget everything rather than keep something stale
      return;
  }
}

// An org's followers hear of it; of a payload nobody understands, all of them forget everything.
void tell(const std::vector<db::OrgChanges*>& followers, const Named& named) {
  for (auto* follower : followers) {
    if (named.kind == Named::Kind::org) follower->stale(named.id);
    if (named.kind == Named::Kind::unknown) follower->stale_all();
  }
}
}  // namespace

void evict(SessionCache& cache, std::string_view payload) {
  evict(cache, named_by(payload));
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
           auto named = named_by(n.payload);
           evict(cache_, named);
           tell(org_followers_, named);
         }
       },
       [this] {
         listening_.store(false, std::memory_order_relaxed);
         for (auto* follower : org_followers_) follower->listening(false);
         cache_.trust(false);
       }});
}

}  // namespace liftoff::identity
