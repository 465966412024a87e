#include "liftoff/core/origin.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace liftoff::core {
namespace {

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

// RFC 3986 reg-name without percent-encoding (browsers send hosts as ASCII, punycode for IDNs),
// or an IPv6 literal in brackets.
bool valid_host(std::string_view host) {
  if (host.empty()) return false;
  if (host.front() == '[') {
    if (host.size() < 4 || host.back() != ']') return false;
    for (char c : host.substr(1, host.size() - 2)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    }
    return true;
  }
  for (char c : host) {
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_' && c != '~') return false;
  }
  return true;
}

struct OriginParts {
  std::string_view scheme;
  std::string_view host;
  std::optional<unsigned> port;
};

// The parts of `text` when it is an origin (any case, any port); nullopt otherwise. "null" is not
// handled here.
std::optional<OriginParts> origin_parts(std::string_view text) {
  if (text.empty() || text.size() > kMaxOriginLength) return std::nullopt;
  auto separator = text.find("://");
  if (separator == std::string_view::npos || separator == 0) return std::nullopt;
  OriginParts parts{text.substr(0, separator), {}, std::nullopt};
  if (!is_alpha(parts.scheme.front())) return std::nullopt;
  for (char c : parts.scheme) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return std::nullopt;
  }
  auto authority = text.substr(separator + 3);
  // The port follows the last ':' outside an IPv6 literal's brackets.
  auto colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']', colon) != std::string_view::npos)
    colon = std::string_view::npos;
  parts.host = authority.substr(0, colon);
  if (!valid_host(parts.host)) return std::nullopt;
  if (colon != std::string_view::npos) {
    auto digits = authority.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || digits.size() > 5 || ec != std::errc{} ||
        end != digits.data() + digits.size() || value > 65535)
      return std::nullopt;
    parts.port = value;
  }
  return parts;
}

bool has_upper(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

bool default_port(std::string_view scheme, unsigned port) {
  auto is = [&](std::string_view name) {
    return scheme.size() == name.size() && std::equal(scheme.begin(), scheme.end(), name.begin(),
                                                      [](char a, char b) { return lower(a) == b; });
  };
  return (is("http") && port == 80) || (is("https") && port == 443);
}

}  // namespace

std::optional<std::string> canonical_origin(std::string_view text) {
  if (text == "null") return std::string(text);
  auto parts = origin_parts(text);
  if (!parts) return std::nullopt;
  std::string out;
  out.reserve(text.size());
  for (char c : parts->scheme) out += lower(c);
  out += "://";
  for (char c : parts->host) out += lower(c);
  if (parts->port && !default_port(parts->scheme, *parts->port))
    out += ":" + std::to_string(*parts->port);
  return out;
}

bool is_canonical_origin(std::string_view text) {
  if (text == "null") return true;
  auto parts = origin_parts(text);
  return parts && !has_upper(parts->scheme) && !has_upper(parts->host) &&
         !(parts->port && default_port(parts->scheme, *parts->port));
}

}  // namespace liftoff::core
