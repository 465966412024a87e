#include "liftoff/api/rate_limits.hpp"

#include <fmt/format.h>

#include <vector>

#include "liftoff/plans/plans.hpp"
#include "liftoff/ratelimit/limiter.hpp"
#include "liftoff/usage/meter.hpp"

namespace liftoff::api {
namespace {

constexpr std::int64_t kMicros = 1'000'000;

std::int64_t ceil_seconds(ratelimit::Micros micros) {
  return (micros + kMicros - 1) / kMicros;
}

}  // namespace

boost::asio::awaitable<RateLimits::Verdict> RateLimits::admit(const http::RequestContext& ctx,
                                                              const identity::Principal* who,
                                                              const identity::Access* access,
                                                              const ratelimit::Policy* route) {
  auto verdict = co_await decide(ctx, who, access, route);
  if (meter_ && access && !verdict.refused)
    meter_->count(access->org_id, usage::Count::api_requests);
  co_return verdict;
}

boost::asio::awaitable<RateLimits::Verdict> RateLimits::decide(const http::RequestContext& ctx,
                                                               const identity::Principal* who,
                                                               const identity::Access* access,
                                                               const ratelimit::Policy* route) {
  Verdict verdict;
  if (!limiter_) co_return verdict;
  std::vector<ratelimit::Check> checks;
  // The address limits who is not signed in (and refused credentials); a signed-in request is
  // limited by its credential and its org instead, so a company's users behind one address do
  // not share one budget.
  if (!who && options_.per_address > 0) {
    checks.push_back({"a:" + std::string(ctx.remote), {"address", options_.per_address}});
  }
  if (route && route->quota > 0) {
    checks.push_back({"r:" + route->name + ":" + std::string(ctx.remote), *route});
  }
  if (who && options_.per_credential > 0) {
    checks.push_back(
        {"c:" + who->credential_id.to_string(), {"credential", options_.per_credential}});
  }
  if (access) {
    auto quota = access->limits[plans::Limit::api_requests_per_minute];
    if (quota > 0) checks.push_back({"o:" + access->org_id.to_string(), {"org", quota}});
  }
  if (checks.empty()) co_return verdict;
  auto decision = co_await limiter_->check(checks);

  std::size_t closest = 0;  // the policy to report: the refusing one that waits longest, or the
                            // one with the fewest requests left
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const auto& policy = checks[i].policy;
    const auto& outcome = decision.outcomes[i];
    verdict.policy += fmt::format("{}\"{}\";q={};w={}", i ? ", " : "", policy.name, policy.quota,
                                  policy.window_seconds);
    const auto& best = decision.outcomes[closest];
    bool closer = decision.allowed ? outcome.remaining < best.remaining
                                   : outcome.retry_after > best.retry_after;
    if (closer) closest = i;
  }
  const auto& outcome = decision.outcomes[closest];
  const auto& policy = checks[closest].policy;
  verdict.state =
      fmt::format("\"{}\";r={};t={}", policy.name, outcome.remaining, ceil_seconds(outcome.reset));
  if (decision.allowed) co_return verdict;

  std::string whose = policy.name == "org"          ? "for the organization's plan"
                      : policy.name == "credential" ? "with this session or API key"
                      : policy.name == "address"    ? "from this address"
                                                    : "of " + policy.name + " from this address";
  Error error = make_error(Errc::too_many_requests,
                           fmt::format("rate limit reached: {} requests per {} seconds {}",
                                       policy.quota, policy.window_seconds, whose));
  error.retry_after =
      std::chrono::seconds(std::max<std::int64_t>(1, ceil_seconds(outcome.retry_after)));
  if (policy.name == "org" && access) {
    error.limit =
        plans::limit_info(plans::Limit::api_requests_per_minute, policy.quota, access->plan->name);
  }
  verdict.refused = std::move(error);
  co_return verdict;
}

void RateLimits::Verdict::decorate(http::Response& response) const {
  if (policy.empty()) return;
  response.set("RateLimit-Policy", policy);
  response.set("RateLimit", state);
}

}  // namespace liftoff::api
