#include "liftoff/trace/exporter.hpp"

#include <gtest/gtest.h>

#include "liftoff/core/metrics.hpp"
#include "liftoff/trace/otlp.hpp"

namespace liftoff::trace {
namespace {

Span span_named(const std::string& name) {
  Span span;
  span.trace_id = core::new_trace_id();
  span.span_id = core::new_span_id();
  span.name = name;
  span.kind = Span::Kind::server;
  return span;
}

TEST(SpanExporter, RefusesAnEndpointItCannotPostTo) {
  core::Registry metrics;
  for (const char* bad :
       {"127.0.0.1:4318", "https://collector:4318", "http://", "http://h/x?y=1"}) {
    ExporterOptions options;
    options.endpoint = bad;
    auto started = SpanExporter::start(options, metrics);
    ASSERT_FALSE(started) << bad;
    EXPECT_EQ(started.error().fields.at(0).field, "otlp_endpoint");
  }
}

// Nobody listens at the endpoint: a full queue drops at once, and every queued span is counted as
// lost when the exporter stops (one try, then the rest given up), never waited for.
TEST(SpanExporter, AFullQueueAndAnAbsentCollectorDropAndCount) {
  core::Registry metrics;
  ExporterOptions options;
  options.endpoint = "http://127.0.0.1:1";  // port 1: refused
  options.queue_limit = 3;
  options.batch_limit = 2;
  options.interval = std::chrono::hours(1);  // only a full batch or the stop sends
  options.timeout = std::chrono::milliseconds(500);
  {
    auto exporter = SpanExporter::start(options, metrics);
    ASSERT_TRUE(exporter);
    for (int i = 0; i < 5; ++i) (*exporter)->record(span_named("s" + std::to_string(i)));
  }
  auto text = metrics.render();
  EXPECT_NE(text.find("trace_spans_dropped_total{reason=\"queue_full\"} 2"), std::string::npos)
      << text;
  EXPECT_NE(text.find("trace_spans_dropped_total{reason=\"export_failed\"} 3"), std::string::npos)
      << text;
  EXPECT_NE(text.find("trace_spans_exported_total 0"), std::string::npos) << text;
}

TEST(Otlp, EncodesOneResourceAndScopeAroundTheSpans) {
  Span span = span_named("GET /v1/me");
  span.attributes = {{"http.response.status_code", std::int64_t{401}}};
  Span spans[] = {span, span_named("GET /healthz")};
  auto body = encode_export_request({"liftoff", "1.0", "host:1"}, spans);
  // The outer message: field 1 (resource_spans), length-delimited, the whole rest.
  ASSERT_GT(body.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(body[0]), (1u << 3) | 2u);
  for (const char* text : {"liftoff", "service.name", "host:1", "GET /v1/me", "GET /healthz",
                           "http.response.status_code"}) {
    EXPECT_NE(body.find(text), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace liftoff::trace
