#pragma once
// Cross-origin requests from browsers: the CORS protocol of the Fetch standard. A page on another
// origin (app.example.com calling api.example.com) may read an answer only when the answer names
// its origin in Access-Control-Allow-Origin; a request a page could not have sent with a plain form
// (JSON bodies, Authorization, DELETE...) is first checked by a preflight, OPTIONS with
// Access-Control-Request-Method, which the server answers for every route (router.hpp).
//
// Which origins: those of the deployment (on every route), and those a route's path parameters
// allow (an organization's own front ends, by the {org} of the path; the application decides, from
// memory). An origin not allowed gets no CORS headers at all: the browser then withholds the answer
// from the page, and nothing on the page learns why. Liftoff reads no cookies (credentials are
// bearer tokens in Authorization), so it never sends Access-Control-Allow-Credentials.
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/http/router.hpp"
#include "liftoff/http/types.hpp"

namespace liftoff::http {

// The request headers Liftoff reads, which a preflight allows.
inline constexpr std::string_view kCorsAllowedHeaders =
    "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, Last-Event-ID, "
    "Liftoff-Consistency, Prefer, traceparent, tracestate, X-Request-Id";
// The response headers a page may read beyond the CORS-safelisted ones.
inline constexpr std::string_view kCorsExposedHeaders =
    "ETag, Idempotent-Replayed, Liftoff-Consistency, Liftoff-Next-Cursor, Location, "
    "Preference-Applied, RateLimit, RateLimit-Policy, Retry-After, traceresponse, "
    "WWW-Authenticate, "
    "X-Request-Id";

struct CorsOptions {
  // Canonical origins (core::canonical_origin) allowed on every route; {"*"}: any origin.
  std::vector<std::string> origins;
  std::chrono::seconds max_age{7200};  // Access-Control-Max-Age of a preflight's answer
  // Whether the matched route's path parameters allow `origin` too (an org's own list). Called on
  // a worker thread for each request that carries Origin: from memory, never blocking.
  std::function<bool(const Router::Params& params, std::string_view origin)> allowed_by_route;
};

class Cors {
 public:
  explicit Cors(CorsOptions options);

  // The request's Origin: empty when it has none; bad_request naming the header when it is not an
  // origin or appears more than once.
  [[nodiscard]] static Result<std::string_view> origin(const Request& req);

  // The Access-Control-Allow-Origin for `origin` on a route with `params`: the origin itself, "*"
  // when any origin is allowed, or empty (none: not allowed, or no Origin).
  [[nodiscard]] std::string_view allow_origin(std::string_view origin,
                                              const Router::Params& params) const;

  // What every answer gets: Vary: Origin (an answer differs by it) and, when `allow_origin` is not
  // empty, Access-Control-Allow-Origin and Access-Control-Expose-Headers.
  void decorate(Response& res, std::string_view allow_origin) const;

  // Whether the request is a preflight: OPTIONS with Origin and Access-Control-Request-Method.
  [[nodiscard]] static bool is_preflight(const Request& req);

  // The answer to OPTIONS on a route serving `methods`: 204 with Allow and, for a preflight
  // (is_preflight) from an allowed origin, what lets the browser go on.
  [[nodiscard]] Response options(const Request& req, bool preflight, std::string_view allow_origin,
                                 const std::string& methods) const;

 private:
  CorsOptions options_;
  bool any_origin_ = false;
  std::string max_age_;
};

}  // namespace liftoff::http
