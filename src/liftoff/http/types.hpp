#pragma once
// The HTTP types handlers see. Handlers are coroutines that take a RequestContext and return a
// Response; errors are turned into problem+json by `problem_response` (one place, see problem.hpp).
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "liftoff/core/tenant_tally.hpp"
#include "liftoff/trace/span.hpp"

namespace liftoff::db {
struct Consistency;
}

namespace liftoff::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Response = beast_http::response<beast_http::string_body>;
using Verb = beast_http::verb;
using Clock = std::chrono::steady_clock;

// A response body produced after the header is sent: Server-Sent Events. A handler that streams
// returns the header as its Response (200) and sets RequestContext::stream; the server sends the
// header with Transfer-Encoding: chunked, runs the body, then ends the chunked message (unless the
// body threw: then the connection closes without the last chunk, so the client sees an incomplete
// response). Every
// member is used on the connection's own thread (its worker's io_context); to wake a waiting body
// from elsewhere, post wake() to that executor.
class Stream {
 public:
  virtual ~Stream() = default;
  // Sends one chunk; false once the client is gone or too slow to take it (stop producing then).
  virtual boost::asio::awaitable<bool> write(std::string_view chunk) = 0;
  // Returns at `deadline`, at a wake(), or when the server starts shutting down; a wake() that came
  // before the wait makes it return at once.
  virtual boost::asio::awaitable<void> wait_until(
      std::chrono::steady_clock::time_point deadline) = 0;
  virtual void wake() = 0;
  // True once the server is shutting down: end the body promptly.
  [[nodiscard]] virtual bool closing() const = 0;
};
using StreamBody = std::function<boost::asio::awaitable<void>(Stream&)>;

// What names a request in the logs and traces: its X-Request-Id and its trace id (hex).
struct RequestIds {
  std::string_view request_id;
  std::string_view trace_id;
};

struct RequestContext {
  Request& request;
  std::string_view request_id;
  // The request's span (W3C Trace Context): its trace continues the caller's `traceparent`, or
  // starts here; `trace_id` is its trace id in hex, `tracestate` the caller's, to pass on.
  core::TraceContext trace;
  std::string_view trace_id;
  std::string_view tracestate;
  std::string_view route;  // the matched route template, e.g. "/v1/orgs/{org}"
  std::vector<std::pair<std::string_view, std::string>> params;  // decoded path parameters
  std::string_view query;                                        // raw query string, without '?'
  Clock::time_point received_at;
  // By when the answer should be made (received_at + handling_timeout): every statement the
  // request runs ends by then (api::scope_of).
  Clock::time_point deadline;
  // The client's IP address: the peer's, or, when the peer is a trusted proxy, the last address it
  // appended to X-Forwarded-For.
  std::string_view remote;
  // Set by a handler whose response body is a stream (see Stream).
  StreamBody stream;
  // What the request's reads must reflect and what it wrote, shared by all its database scopes
  // (set by the API layer when the database has replicas; api::scope_of).
  std::shared_ptr<db::Consistency> consistency;
  // Where the spans of the request's work go (statements, calls); null: not recorded.
  trace::Recorder* spans = nullptr;
  // The organization the request acts for (its id), once the API layer knows it; and where its
  // statements' time is added (null: nowhere). The per-tenant metrics count both.
  std::string tenant;
  std::shared_ptr<core::StatementTime> statement_time;

  [[nodiscard]] RequestIds ids() const { return {request_id, trace_id}; }
  // The context of the request's span, for the spans of its work and the calls it makes.
  [[nodiscard]] trace::Context trace_context() const {
    return {trace, std::string(tracestate), spans};
  }

  [[nodiscard]] std::optional<std::string_view> param(std::string_view name) const {
    for (const auto& [k, v] : params) {
      if (k == name) return v;
    }
    return std::nullopt;
  }
};

using Handler = std::function<boost::asio::awaitable<Response>(RequestContext&)>;

}  // namespace liftoff::http
