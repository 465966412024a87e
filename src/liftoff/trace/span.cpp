#include "liftoff/trace/span.hpp"

#include <utility>

namespace liftoff::trace {

std::uint64_t unix_nanos(std::chrono::system_clock::time_point when) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count());
}

std::vector<std::pair<std::string, std::string>> propagation_headers(const Context& context) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!context.valid()) return headers;
  headers.emplace_back("traceparent", context.span.traceparent());
  if (!context.trace_state.empty()) headers.emplace_back("tracestate", context.trace_state);
  return headers;
}

ActiveSpan::ActiveSpan(const Context& parent, std::string_view name, Span::Kind kind)
    : context_(parent) {
  if (!parent.recording()) {
    // A root that is not recorded still names a span of its own to pass on: a traceparent's span
    // id is never all zeros.
    if (parent.valid() && parent.span.span_id == core::SpanId{})
      context_.span.span_id = core::new_span_id();
    return;
  }
  recorder_ = parent.recorder;
  span_.trace_id = parent.span.trace_id;
  span_.parent_span_id = parent.span.span_id;
  span_.span_id = core::new_span_id();
  span_.trace_state = parent.trace_state;
  span_.name = name;
  span_.kind = kind;
  span_.start_unix_nano = unix_nanos(std::chrono::system_clock::now());
  context_.span.span_id = span_.span_id;
}

ActiveSpan::ActiveSpan(ActiveSpan&& other) noexcept
    : recorder_(std::exchange(other.recorder_, nullptr)),
      context_(std::move(other.context_)),
      span_(std::move(other.span_)) {}

ActiveSpan& ActiveSpan::operator=(ActiveSpan&& other) noexcept {
  if (this != &other) {
    end();
    recorder_ = std::exchange(other.recorder_, nullptr);
    context_ = std::move(other.context_);
    span_ = std::move(other.span_);
  }
  return *this;
}

void ActiveSpan::set(std::string_view key, AttributeValue value) {
  if (recorder_ != nullptr) span_.attributes.push_back({std::string(key), std::move(value)});
}

void ActiveSpan::fail(std::string_view message) {
  if (recorder_ == nullptr) return;
  span_.error = true;
  span_.status_message = message;
}

void ActiveSpan::end() {
  if (recorder_ == nullptr) return;
  span_.end_unix_nano = unix_nanos(std::chrono::system_clock::now());
  std::exchange(recorder_, nullptr)->record(std::move(span_));
}

CacheLookup::CacheLookup(const Context& parent, std::string_view cache) {
  if (!parent.recording()) return;
  span_ = ActiveSpan(parent, "cache " + std::string(cache), Span::Kind::internal);
  span_.set("liftoff.cache", std::string(cache));
}

}  // namespace liftoff::trace
