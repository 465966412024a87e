#pragma once
// OTLP/HTTP's protobuf body for spans: an ExportTraceServiceRequest
// (opentelemetry/proto/collector/trace/v1/trace_service.proto), written field by field in the
// protobuf wire format, with one resource (this process) and one instrumentation scope.
#include <span>
#include <string>

#include "liftoff/trace/span.hpp"

namespace liftoff::trace {

struct Resource {
  std::string service_name = "liftoff";
  std::string service_version;
  std::string service_instance_id;  // host:pid
};

[[nodiscard]] std::string encode_export_request(const Resource& resource,
                                                std::span<const Span> spans);

}  // namespace liftoff::trace
