#pragma once
// Exports finished spans over OTLP/HTTP (protobuf, POST <endpoint>/v1/traces) in batches, from a
// bounded queue on a thread of its own: recording a span never waits for the collector. A full
// queue drops the span, and a batch the collector does not take (an error answer, no answer within
// the timeout, nobody listening) is dropped too; both are counted
// (trace_spans_dropped_total{reason}), so a slow or absent collector costs the server nothing but
// its spans.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "liftoff/core/error.hpp"
#include "liftoff/trace/otlp.hpp"
#include "liftoff/trace/span.hpp"

namespace liftoff::core {
class Counter;
class Registry;
}  // namespace liftoff::core

namespace liftoff::trace {

struct ExporterOptions {
  // The collector's OTLP/HTTP base URL, http://host:port[/prefix]; spans go to <it>/v1/traces.
  std::string endpoint;
  Resource resource;
  std::size_t queue_limit = 4096;            // spans waiting; more are dropped
  std::size_t batch_limit = 512;             // spans per request
  std::chrono::milliseconds interval{1000};  // a batch leaves at least this often
  std::chrono::milliseconds timeout{2000};   // per request, connecting included
};

class SpanExporter final : public Recorder {
 public:
  // Checks the endpoint (an http:// URL with a host and port); a bad one names the problem.
  static Result<std::unique_ptr<SpanExporter>> start(ExporterOptions options,
                                                     core::Registry& metrics);
  ~SpanExporter() override;  // sends what is queued (one try each batch), then stops
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  // Thread-safe; never blocks on the network.
  void record(Span span) override;

 private:
  struct Target {
    std::string host;
    std::string port;
    std::string path;
  };
  SpanExporter(ExporterOptions options, Target target, core::Registry& metrics);
  void run();
  bool post(const std::string& body);

  ExporterOptions options_;
  Target target_;
  core::Counter& exported_;
  core::Counter& dropped_full_;
  core::Counter& dropped_failed_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Span> queue_;
  bool stopping_ = false;
  bool failing_ = false;  // the last export failed (the exporter's thread only)
  std::thread thread_;
};

}  // namespace liftoff::trace
