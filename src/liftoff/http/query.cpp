#include "liftoff/http/query.hpp"

#include <algorithm>
#include <boost/url/parse_query.hpp>
#include <charconv>

#include "liftoff/core/time.hpp"

namespace liftoff::http {

Result<QueryParams> parse_query(std::string_view query, std::span<const std::string_view> known) {
  QueryParams out;
  if (query.empty()) return out;
  // A NUL-terminated copy: Boost.URL 1.81's parse_query reads past the end of its argument with
  // strlen (found by ASan on a view into the request target).
  // In a query string '+' is a space (application/x-www-form-urlencoded: what browsers' forms,
  // URLSearchParams, curl --data-urlencode and Python's urlencode send); a '+' itself comes as %2B.
  std::string text;
  text.reserve(query.size());
  for (char c : query) {
    if (c == '+') {
      text += "%20";
    } else {
      text += c;
    }
  }
  auto parsed = boost::urls::parse_query(boost::urls::string_view(text.c_str(), text.size()));
  if (!parsed) return make_error(Errc::bad_request, "the query string is malformed");
  Error unknown{Errc::bad_request, "unknown query parameters", {}};
  for (auto param : *parsed) {
    std::string key = param.key.decode();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      unknown.fields.push_back({key, "is not a known query parameter"});
      continue;
    }
    if (!out.emplace(key, param.has_value ? param.value.decode() : std::string()).second) {
      return Error{Errc::bad_request, "a query parameter is repeated", {{key, "is repeated"}}};
    }
  }
  if (!unknown.fields.empty()) return unknown;
  return out;
}

Result<std::int32_t> int_param(const QueryParams& query, std::string_view name,
                               std::int32_t fallback, std::int32_t min, std::int32_t max) {
  auto it = query.find(name);
  if (it == query.end()) return fallback;
  const auto& text = it->second;
  std::int32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    return Error{Errc::bad_request,
                 "invalid query parameter",
                 {{std::string(name), "must be an integer from " + std::to_string(min) + " to " +
                                          std::to_string(max)}}};
  }
  return value;
}

Result<std::optional<std::chrono::sys_time<std::chrono::microseconds>>> time_param(
    const QueryParams& query, std::string_view name) {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  auto t = core::parse_rfc3339(it->second);
  if (!t) {
    return Error{Errc::bad_request,
                 "invalid query parameter",
                 {{std::string(name), "must be an RFC 3339 time, e.g. 2026-11-27T12:00:00Z"}}};
  }
  return t;
}

std::optional<std::string> text_param(const QueryParams& query, std::string_view name) {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

std::optional<std::vector<std::string>> list_param(const QueryParams& query,
                                                   std::string_view name) {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  std::vector<std::string> items;
  std::string_view text = it->second;
  for (;;) {
    auto comma = text.find(',');
    items.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

}  // namespace liftoff::http
