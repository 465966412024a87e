#pragma once
// The rate limits of API requests (docs/decisions/0017-rate-limits.md): a request not signed in
// (or whose credential is refused) counts against its client address; a signed-in one against its
// session or API key, and one on an org's routes against the org's plan (api_requests_per_minute).
// Past any of them: 429 with Retry-After, and for the org's, the problem's `limit` names the plan
// that lifts it. Every answer of a limited route says where the caller stands: RateLimit-Policy
// lists the policies that applied, RateLimit the one closest to its limit
// (draft-ietf-httpapi-ratelimit-headers). An org's request that is admitted counts in the org's
// usage (usage::Meter, api_requests): what the org is billed for is what the limits let through.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "liftoff/core/error.hpp"
#include "liftoff/http/types.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/store.hpp"

namespace liftoff::ratelimit {
class Limiter;
struct Policy;
}  // namespace liftoff::ratelimit

namespace liftoff::usage {
class Meter;
}

namespace liftoff::api {

struct RateLimitOptions {
  std::int64_t per_address = 6'000;  // requests per minute; 0: none
  std::int64_t per_credential = 3'000;
  std::int64_t signups_per_address = 60;  // an hour; 0: none
};

class RateLimits {
 public:
  // No limiter: no limits (and no headers); no meter: nothing counted.
  RateLimits(ratelimit::Limiter* limiter, RateLimitOptions options, usage::Meter* meter = nullptr)
      : limiter_(limiter), options_(options), meter_(meter) {}

  struct Verdict {
    std::string policy;            // RateLimit-Policy (empty: no limit applied)
    std::string state;             // RateLimit
    std::optional<Error> refused;  // too_many_requests, with Retry-After
    // Sets the headers on the request's answer.
    void decorate(http::Response& response) const;
  };
  // Counts the request of `who` (null: not signed in) on the org of `access` (null: none), and
  // against the route's own limit per address (`route`, e.g. signups an hour), or refuses it;
  // admitted, it counts in the org's usage.
  [[nodiscard]] boost::asio::awaitable<Verdict> admit(const http::RequestContext& ctx,
                                                      const identity::Principal* who,
                                                      const identity::Access* access,
                                                      const ratelimit::Policy* route = nullptr);
  [[nodiscard]] const RateLimitOptions& options() const { return options_; }

 private:
  [[nodiscard]] boost::asio::awaitable<Verdict> decide(const http::RequestContext& ctx,
                                                       const identity::Principal* who,
                                                       const identity::Access* access,
                                                       const ratelimit::Policy* route);
  ratelimit::Limiter* limiter_;
  RateLimitOptions options_;
  usage::Meter* meter_;
};

}  // namespace liftoff::api
