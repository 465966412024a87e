#include "liftoff/http/cors.hpp"

#include <algorithm>

#include "liftoff/core/origin.hpp"
#include "liftoff/http/wire.hpp"

namespace liftoff::http {
namespace {
using beast_http::field;
}  // namespace

Cors::Cors(CorsOptions options)
    : options_(std::move(options)),
      any_origin_(options_.origins.size() == 1 && options_.origins.front() == "*"),
      max_age_(std::to_string(options_.max_age.count())) {}

Result<std::string_view> Cors::origin(const Request& req) {
  auto range = req.equal_range(field::origin);
  if (range.first == range.second) return std::string_view{};
  std::string_view value = range.first->value();
  // Browsers send the canonical form; anything else did not come from one.
  if (std::next(range.first) != range.second || !core::is_canonical_origin(value)) {
    return Error{Errc::bad_request,
                 "invalid header",
                 {{"Origin", "is not one origin as browsers send it (scheme://host[:port])"}}};
  }
  return value;
}

std::string_view Cors::allow_origin(std::string_view origin, const Router::Params& params) const {
  if (origin.empty()) return {};
  if (any_origin_) return "*";
  if (std::find(options_.origins.begin(), options_.origins.end(), origin) != options_.origins.end())
    return origin;
  if (origin != "null" && options_.allowed_by_route && options_.allowed_by_route(params, origin))
    return origin;
  return {};
}

void Cors::decorate(Response& res, std::string_view allow_origin) const {
  add_vary(res, "Origin");
  if (allow_origin.empty()) return;
  res.set(field::access_control_allow_origin, allow_origin);
  res.set(field::access_control_expose_headers, kCorsExposedHeaders);
}

bool Cors::is_preflight(const Request& req) {
  return req.method() == Verb::options && req.find(field::origin) != req.end() &&
         req.find(field::access_control_request_method) != req.end();
}

Response Cors::options(const Request& req, bool preflight, std::string_view allow_origin,
                       const std::string& methods) const {
  // A new response has none of these fields: insert, no search for one to replace.
  Response res{beast_http::status::no_content, req.version()};
  res.insert(field::allow, methods);
  // The answer depends on the origin alone (not on what the preflight asked for).
  res.insert(field::vary, "Origin");
  if (allow_origin.empty()) return res;
  res.insert(field::access_control_allow_origin, allow_origin);
  if (!preflight) {
    res.insert(field::access_control_expose_headers, kCorsExposedHeaders);
    return res;
  }
  res.insert(field::access_control_allow_methods, methods);
  res.insert(field::access_control_allow_headers, kCorsAllowedHeaders);
  res.insert(field::access_control_max_age, max_age_);
  return res;
}

}  // namespace liftoff::http
