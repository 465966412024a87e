#include "liftoff/trace/otlp.hpp"

#include <cstring>

namespace liftoff::trace {
namespace {

// Protobuf wire types.
constexpr unsigned kVarint = 0;
constexpr unsigned kFixed64 = 1;
constexpr unsigned kLengthDelimited = 2;

void varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void tag(std::string& out, unsigned field, unsigned wire_type) {
  varint(out, (static_cast<std::uint64_t>(field) << 3) | wire_type);
}

void bytes_field(std::string& out, unsigned field, std::string_view bytes) {
  tag(out, field, kLengthDelimited);
  varint(out, bytes.size());
  out.append(bytes);
}

template <std::size_t N>
void id_field(std::string& out, unsigned field, const std::array<std::uint8_t, N>& id) {
  bytes_field(out, field, std::string_view(reinterpret_cast<const char*>(id.data()), N));
}

void fixed64_field(std::string& out, unsigned field, std::uint64_t value) {
  tag(out, field, kFixed64);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

void varint_field(std::string& out, unsigned field, std::uint64_t value) {
  tag(out, field, kVarint);
  varint(out, value);
}

// AnyValue: string_value 1, bool_value 2, int_value 3, double_value 4.
std::string any_value(const Attribute& attribute) {
  std::string out;
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          bytes_field(out, 1, v);
        } else if constexpr (std::is_same_v<T, bool>) {
          varint_field(out, 2, v ? 1 : 0);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          varint_field(out, 3, static_cast<std::uint64_t>(v));
        } else {
          std::uint64_t bits = 0;
          std::memcpy(&bits, &v, sizeof bits);
          fixed64_field(out, 4, bits);
        }
      },
      attribute.value);
  return out;
}

// KeyValue: key 1, value 2.
std::string key_value(const Attribute& attribute) {
  std::string out;
  bytes_field(out, 1, attribute.key);
  bytes_field(out, 2, any_value(attribute));
  return out;
}

// Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6, start 7, end 8,
// attributes 9, status 15 (message 2, code 3: 2 is ERROR).
std::string span_message(const Span& span) {
  std::string out;
  id_field(out, 1, span.trace_id);
  id_field(out, 2, span.span_id);
  if (!span.trace_state.empty()) bytes_field(out, 3, span.trace_state);
  if (span.parent_span_id != core::SpanId{}) id_field(out, 4, span.parent_span_id);
  bytes_field(out, 5, span.name);
  varint_field(out, 6, static_cast<std::uint64_t>(span.kind));
  fixed64_field(out, 7, span.start_unix_nano);
  fixed64_field(out, 8, span.end_unix_nano);
  for (const auto& attribute : span.attributes) bytes_field(out, 9, key_value(attribute));
  if (span.error) {
    std::string status;
    if (!span.status_message.empty()) bytes_field(status, 2, span.status_message);
    varint_field(status, 3, 2);
    bytes_field(out, 15, status);
  }
  return out;
}

}  // namespace

std::string encode_export_request(const Resource& resource, std::span<const Span> spans) {
  // Resource: attributes 1.
  std::string resource_message;
  for (const auto& attribute : {Attribute{"service.name", resource.service_name},
                                Attribute{"service.version", resource.service_version},
                                Attribute{"service.instance.id", resource.service_instance_id}}) {
    if (!std::get<std::string>(attribute.value).empty())
      bytes_field(resource_message, 1, key_value(attribute));
  }
  // ScopeSpans: scope 1 (InstrumentationScope: name 1), spans 2.
  std::string scope_spans;
  std::string scope;
  bytes_field(scope, 1, "liftoff");
  bytes_field(scope_spans, 1, scope);
  for (const auto& span : spans) bytes_field(scope_spans, 2, span_message(span));
  // ResourceSpans: resource 1, scope_spans 2.
  std::string resource_spans;
  bytes_field(resource_spans, 1, resource_message);
  bytes_field(resource_spans, 2, scope_spans);
  // ExportTraceServiceRequest: resource_spans 1.
  std::string request;
  bytes_field(request, 1, resource_spans);
  return request;
}

}  // namespace liftoff::trace
