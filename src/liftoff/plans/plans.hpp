#pragma once
// The plans an organization can be on and what each allows
// (docs/decisions/0016-plans-and-limits.md). The catalogue is code: a plan's limits change with a
// release, and every process agrees on them. An Enterprise org's contract may raise or lower any
// limit: its overrides are stored with the org (orgs.plan_limits) and laid over the plan's own by
// effective_limits().
//
// Where each limit holds: seats when an invitation is made or accepted; collections and webhook
// endpoints when one is created; API requests per minute in the rate limiter (ratelimit/); event
// streams when one opens (per process, records::EventHub); records and storage when records are
// created, against the usage meter's holdings (usage/); jobs per day by the workers, which hold an
// org's jobs once its day's are spent (usage::JobQuota).
#include <array>
#include <boost/json/fwd.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "liftoff/core/error.hpp"

namespace liftoff::plans {

enum class Limit : std::uint8_t {
  seats,                    // members of the org
  collections,              // record collections
  records,                  // records stored
  storage_bytes,            // bytes of record data stored
  api_requests_per_minute,  // requests to the org's routes
  event_streams,            // record event and notification streams open at once
  webhook_endpoints,        // live endpoints
  jobs_per_day,             // background jobs enqueued for the org (deliveries, email)
};
inline constexpr std::size_t kLimitCount = 8;
inline constexpr std::array<Limit, kLimitCount> kLimits = {Limit::seats,
                                                           Limit::collections,
                                                           Limit::records,
                                                           Limit::storage_bytes,
                                                           Limit::api_requests_per_minute,
                                                           Limit::event_streams,
                                                           Limit::webhook_endpoints,
                                                           Limit::jobs_per_day};

[[nodiscard]] std::string_view to_string(Limit limit);
[[nodiscard]] std::optional<Limit> parse_limit(std::string_view name);

// One value per limit, indexed by Limit.
struct Limits {
  std::array<std::int64_t, kLimitCount> values{};
  [[nodiscard]] std::int64_t operator[](Limit limit) const {
    return values[static_cast<std::size_t>(limit)];
  }
  std::int64_t& operator[](Limit limit) { return values[static_cast<std::size_t>(limit)]; }
  bool operator==(const Limits&) const = default;
};

// How much an org holds of each limit that counts what it keeps (seats, collections, records,
// storage, webhook endpoints); nullopt for the limits on rates and on what is open at once.
struct Holdings {
  std::array<std::optional<std::int64_t>, kLimitCount> values{};
  [[nodiscard]] const std::optional<std::int64_t>& operator[](Limit limit) const {
    return values[static_cast<std::size_t>(limit)];
  }
  std::optional<std::int64_t>& operator[](Limit limit) {
    return values[static_cast<std::size_t>(limit)];
  }
};

// Each limit that `holdings` exceed under `limits`, as a field error naming the limit ("seats":
// "12 in use; the plan allows 5"): what a refused downgrade answers.
[[nodiscard]] std::vector<FieldError> over_limits(const Limits& limits, const Holdings& holdings);

struct Plan {
  std::string_view name;
  std::int64_t monthly_price_cents;
  bool self_serve;  // an org's owner may choose it; the others are set by an operator
  Limits limits;
};

// Every plan, cheapest first: free, starter, pro, enterprise.
[[nodiscard]] std::span<const Plan> catalogue();
[[nodiscard]] const Plan* find_plan(std::string_view name);
// The plan a new org starts on.
[[nodiscard]] const Plan& default_plan();

// The plan's limits with an org's overrides (a JSON object of limit name -> non-negative integer;
// "{}" or empty for none) laid over them. Overrides that do not parse are a bug of whoever stored
// them: validate with parse_overrides first.
[[nodiscard]] Limits effective_limits(const Plan& plan, std::string_view overrides_json);
[[nodiscard]] Limits effective_limits(const Plan& plan, const boost::json::object& overrides);
// A JSON object of limit overrides, checked: unknown limits, negative or non-integer values are a
// 422 naming each (fields "limits.<name>"). Returns the canonical text ("{}" for none).
[[nodiscard]] Result<std::string> parse_overrides(std::string_view json);

// The cheapest plan past `current` in the catalogue whose `limit` is above `value`: what lifts it
// ("enterprise" when no self-serve plan does).
[[nodiscard]] std::string_view plan_lifting(Limit limit, std::int64_t value,
                                            std::string_view current);

// The error for a request that would take `limit` past `value` on plan `plan`: 402 for what a
// plan buys (seats, collections, ...), naming the limit, its value, the plan and the plan that
// lifts it.
[[nodiscard]] Error limit_reached(Limit limit, std::int64_t value, std::string_view plan,
                                  std::string detail);
// What such an error says of the limit (also the org's 429s: a rate the plan sets).
[[nodiscard]] LimitReached limit_info(Limit limit, std::int64_t value, std::string_view plan);

// What an org's plan allows of one limit, for a domain that enforces it (records counts its
// collections, webhooks its endpoints) without knowing plans: past `value`, reached() is the 402.
struct Allowance {
  Limit limit;
  std::int64_t value;
  std::string_view plan;  // the org's plan's name (the catalogue's, static)
  [[nodiscard]] Error reached(std::string detail) const {
    return limit_reached(limit, value, plan, std::move(detail));
  }
};

}  // namespace liftoff::plans
