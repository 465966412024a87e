#include "liftoff/http/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace liftoff::http {
namespace {

bool is_param(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

std::vector<std::string> split_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
  }
  std::vector<std::string> out;
  if (pattern == "/") return out;
  std::size_t pos = 1;
  while (pos <= pattern.size()) {
    auto next = pattern.find('/', pos);
    if (next == std::string_view::npos) next = pattern.size();
    std::string segment(pattern.substr(pos, next - pos));
    if (segment.empty())
      throw std::invalid_argument("empty segment in route " + std::string(pattern));
    if (segment.find_first_of("{}") != std::string::npos && !is_param(segment)) {
      throw std::invalid_argument("malformed parameter in route " + std::string(pattern));
    }
    out.push_back(std::move(segment));
    pos = next + 1;
  }
  return out;
}

// The Allow value of a route: its methods, HEAD with GET, and OPTIONS, which the server answers.
std::string allow_of(const std::vector<Router::Entry>& handlers) {
  std::vector<std::string> allowed{"OPTIONS"};
  for (const auto& entry : handlers) {
    allowed.emplace_back(beast_http::to_string(entry.verb));
    if (entry.verb == Verb::get) allowed.emplace_back("HEAD");
  }
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
  std::string allow;
  for (const auto& a : allowed) allow += (allow.empty() ? "" : ", ") + a;
  return allow;
}

}  // namespace

void Router::add(Verb method, std::string_view pattern, Handler handler, Cost cost) {
  if (method == Verb::options)
    throw std::invalid_argument("OPTIONS is answered by the server: " + std::string(pattern));
  auto segments = split_pattern(pattern);
  for (auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    bool same_shape = true;
    for (std::size_t i = 0; i < segments.size() && same_shape; ++i) {
      same_shape =
          is_param(route.segments[i]) ? is_param(segments[i]) : route.segments[i] == segments[i];
    }
    if (!same_shape) continue;
    if (route.pattern != pattern) {
      throw std::invalid_argument("route " + std::string(pattern) + " conflicts with " +
                                  route.pattern);
    }
    for (const auto& entry : route.handlers) {
      if (entry.verb == method)
        throw std::invalid_argument("duplicate route " + std::string(pattern));
    }
    route.handlers.push_back({method, std::move(handler), cost});
    route.allow = allow_of(route.handlers);
    return;
  }
  Route route{std::string(pattern), std::move(segments), {}, 0, {}};
  route.literal_count =
      static_cast<std::size_t>(std::count_if(route.segments.begin(), route.segments.end(),
                                             [](const std::string& s) { return !is_param(s); }));
  route.handlers.push_back({method, std::move(handler), cost});
  route.allow = allow_of(route.handlers);
  routes_.push_back(std::move(route));
}

Router::Outcome Router::match(Verb method, std::span<const std::string> segments) const {
  // Among routes whose shape matches, prefer the one whose first differing segment is literal.
  const Route* best = nullptr;
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      ok = is_param(route.segments[i]) ? !segments[i].empty() : route.segments[i] == segments[i];
    }
    if (!ok) continue;
    if (best == nullptr) {
      best = &route;
      continue;
    }
    for (std::size_t i = 0; i < segments.size(); ++i) {
      bool a = is_param(best->segments[i]);
      bool b = is_param(route.segments[i]);
      if (a != b) {
        if (a) best = &route;
        break;
      }
    }
  }
  if (best == nullptr) return NotFound{};

  const Entry* found = nullptr;
  for (const auto& entry : best->handlers) {
    if (entry.verb == method ||
        (method == Verb::head && entry.verb == Verb::get && found == nullptr)) {
      found = &entry;
      if (entry.verb == method) break;
    }
  }
  Params params;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const auto& s = best->segments[i];
    if (is_param(s)) params.emplace_back(std::string_view(s).substr(1, s.size() - 2), segments[i]);
  }
  if (found == nullptr) return MethodNotAllowed{best, std::move(params)};
  Match m{best, &found->handler, std::move(params), found->cost};
  return m;
}

}  // namespace liftoff::http
