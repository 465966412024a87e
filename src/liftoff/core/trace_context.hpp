#pragma once
// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` a request brings
// names the trace it belongs to and the caller's span; the server continues that trace with a span
// of its own (or starts a new trace) and says which in `traceresponse` (Trace Context Level 2).
// Sampling is parent-based: a caller's decision is followed, and a new trace is sampled at `ratio`.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace liftoff::core {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

struct TraceContext {
  TraceId trace_id{};
  SpanId span_id{};  // the span this context names: the caller's, when parsed from a request
  std::uint8_t flags = 0;

  static constexpr std::uint8_t kSampled = 0x01;
  static constexpr std::uint8_t kRandom = 0x02;  // Level 2: the trace id's right 7 bytes are random
  [[nodiscard]] bool sampled() const { return (flags & kSampled) != 0; }
  // "00-<trace id>-<span id>-<flags>", lower-case hex.
  [[nodiscard]] std::string traceparent() const;
  [[nodiscard]] std::string trace_id_hex() const;
  [[nodiscard]] std::string span_id_hex() const;
};

// The parent named by a request's `traceparent` header, or nullopt when it is malformed (which the
// specification says to treat as no parent: the request starts a new trace). Version 00 must be
// exactly 55 characters; a later version is read by its first 55 (and must be followed by '-' if
// longer); version ff, upper-case hex and all-zero ids are invalid.
[[nodiscard]] std::optional<TraceContext> parse_traceparent(std::string_view value);

// Whether a `tracestate` value is one to pass on: at most 512 characters and 32 comma-separated
// members, each `key=value` with the specification's characters. (One that is not is dropped, as
// the specification allows.)
[[nodiscard]] bool valid_tracestate(std::string_view value);

// Random ids, never all zeros. Thread-safe (per-thread state seeded from the OS).
[[nodiscard]] TraceId new_trace_id();
[[nodiscard]] SpanId new_span_id();

// Parent-based ratio sampling. A new trace is sampled when its id's last 8 bytes (random in every
// trace id, which Level 2 requires of the rightmost 7) fall below `ratio` of their range, so every
// service sampling at the same ratio keeps the same traces.
class TraceSampler {
 public:
  explicit TraceSampler(double ratio);
  [[nodiscard]] bool sample_new(const TraceId& trace_id) const;
  [[nodiscard]] double ratio() const { return ratio_; }

 private:
  double ratio_;
  std::uint64_t threshold_;  // sampled when the id's last 8 bytes are below it (ratio 1: all)
};

// The server's span of a request: the parent's trace continued (its sampled flag followed) or a new
// trace sampled by `sampler`; a new span id either way.
[[nodiscard]] TraceContext server_span(const std::optional<TraceContext>& parent,
                                       const TraceSampler& sampler);

}  // namespace liftoff::core
