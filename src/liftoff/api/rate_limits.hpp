#pragma once
// The rate limits of API requests (docs/decisions/0017-rate-limits.md): a request not signed in
// (or whose credential is refused) counts against its client address; a signed-in one against its
// session or API key, and one on an org's routes against the org's plan (api_requests_per_minute).
// Past any of them: 429 with Retry-After, and for the org's, the problem's `limit` names the plan
// that lifts it. Every answer of a limited route says where the caller stands: RateLimit-Policy
// lists the policies that applied, RateLimit the one closest to its limit
// (draft-ietf-httpapi-ratelimit-headers).
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

namespace liftoff::api {

struct RateLimitOptions {
  std::int64_t per_address = 6'000;  // requests per minute; 0: none
  std::int64_t per_credential = 3'000;
  std::int64_t signups_per_address = 60;  // an hour; 0: none
};

class RateLimits {
 public:
  // No limiter: no limits (and no headers).
  RateLimits(ratelimit::Limiter* limiter, RateLimitOptions options)
      : limiter_(limiter), options_(options) {}

  struct Verdict {
    std::string policy;            // RateLimit-Policy (empty: no limit applied)
    std::string state;             // RateLimit
    std::optional<Error> refused;  // too_many_requests, with Retry-After
    // Sets the headers on the request's answer.
    void decorate(http::Response& response) const;
  };
  // Counts the request of `who` (null: not signed in) on the org of `access` (null: none), and
  // against the route's own limit per address (`route`, e.g. signups an hour), or refuses it.
  [[nodiscard]] boost::asio::awaitable<Verdict> admit(const http::RequestContext& ctx,
                                                      const identity::Principal* who,
                                                      const identity::Access* access,
                                                      const ratelimit::Policy* route = nullptr);
  [[nodiscard]] const RateLimitOptions& options() const { return options_; }

 private:
  ratelimit::Limiter* limiter_;
  RateLimitOptions options_;
};

}  // namespace liftoff::api
