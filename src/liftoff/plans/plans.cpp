#include "liftoff/plans/plans.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace liftoff::plans {
namespace {

constexpr std::array<std::string_view, kLimitCount> kNames = {
    "seats",         "collections",       "records",     "storage_bytes", "api_requests_per_minute",
    "event_streams", "webhook_endpoints", "jobs_per_day"};

constexpr std::int64_t kMiB = std::int64_t{1} << 20;
constexpr std::int64_t kGiB = std::int64_t{1} << 30;

// Limits in the order of Limit: seats, collections, records, storage, requests/minute, streams,
// webhook endpoints, jobs/day. The seed's tiers: Starter $29 up to 100 users, Pro $99 up to 1,000,
// Enterprise $499 with custom limits (these are its defaults).
const std::array<Plan, 4> kCatalogue = {{
    {"free", 0, true, {{5, 10, 10'000, 100 * kMiB, 600, 10, 2, 1'000}}},
    {"starter", 2'900, true, {{100, 50, 1'000'000, 10 * kGiB, 6'000, 200, 10, 100'000}}},
    {"pro", 9'900, true, {{1'000, 200, 10'000'000, 100 * kGiB, 30'000, 2'000, 50, 1'000'000}}},
    {"enterprise",
     49'900,
     false,
     {{10'000, 1'000, 100'000'000, 1'024 * kGiB, 120'000, 20'000, 200, 10'000'000}}},
}};

}  // namespace

std::string_view to_string(Limit limit) {
  return kNames[static_cast<std::size_t>(limit)];
}

std::optional<Limit> parse_limit(std::string_view name) {
  for (std::size_t i = 0; i < kLimitCount; ++i) {
    if (kNames[i] == name) return kLimits[i];
  }
  return std::nullopt;
}

std::span<const Plan> catalogue() {
  return kCatalogue;
}

const Plan* find_plan(std::string_view name) {
  for (const auto& plan : kCatalogue) {
    if (plan.name == name) return &plan;
  }
  return nullptr;
}

const Plan& default_plan() {
  return kCatalogue.front();
}

Result<std::string> parse_overrides(std::string_view json) {
  if (json.empty()) return std::string("{}");
  boost::system::error_code ec;
  auto value = boost::json::parse(json, ec);
  if (ec || !value.is_object())
    return Error{Errc::validation_failed,
                 "the limits are invalid",
                 {{"limits", "expected a JSON object of limit names to integers"}}};
  std::vector<FieldError> problems;
  boost::json::object canonical;
  for (const auto& [key, v] : value.as_object()) {
    const std::string field = "limits." + std::string(key);
    auto limit = parse_limit(key);
    if (!limit) {
      problems.push_back({field, "is not a known limit"});
      continue;
    }
    std::int64_t number = -1;
    if (v.is_int64()) number = v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= INT64_MAX)
      number = static_cast<std::int64_t>(v.as_uint64());
    if (number < 0) {
      problems.push_back({field, "must be a non-negative integer"});
      continue;
    }
    canonical[to_string(*limit)] = number;
  }
  if (!problems.empty()) return Error{Errc::validation_failed, "the limits are invalid", problems};
  return boost::json::serialize(canonical);
}

Limits effective_limits(const Plan& plan, const boost::json::object& overrides) {
  Limits limits = plan.limits;
  for (const auto& [key, v] : overrides) {
    if (auto limit = parse_limit(key)) limits[*limit] = v.to_number<std::int64_t>();
  }
  return limits;
}

Limits effective_limits(const Plan& plan, std::string_view overrides_json) {
  if (overrides_json.empty() || overrides_json == "{}") return plan.limits;
  return effective_limits(plan, boost::json::parse(overrides_json).as_object());
}

std::vector<FieldError> over_limits(const Limits& limits, const Holdings& holdings) {
  std::vector<FieldError> over;
  for (auto limit : kLimits) {
    const auto& held = holdings[limit];
    if (held && *held > limits[limit]) {
      over.push_back(
          {std::string(to_string(limit)),
           std::to_string(*held) + " in use; the plan allows " + std::to_string(limits[limit])});
    }
  }
  return over;
}

std::string_view plan_lifting(Limit limit, std::int64_t value, std::string_view current) {
  bool past_current = false;
  for (const auto& plan : kCatalogue) {
    if (past_current && plan.self_serve && plan.limits[limit] > value) return plan.name;
    if (plan.name == current) past_current = true;
  }
  return "enterprise";
}

LimitReached limit_info(Limit limit, std::int64_t value, std::string_view plan) {
  return {std::string(to_string(limit)), value, std::string(plan),
          std::string(plan_lifting(limit, value, plan))};
}

Error limit_reached(Limit limit, std::int64_t value, std::string_view plan, std::string detail) {
  Error error = make_error(Errc::payment_required, std::move(detail));
  error.limit = limit_info(limit, value, plan);
  return error;
}

}  // namespace liftoff::plans
