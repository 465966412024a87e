#pragma once
// Spans (OpenTelemetry's data model: docs/decisions/0023-tracing.md): a finished Span as it is
// exported, the Recorder that takes it, and the Context that work carries (a request's scope, a
// job) so that what it does becomes spans under it.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "liftoff/core/trace_context.hpp"

namespace liftoff::trace {

using AttributeValue = std::variant<std::string, std::int64_t, double, bool>;

struct Attribute {
  std::string key;
  AttributeValue value;
};

struct Span {
  enum class Kind : std::uint8_t {
    internal = 1,
    server = 2,
    client = 3,
    producer = 4,
    consumer = 5
  };

  core::TraceId trace_id{};
  core::SpanId span_id{};
  core::SpanId parent_span_id{};  // all zero: a root span
  std::string trace_state;
  std::string name;
  Kind kind = Kind::internal;
  std::uint64_t start_unix_nano = 0;
  std::uint64_t end_unix_nano = 0;
  std::vector<Attribute> attributes;
  bool error = false;  // status ERROR (else UNSET)
  std::string status_message;
};

// Where finished spans go: the exporter (SpanExporter), or a test's collector.
class Recorder {
 public:
  virtual ~Recorder() = default;
  // Thread-safe; never blocks.
  virtual void record(Span span) = 0;
};

// The span that new spans are children of, and where they go. Inert (new spans are not recorded)
// when the trace is not sampled or there is no recorder; the context still names the trace, to
// pass on to the services it calls (traceparent).
struct Context {
  core::TraceContext span;  // all zero: no trace; a zero span id: new spans are roots
  std::string trace_state;  // the trace's tracestate, passed on
  Recorder* recorder = nullptr;

  [[nodiscard]] bool recording() const { return recorder != nullptr && span.sampled(); }
  [[nodiscard]] bool valid() const { return span.trace_id != core::TraceId{}; }
};

[[nodiscard]] std::uint64_t unix_nanos(std::chrono::system_clock::time_point when);

// The headers that pass `context` on to what it calls (W3C `traceparent`, and `tracestate` when
// there is one), so the callee's spans join the trace: HTTP headers, and the same names as email
// headers. None without a trace.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> propagation_headers(
    const Context& context);

// A span being recorded: started when made, recorded when ended (end() or the destructor). Made
// from an inert context it records nothing and costs next to nothing.
class ActiveSpan {
 public:
  ActiveSpan() = default;
  ActiveSpan(const Context& parent, std::string_view name, Span::Kind kind);
  ~ActiveSpan() { end(); }
  ActiveSpan(ActiveSpan&& other) noexcept;
  ActiveSpan& operator=(ActiveSpan&& other) noexcept;
  ActiveSpan(const ActiveSpan&) = delete;
  ActiveSpan& operator=(const ActiveSpan&) = delete;

  [[nodiscard]] bool recording() const { return recorder_ != nullptr; }
  // Attributes and status, kept only while recording.
  void set(std::string_view key, AttributeValue value);
  void fail(std::string_view message);
  // The context for this span's children and for the traceparent of the call it makes: this span
  // when recording, else the parent's context (with a span id of its own when the parent names
  // none: the root of a new trace).
  [[nodiscard]] const Context& context() const { return context_; }
  void end();

 private:
  Recorder* recorder_ = nullptr;  // null: not recording (or ended)
  Context context_;
  Span span_;
};

// A lookup in an in-process cache that saves the database a round trip ("session", "record
// list"): an internal span named "cache <cache>", with liftoff.cache.hit set once the lookup knows.
// It covers the lookup only; on a miss the statements that fill it are the request's, beside it.
class CacheLookup {
 public:
  CacheLookup(const Context& parent, std::string_view cache);
  void hit(bool found) {
    if (span_.recording()) span_.set("liftoff.cache.hit", found);
    span_.end();
  }

 private:
  ActiveSpan span_;
};

}  // namespace liftoff::trace
