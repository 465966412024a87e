#include "liftoff/core/origin.hpp"

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

}  // namespace

std::optional<std::string> canonical_origin(std::string_view text) {
  if (text.empty() || text.size() > kMaxOriginLength) return std::nullopt;
  if (text == "null") return std::string(text);
  auto separator = text.find("://");
  if (separator == std::string_view::npos || separator == 0) return std::nullopt;
  auto scheme = text.substr(0, separator);
  if (!is_alpha(scheme.front())) return std::nullopt;
  for (char c : scheme) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return std::nullopt;
  }
  auto authority = text.substr(separator + 3);
  // The port follows the last ':' outside an IPv6 literal's brackets.
  auto colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']', colon) != std::string_view::npos)
    colon = std::string_view::npos;
  auto host = authority.substr(0, colon);
  if (!valid_host(host)) return std::nullopt;
  std::optional<unsigned> port;
  if (colon != std::string_view::npos) {
    auto digits = authority.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || digits.size() > 5 || ec != std::errc{} ||
        end != digits.data() + digits.size() || value > 65535)
      return std::nullopt;
    port = value;
  }
  std::string out;
  out.reserve(text.size());
  for (char c : scheme) out += lower(c);
  out += "://";
  for (char c : host) out += lower(c);
  bool default_port = port && ((out.starts_with("http://") && *port == 80) ||
                               (out.starts_with("https://") && *port == 443));
  if (port && !default_port) out += ":" + std::to_string(*port);
  return out;
}

}  // namespace liftoff::core
