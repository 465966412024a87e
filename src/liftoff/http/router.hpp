#pragma once
// Maps (method, path) to a handler. Patterns are literal segments and `{name}` parameters:
// "/v1/orgs/{org}/members/{user}". A literal segment beats a parameter at the same position, so
// "/v1/orgs/mine" and "/v1/orgs/{org}" can coexist. No match: 404; path matches but method does
// not: 405 with Allow. HEAD is served by the GET handler; OPTIONS by the server (see cors.hpp). Not
// thread-safe for `add`; `match` is const and safe from any thread once routes are added (all adds
// happen before the server starts).
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "liftoff/http/types.hpp"

namespace liftoff::http {

// What a request may cost the process: a heavy one (record data and logs in bulk, large bodies,
// streams) is refused while the process is short of memory (see ServerOptions::overloaded).
enum class Cost { light, heavy };

class Router {
 public:
  struct Entry {
    Verb verb;
    Handler handler;
    Cost cost;
  };
  struct Route {
    std::string pattern;
    std::vector<std::string> segments;  // "{x}" marks a parameter
    std::vector<Entry> handlers;
    std::size_t literal_count = 0;
    std::string allow;  // the methods served, for Allow: "GET, HEAD, OPTIONS, POST"
  };
  using Params = std::vector<std::pair<std::string_view, std::string>>;
  struct Match {
    const Route* route;
    const Handler* handler;
    Params params;
    Cost cost = Cost::light;
  };
  struct NotFound {};
  struct MethodNotAllowed {  // the path is a route's (Allow: route->allow), the method is not
    const Route* route;
    Params params;
  };
  using Outcome = std::variant<Match, NotFound, MethodNotAllowed>;

  // Throws std::invalid_argument on a malformed pattern or a duplicate (method, pattern): a bug.
  void add(Verb method, std::string_view pattern, Handler handler, Cost cost = Cost::light);

  // `segments` are the decoded path segments ("/a/b" -> {"a","b"}).
  [[nodiscard]] Outcome match(Verb method, std::span<const std::string> segments) const;
  [[nodiscard]] Outcome match(Verb method, const std::vector<std::string>& segments) const {
    return match(method, std::span(segments));
  }

  [[nodiscard]] const std::deque<Route>& routes() const { return routes_; }

 private:
  std::deque<Route> routes_;  // deque: Route addresses stay valid (metrics keep pointers)
};

}  // namespace liftoff::http
