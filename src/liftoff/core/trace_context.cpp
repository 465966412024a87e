#include "liftoff/core/trace_context.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace liftoff::core {
namespace {

constexpr std::string_view kDigits = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid in traceparent
}

// Lower-case hex `text` (two digits a byte) into `out`; false on any other character.
template <std::size_t N>
bool read_hex(std::string_view text, std::array<std::uint8_t, N>& out) {
  if (text.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    int high = hex_value(text[2 * i]);
    int low = hex_value(text[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<std::uint8_t>(high * 16 + low);
  }
  return true;
}

template <std::size_t N>
void append_hex(std::string& out, const std::array<std::uint8_t, N>& bytes) {
  for (auto b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
}

template <std::size_t N>
bool all_zero(const std::array<std::uint8_t, N>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

template <std::size_t N>
std::array<std::uint8_t, N> random_id() {
  thread_local std::mt19937_64 rng{(static_cast<std::uint64_t>(std::random_device{}()) << 32) ^
                                   std::random_device{}()};
  std::array<std::uint8_t, N> id{};
  do {
    for (std::size_t i = 0; i < N; i += 8) {
      auto word = rng();
      for (std::size_t j = 0; j < 8 && i + j < N; ++j)
        id[i + j] = static_cast<std::uint8_t>(word >> (8 * j));
    }
  } while (all_zero(id));
  return id;
}

// key: lcalpha (lcalpha / DIGIT / "_" / "-" / "*" / "/"), up to 256, optionally tenant@system;
// value: up to 256 printable ASCII characters but ',' and '=', not ending in a space.
bool valid_member(std::string_view member) {
  auto eq = member.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq > 256) return false;
  auto key = member.substr(0, eq);
  auto value = member.substr(eq + 1);
  auto key_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
           c == '/' || c == '@';
  };
  if (!std::all_of(key.begin(), key.end(), key_char) || std::count(key.begin(), key.end(), '@') > 1)
    return false;
  if (value.empty() || value.size() > 256 || value.back() == ' ') return false;
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

}  // namespace

std::string TraceContext::traceparent() const {
  std::string out = "00-";
  append_hex(out, trace_id);
  out.push_back('-');
  append_hex(out, span_id);
  out.push_back('-');
  out.push_back(kDigits[flags >> 4]);
  out.push_back(kDigits[flags & 0x0f]);
  return out;
}

std::string TraceContext::trace_id_hex() const {
  std::string out;
  append_hex(out, trace_id);
  return out;
}

std::string TraceContext::span_id_hex() const {
  std::string out;
  append_hex(out, span_id);
  return out;
}

std::optional<TraceContext> parse_traceparent(std::string_view value) {
  constexpr std::size_t kLength = 55;  // 2 + 1 + 32 + 1 + 16 + 1 + 2
  if (value.size() < kLength) return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  if (!read_hex(value.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  if (version[0] == 0 ? value.size() != kLength : value.size() > kLength && value[kLength] != '-')
    return std::nullopt;
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  TraceContext context;
  std::array<std::uint8_t, 1> flags{};
  if (!read_hex(value.substr(3, 32), context.trace_id) ||
      !read_hex(value.substr(36, 16), context.span_id) || !read_hex(value.substr(53, 2), flags))
    return std::nullopt;
  if (all_zero(context.trace_id) || all_zero(context.span_id)) return std::nullopt;
  context.flags = flags[0];
  return context;
}

bool valid_tracestate(std::string_view value) {
  if (value.size() > 512) return false;
  std::size_t members = 0;
  while (!value.empty()) {
    auto comma = value.find(',');
    auto member = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    // Optional white space around members; empty members are allowed.
    while (!member.empty() && (member.front() == ' ' || member.front() == '\t'))
      member.remove_prefix(1);
    while (!member.empty() && (member.back() == ' ' || member.back() == '\t'))
      member.remove_suffix(1);
    if (member.empty()) continue;
    if (++members > 32 || !valid_member(member)) return false;
  }
  return true;
}

TraceId new_trace_id() {
  return random_id<16>();
}
SpanId new_span_id() {
  return random_id<8>();
}

TraceSampler::TraceSampler(double ratio) : ratio_(std::clamp(ratio, 0.0, 1.0)) {
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  threshold_ =
      ratio_ >= 1.0 ? kMax : static_cast<std::uint64_t>(std::ldexp(ratio_, 64));  // ratio * 2^64
}

bool TraceSampler::sample_new(const TraceId& trace_id) const {
  if (ratio_ >= 1.0) return true;
  std::uint64_t low = 0;
  for (std::size_t i = 8; i < 16; ++i) low = (low << 8) | trace_id[i];
  return low < threshold_;
}

TraceContext server_span(const std::optional<TraceContext>& parent, const TraceSampler& sampler) {
  TraceContext span;
  if (parent) {
    span.trace_id = parent->trace_id;
    span.flags = parent->flags & (TraceContext::kSampled | TraceContext::kRandom);
  } else {
    span.trace_id = new_trace_id();
    span.flags = TraceContext::kRandom;
    if (sampler.sample_new(span.trace_id)) span.flags |= TraceContext::kSampled;
  }
  span.span_id = new_span_id();
  return span;
}

}  // namespace liftoff::core
