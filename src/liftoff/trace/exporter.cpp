#include "liftoff/trace/exporter.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/system/system_error.hpp>
#include <boost/url/parse.hpp>
#include <vector>

#include "liftoff/core/metrics.hpp"

namespace liftoff::trace {
namespace beast = boost::beast;
namespace asio = boost::asio;

Result<std::unique_ptr<SpanExporter>> SpanExporter::start(ExporterOptions options,
                                                          core::Registry& metrics) {
  auto url = boost::urls::parse_absolute_uri(options.endpoint);
  if (!url || url->scheme() != "http" || url->host().empty() || url->has_query()) {
    return Error{Errc::bad_request,
                 "invalid OTLP endpoint",
                 {{"otlp_endpoint", "must be an http:// URL such as http://127.0.0.1:4318"}}};
  }
  Target target{std::string(url->host()), url->has_port() ? std::string(url->port()) : "80",
                std::string(url->path())};
  while (!target.path.empty() && target.path.back() == '/') target.path.pop_back();
  target.path += "/v1/traces";
  return std::unique_ptr<SpanExporter>(
      new SpanExporter(std::move(options), std::move(target), metrics));
}

SpanExporter::SpanExporter(ExporterOptions options, Target target, core::Registry& metrics)
    : options_(std::move(options)),
      target_(std::move(target)),
      exported_(metrics.counter("trace_spans_exported_total", "Spans the OTLP collector accepted")),
      dropped_full_(metrics.counter("trace_spans_dropped_total",
                                    "Spans not exported: the queue was full, or the collector did "
                                    "not take their batch",
                                    R"(reason="queue_full")")),
      dropped_failed_(metrics.counter("trace_spans_dropped_total",
                                      "Spans not exported: the queue was full, or the collector "
                                      "did not take their batch",
                                      R"(reason="export_failed")")),
      thread_([this] { run(); }) {}

SpanExporter::~SpanExporter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void SpanExporter::record(Span span) {
  bool full_batch = false;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.queue_limit) {
      dropped_full_.inc();
      return;
    }
    queue_.push_back(std::move(span));
    full_batch = queue_.size() == options_.batch_limit;
  }
  if (full_batch) wake_.notify_one();
}

void SpanExporter::run() {
  std::vector<Span> batch;
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.interval,
                     [this] { return stopping_ || queue_.size() >= options_.batch_limit; });
      stopping = stopping_;
      auto n = static_cast<std::ptrdiff_t>(std::min(queue_.size(), options_.batch_limit));
      batch.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + n));
      queue_.erase(queue_.begin(), queue_.begin() + n);
    }
    if (batch.empty()) {
      if (stopping) return;
      continue;
    }
    bool sent = post(encode_export_request(options_.resource, batch));
    (sent ? exported_ : dropped_failed_).inc(batch.size());
    batch.clear();
    if (stopping && !sent) {
      // Stopping with a collector that does not take spans: drop the rest rather than wait for it
      // once per batch.
      std::lock_guard lock(mutex_);
      dropped_failed_.inc(queue_.size());
      queue_.clear();
      return;
    }
  }
}

// One POST, within `timeout` from the resolve to the answer's last byte (the operations are
// asynchronous on an io_context of this call, run for that long: synchronous ones have no timeout).
bool SpanExporter::post(const std::string& body) {
  asio::io_context io;
  bool accepted = false;
  std::string failure = "no answer within the timeout";
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto executor = co_await asio::this_coro::executor;
        asio::ip::tcp::resolver resolver(executor);
        beast::tcp_stream stream(executor);
        auto endpoints =
            co_await resolver.async_resolve(target_.host, target_.port, asio::use_awaitable);
        co_await stream.async_connect(endpoints, asio::use_awaitable);
        beast::http::request<beast::http::string_body> request{beast::http::verb::post,
                                                               target_.path, 11};
        request.set(beast::http::field::host, target_.host + ":" + target_.port);
        request.set(beast::http::field::content_type, "application/x-protobuf");
        request.body() = body;
        request.prepare_payload();
        co_await beast::http::async_write(stream, request, asio::use_awaitable);
        beast::flat_buffer buffer;
        beast::http::response<beast::http::string_body> response;
        co_await beast::http::async_read(stream, buffer, response, asio::use_awaitable);
        beast::error_code ignored;
        stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        accepted = response.result_int() / 100 == 2;
        failure = "the collector answered " + std::to_string(response.result_int());
      },
      [&](const std::exception_ptr& error) {
        if (!error) return;
        try {
          std::rethrow_exception(error);
        } catch (const boost::system::system_error& e) {
          failure = e.code().message();
        } catch (const std::exception& e) {
          failure = e.what();
        }
      });
  io.run_for(options_.timeout);
  // Said once when exports start failing and once when they work again: the counters say how many
  // spans it cost.
  if (!accepted && !failing_) {
    spdlog::warn("OTLP export to {}:{}{} failed: {} (spans are dropped until it works again)",
                 target_.host, target_.port, target_.path, failure);
  } else if (accepted && failing_) {
    spdlog::info("OTLP export to {}:{}{} works again", target_.host, target_.port, target_.path);
  }
  failing_ = !accepted;
  return accepted;
}

}  // namespace liftoff::trace
