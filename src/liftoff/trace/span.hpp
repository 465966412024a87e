#pragma once
// A finished span, as it is exported (OpenTelemetry's data model: docs/decisions/0023-tracing.md).
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "liftoff/core/trace_context.hpp"

namespace liftoff::trace {

struct Attribute {
  std::string key;
  std::variant<std::string, std::int64_t, double, bool> value;
};

struct Span {
  enum class Kind : std::uint8_t { internal = 1, server = 2, client = 3 };

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

}  // namespace liftoff::trace
