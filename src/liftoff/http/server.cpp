#include "liftoff/http/server.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/url/grammar/string_token.hpp>
#include <boost/url/parse.hpp>
#include <cerrno>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <vector>

#include "liftoff/core/log.hpp"
#include "liftoff/core/memory_guard.hpp"
#include "liftoff/core/metrics.hpp"
#include "liftoff/core/worker.hpp"
#include "liftoff/http/cors.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/http/wire.hpp"

namespace liftoff::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// Per-route series, created when the server starts so the hot path only follows pointers.
struct RouteMetrics {
  std::array<core::Counter*, 5> by_class{};  // 1xx..5xx
  core::Histogram* latency = nullptr;
};

}  // namespace

struct Server::Impl {
  struct Session;
  // A worker's sessions, each with when its current socket operation must end, side by side in
  // one array: the sweeper reads deadlines without visiting the sessions.
  struct SessionSlot {
    Clock::time_point deadline = Clock::time_point::max();
    Session* session = nullptr;
  };

  // One connection. Deadlines are not timers: a session stores when its current socket operation
  // must end (in its worker's slot), and the worker's sweeper (every kSweepInterval) cancels the
  // socket operations of sessions past their deadline. That costs nothing per request and keeps
  // idle sessions small. A cancelled read leaves the socket writable, so a slow client can still
  // be told 408.
  struct Session {
    explicit Session(tcp::socket s) : socket(std::move(s)) {
      beast::error_code ec;
      auto endpoint = socket.remote_endpoint(ec);
      if (!ec) remote = endpoint.address().to_string();
    }
    tcp::socket socket;
    std::string remote;                         // peer address, for the access log
    std::vector<SessionSlot>* slots = nullptr;  // its worker's (set by Registration)
    std::size_t slot = 0;
    bool idle = false;
    // No request has begun on it yet. The drain closes idle connections, but not these: a load
    // balancer sends a request as soon as it connects and cannot tell whether a connection closed
    // under it was served, so each gets its first request answered (with Connection: close).
    bool fresh = true;
    bool timed_out = false;
    Stream* stream = nullptr;  // while the response body is a stream: woken by the drain

    void expire_after(std::chrono::milliseconds d) {
      timed_out = false;
      (*slots)[slot].deadline = Clock::now() + d;
    }
    void expire_never() { (*slots)[slot].deadline = Clock::time_point::max(); }
  };
  static constexpr auto kSweepInterval = std::chrono::milliseconds(100);

  // A streamed response body in HTTP/1.1 chunked encoding. Each write has the request timeout to
  // complete, so a client that stops reading is dropped rather than buffered for.
  class ChunkedStream final : public Stream {
   public:
    ChunkedStream(Session& session, const bool& draining, std::chrono::milliseconds write_timeout)
        : session_(session),
          draining_(draining),
          write_timeout_(write_timeout),
          timer_(session.socket.get_executor()) {
      session_.stream = this;
      watch_->timer = &timer_;
    }
    ~ChunkedStream() override {
      session_.stream = nullptr;
      watch_->timer = nullptr;
    }
    ChunkedStream(const ChunkedStream&) = delete;
    ChunkedStream& operator=(const ChunkedStream&) = delete;

    asio::awaitable<bool> write(std::string_view chunk) override {
      if (chunk.empty()) co_return true;  // an empty chunk would end the message
      buffer_.clear();
      fmt::format_to(std::back_inserter(buffer_), "{:x}\r\n", chunk.size());
      buffer_.append(chunk).append("\r\n");
      bytes_ += buffer_.size();
      co_return co_await write_all(session_, buffer_, write_timeout_);
    }
    asio::awaitable<bool> finish() {
      buffer_ = "0\r\n\r\n";
      bytes_ += buffer_.size();
      co_return co_await write_all(session_, buffer_, write_timeout_);
    }
    asio::awaitable<void> wait_until(Clock::time_point deadline) override {
      if (!woken_ && !closing()) {
        watch_client();
        timer_.expires_at(deadline);
        co_await timer_.async_wait(kUseTuple);
      }
      woken_ = false;
    }
    void wake() override {
      woken_ = true;
      timer_.cancel();
    }
    [[nodiscard]] bool closing() const override { return draining_ || client_gone(); }
    [[nodiscard]] std::size_t bytes() const { return bytes_; }

   private:
    // A client of a stream sends nothing after its request, so the socket turning readable means it
    // closed (or broke the protocol): either way the stream ends then, not at its next write. The
    // wait's handler outlives the stream when the connection stays open, so it shares only `Watch`.
    struct Watch {
      bool pending = false;
      bool readable = false;
      asio::steady_timer* timer = nullptr;  // cleared when the stream ends
    };
    void watch_client() {
      if (watch_->pending || watch_->readable) return;
      watch_->pending = true;
      session_.socket.async_wait(tcp::socket::wait_read,
                                 [watch = watch_](const beast::error_code& ec) {
                                   watch->pending = false;
                                   if (ec) return;
                                   watch->readable = true;
                                   if (watch->timer) watch->timer->cancel();
                                 });
    }
    [[nodiscard]] bool client_gone() const {
      if (!watch_->readable) return false;
      char byte = 0;
      auto n = ::recv(session_.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        watch_->readable = false;  // nothing after all: watch again
        return false;
      }
      return true;  // closed (0), broken (< 0), or sending where it should only read (> 0)
    }

    Session& session_;
    const bool& draining_;
    std::chrono::milliseconds write_timeout_;
    asio::steady_timer timer_;
    std::string buffer_;
    std::size_t bytes_ = 0;
    bool woken_ = false;
    std::shared_ptr<Watch> watch_ = std::make_shared<Watch>();
  };

  struct Worker {
    std::size_t index = 0;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::vector<SessionSlot> sessions;  // touched only on this worker's thread
    bool draining = false;
    std::size_t cut = 0;
    // Declared last, so destroyed first: coroutine frames it still holds refer to the members
    // above.
    std::unique_ptr<asio::io_context> ioc;
  };

  // Open connections per client address, across workers (taken at accept, given back at close).
  class ClientConnections {
   public:
    explicit ClientConnections(std::size_t cap) : cap_(cap) {}
    // False when `address` already holds the cap.
    bool take(const std::string& address) {
      std::lock_guard lock(mutex_);
      auto& n = counts_[address];
      if (n >= cap_) return false;
      ++n;
      return true;
    }
    void give_back(const std::string& address) {
      std::lock_guard lock(mutex_);
      auto it = counts_.find(address);
      if (it != counts_.end() && --it->second == 0) counts_.erase(it);
    }

   private:
    std::size_t cap_;
    std::mutex mutex_;
    std::unordered_map<std::string, std::size_t> counts_;
  };

  ServerOptions options;
  const Router& router;
  core::Registry& registry;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<std::size_t> drained_workers{0};
  std::unordered_map<const Router::Route*, RouteMetrics> route_metrics;
  RouteMetrics unmatched_metrics;
  RouteMetrics options_metrics;  // OPTIONS on any route: preflights, mostly
  Cors cors;
  std::array<core::Counter*, 2> cors_preflights{};  // allowed, refused
  core::Gauge& in_flight;
  core::Gauge& open_connections_gauge;
  core::Counter& rejected_connections;
  core::Counter& protocol_errors;
  core::Counter& handler_failures;
  core::Gauge& open_streams;
  core::Counter& rejected_clients;
  ClientConnections client_connections{options.max_connections_per_client};
  core::TraceSampler trace_sampler{options.trace_sample_ratio};
  std::atomic<std::size_t> open_connections{0};
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> leaving{false};  // from the stop's start: every answer closes its connection
  bool drain_begun = false;          // on the control thread
  std::uint16_t bound_port = 0;
  asio::io_context control;  // signals and stop requests, on the thread that called run()
  // Caught from construction on: a SIGTERM between the process's report that it is ready and run()
  // waits for run() instead of ending the process (seen in a test that stopped a server at once).
  std::optional<asio::signal_set> signals;
  asio::steady_timer drain_timer{control};  // drain_delay

  Impl(ServerOptions o, const Router& r, core::Registry& m)
      : options(std::move(o)),
        router(r),
        registry(m),
        cors(options.cors),
        in_flight(m.gauge("http_requests_in_flight", "Requests being handled")),
        open_connections_gauge(m.gauge("http_connections_open", "Open HTTP connections")),
        rejected_connections(m.counter("http_connections_rejected_total",
                                       "Connections refused with 503 at max_connections")),
        protocol_errors(
            m.counter("http_protocol_errors_total",
                      "Requests answered 4xx before routing (malformed, limits, timeouts)")),
        handler_failures(
            m.counter("http_handler_failures_total", "Handlers that threw; answered 500")),
        open_streams(m.gauge("http_streams_open", "Responses being streamed (Server-Sent Events)")),
        rejected_clients(m.counter(
            "http_client_connections_rejected_total",
            "Connections refused with 429 at max_connections_per_client for their address")) {
    for (const auto& route : router.routes())
      route_metrics[&route] = make_route_metrics(route.pattern);
    unmatched_metrics = make_route_metrics("unmatched");
    options_metrics = make_route_metrics("OPTIONS");
    if (options.handle_signals) signals.emplace(control, SIGINT, SIGTERM);
    for (auto [i, result] : {std::pair{0, "allowed"}, std::pair{1, "refused"}}) {
      cors_preflights[i] = &m.counter("http_cors_preflights_total",
                                      "CORS preflights by whether the origin was allowed",
                                      std::string("result=\"") + result + "\"");
    }
  }

  RouteMetrics make_route_metrics(const std::string& route) {
    RouteMetrics rm;
    static constexpr std::array<const char*, 5> kClasses = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    std::string label = "route=\"" + core::label_value(route) + "\"";
    for (std::size_t i = 0; i < kClasses.size(); ++i) {
      rm.by_class[i] =
          &registry.counter("http_requests_total", "HTTP requests by route and status class",
                            label + ",class=\"" + kClasses[i] + "\"");
    }
    rm.latency = &registry.histogram("http_request_duration_seconds",
                                     "Time from request header to response written", label);
    return rm;
  }

  void bind() {
    auto address = asio::ip::make_address(options.host);
    tcp::endpoint endpoint(address, options.port);
    for (unsigned i = 0; i < options.threads; ++i) {
      auto worker = std::make_unique<Worker>();
      worker->index = i;
      worker->ioc = std::make_unique<asio::io_context>(1);
      worker->acceptor = std::make_unique<tcp::acceptor>(*worker->ioc);
      worker->acceptor->open(endpoint.protocol());
      worker->acceptor->set_option(asio::socket_base::reuse_address(true));
      int one = 1;
      if (::setsockopt(worker->acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one,
                       sizeof(one)) != 0) {
        throw std::system_error(errno, std::generic_category(), "SO_REUSEPORT");
      }
      worker->acceptor->bind(endpoint);
      worker->acceptor->listen(asio::socket_base::max_listen_connections);
      if (i == 0) {
        bound_port = worker->acceptor->local_endpoint().port();
        endpoint.port(bound_port);  // with port 0, every worker shares the port the first got
      }
      workers.push_back(std::move(worker));
    }
  }

  asio::awaitable<void> warm_up_and_accept(Worker& w) {
    if (options.warm_up) {
      try {
        co_await options.warm_up(w.index);
      } catch (const std::exception& e) {
        spdlog::warn("worker {}: warming up failed: {}", w.index, e.what());
      }
    }
    co_await accept_loop(w);
  }

  asio::awaitable<void> accept_loop(Worker& w) {
    for (;;) {
      auto [ec, socket] = co_await w.acceptor->async_accept(kUseTuple);
      // A connection accepted just before the drain closed the listener is served like those of
      // the backlog (its first request); after that the closed listener fails every accept.
      if (w.draining && ec) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        // EMFILE and friends: back off briefly instead of spinning.
        spdlog::warn("accept failed: {}", ec.message());
        asio::steady_timer t(*w.ioc, std::chrono::milliseconds(50));
        co_await t.async_wait(kUseTuple);
        continue;
      }
      if (open_connections.load(std::memory_order_relaxed) >= options.max_connections) {
        rejected_connections.inc();
        asio::co_spawn(*w.ioc,
                       reject(w, std::move(socket),
                              make_error(Errc::unavailable, "too many open connections")),
                       log_failure("rejecting a connection"));
        continue;
      }
      // The per-client cap counts the peer's address; a trusted proxy speaks for many clients.
      std::string client;
      if (options.max_connections_per_client > 0) {
        beast::error_code peer_ec;
        auto peer = socket.remote_endpoint(peer_ec);
        if (!peer_ec) client = peer.address().to_string();
        if (std::find(options.trusted_proxies.begin(), options.trusted_proxies.end(), client) !=
            options.trusted_proxies.end()) {
          client.clear();
        }
        if (!client.empty() && !client_connections.take(client)) {
          rejected_clients.inc();
          auto error =
              make_error(Errc::too_many_requests, "too many open connections from your address");
          error.retry_after = std::chrono::seconds(1);
          asio::co_spawn(*w.ioc, reject(w, std::move(socket), std::move(error)),
                         log_failure("rejecting a connection"));
          continue;
        }
      }
      start_session(w, std::move(socket), std::move(client));
    }
  }

  // Serves an accepted connection (from the accept loop, or the backlog at the drain).
  void start_session(Worker& w, tcp::socket socket, std::string client) {
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    socket.non_blocking(true, ignored);  // synchronous reads return would_block, not wait
    asio::co_spawn(*w.ioc, session(w, std::move(socket), std::move(client)),
                   log_failure("connection"));
  }

  // The completion handler of every coroutine the server spawns: a failure is logged and counted.
  std::function<void(std::exception_ptr)> log_failure(const char* what) {
    return core::failure_handler(what, &handler_failures);
  }

  // Keeps a session in its worker's list (for the sweeper and the drain) for exactly its lifetime.
  // Leaving moves the last slot into the one freed.
  struct Registration {
    Worker& w;
    Session* s;
    Registration(Worker& worker, Session* session) : w(worker), s(session) {
      s->slots = &w.sessions;
      s->slot = w.sessions.size();
      w.sessions.push_back({Clock::time_point::max(), s});
    }
    ~Registration() {
      auto last = w.sessions.back();
      w.sessions[s->slot] = last;
      last.session->slot = s->slot;
      w.sessions.pop_back();
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
  };

  // Cancels the socket operations of sessions past their deadline.
  asio::awaitable<void> sweep(Worker& w) {
    asio::steady_timer timer(*w.ioc);
    while (!w.draining || !w.sessions.empty()) {
      timer.expires_after(kSweepInterval);
      co_await timer.async_wait(kUseTuple);
      auto now = Clock::now();
      for (auto& slot : w.sessions) {
        if (slot.deadline <= now) {
          slot.deadline = Clock::time_point::max();
          slot.session->timed_out = true;
          beast::error_code ignored;
          slot.session->socket.cancel(ignored);
        }
      }
    }
  }

  // Writes a serialized response; false if the peer is gone or too slow.
  static asio::awaitable<bool> write_all(Session& s, const std::string& bytes,
                                         std::chrono::milliseconds timeout) {
    s.expire_after(timeout);
    auto [ec, n] = co_await asio::async_write(s.socket, asio::buffer(bytes), kUseTuple);
    s.expire_never();
    co_return !ec;
  }

  // Over max_connections (503) or max_connections_per_client (429): answer `why` with Retry-After
  // and close, without holding a session slot.
  asio::awaitable<void> reject(Worker& w, tcp::socket socket, Error why) {
    Session s(std::move(socket));
    Registration registration(w, &s);
    s.expire_after(std::chrono::seconds(1));
    std::array<char, 1024> scratch{};
    co_await s.socket.async_read_some(asio::buffer(scratch), kUseTuple);
    auto res = problem_response(why, {});
    res.keep_alive(false);
    std::string bytes;
    serialize_response(res, "", bytes);
    co_await write_all(s, bytes, std::chrono::seconds(1));
    beast::error_code ec;
    s.socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  // `client`: the address this connection counts against max_connections_per_client (empty: none).
  asio::awaitable<void> session(Worker& w, tcp::socket socket, std::string client) {
    Session s(std::move(socket));
    Registration registration(w, &s);
    open_connections.fetch_add(1, std::memory_order_relaxed);
    open_connections_gauge.add(1);
    struct Leave {
      Impl& impl;
      std::string client;
      ~Leave() {
        impl.open_connections.fetch_sub(1, std::memory_order_relaxed);
        impl.open_connections_gauge.add(-1);
        if (!client.empty()) impl.client_connections.give_back(client);
      }
    } leave{*this, std::move(client)};

    beast::flat_buffer buffer;
    // A new connection gets first_byte_timeout to begin, not idle_timeout, and its first request
    // is served even once the drain has begun (Session::fresh).
    while (s.fresh || !w.draining) {
      if (buffer.size() == 0) {
        buffer.shrink_to_fit();
        s.idle = true;
        s.expire_after(s.fresh ? std::min(options.first_byte_timeout, options.idle_timeout)
                               : options.idle_timeout);
        bool arrived = co_await await_request(s, buffer);
        s.idle = false;
        s.expire_never();
        if (!arrived || (w.draining && !s.fresh)) break;  // closed, idle timeout, shutdown
      }
      s.fresh = false;
      if (!co_await serve_one(s, buffer, w.draining)) break;
    }
    beast::error_code ec;
    s.socket.shutdown(tcp::socket::shutdown_send, ec);
  }

  // Waits on an idle connection for the first bytes of its next request and reads them into
  // `buffer`, holding no read buffer while idle (memory per idle connection). False when the
  // peer closed or broke the connection, or the wait was cancelled (idle timeout, shutdown).
  // A readiness wake-up can find nothing to read (seen for connections accepted just as another
  // closed: e2e ANewConnectionIsIdleUntilItsFirstByte). Then the connection is still idle and
  // the wait goes on, to the same deadline.
  static asio::awaitable<bool> await_request(Session& s, beast::flat_buffer& buffer) {
    static constexpr std::size_t kFirstRead = 4096;
    for (;;) {
      auto [ec] = co_await s.socket.async_wait(tcp::socket::wait_read, kUseTuple);
      if (ec) co_return false;
      beast::error_code read_ec;
      auto n = s.socket.read_some(buffer.prepare(kFirstRead), read_ec);  // never blocks
      if (read_ec == asio::error::would_block) continue;
      if (read_ec) co_return false;
      buffer.commit(n);
      co_return true;
    }
  }

  // Reads, handles and answers one request. Returns whether the connection stays open. A separate
  // coroutine, so the parser, request and response exist only while a request is in progress.
  asio::awaitable<bool> serve_one(Session& s, beast::flat_buffer& buffer, const bool& draining) {
    beast_http::request_parser<beast_http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
    parser.body_limit(options.body_limit);
    s.expire_after(options.request_timeout);
    auto [ec, ignored_bytes] =
        co_await beast_http::async_read_header(s.socket, buffer, parser, kUseTuple);
    std::string out;
    if (!ec && !parser.is_done()) {
      auto expect = parser.get()[beast_http::field::expect];
      if (beast::iequals(expect, "100-continue")) {
        out = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [wec, wn] = co_await asio::async_write(s.socket, asio::buffer(out), kUseTuple);
        if (wec) co_return false;
      }
      std::tie(ec, ignored_bytes) =
          co_await beast_http::async_read(s.socket, buffer, parser, kUseTuple);
    }
    bool timed_out = s.timed_out;
    s.expire_never();
    if (ec && timed_out) ec = beast::error::timeout;
    if (ec) {
      auto error = classify_read_error(ec);
      if (!error) co_return false;
      protocol_errors.inc();
      auto res = problem_response(*error, {});
      res.keep_alive(false);
      serialize_response(res, "", out);
      co_await write_all(s, out, std::chrono::seconds(1));
      log_access("-", nullptr, beast_http::to_string(parser.get().method()), "unparsed",
                 res.result_int(), std::chrono::nanoseconds(0), 0, out.size(), s.remote);
      co_return false;
    }

    Request& req = parser.get();
    auto started = Clock::now();
    in_flight.add(1);
    const Router::Route* route = nullptr;
    std::string request_id;
    auto client = client_address(req, s.remote);
    auto trace = trace_of(req);
    RequestTenant tenant;
    if (options.tenants != nullptr) tenant.statement_time = std::make_shared<core::StatementTime>();
    StreamBody stream_body;
    auto res =
        co_await dispatch(req, started, client, route, request_id, trace, tenant, stream_body);
    in_flight.add(-1);
    // Which span of which trace served it (Trace Context Level 2), errors too.
    res.set("traceresponse", trace.span.traceparent());
    set_default_cache_control(req, res);
    if (!stream_body) compress_response(req, res);

    bool keep_alive = req.keep_alive() && !draining && !leaving.load(std::memory_order_relaxed);
    res.keep_alive(keep_alive);
    bool streaming = stream_body && res.result() == beast_http::status::ok;
    if (req.method() == Verb::head) {
      // Keep the GET Content-Length; send no body.
      streaming = false;
      auto length = res.body().size();
      res.body().clear();
      res.content_length(length);
    } else if (streaming) {
      res.body().clear();
      res.chunked(true);
    }
    // A stream counts as open before its header goes out: a client that has seen the header
    // finds it in http_streams_open (e2e AStreamEndsWhenItsClientGoesAwayNotAtTheNextHeartbeat
    // once read 0 there, when counting began after the write completed).
    if (streaming) open_streams.add(1);
    serialize_response(res, request_id, out);
    bool written = co_await write_all(s, out, options.request_timeout);
    if (streaming && !written) open_streams.add(-1);
    auto elapsed = Clock::now() - started;
    auto& rm = req.method() == Verb::options ? options_metrics
               : route                       ? route_metrics.at(route)
                                             : unmatched_metrics;
    rm.by_class[std::min<unsigned>(4, res.result_int() / 100 - 1)]->inc();
    rm.latency->observe(elapsed);  // for a stream: the time to its header
    if (options.tenants != nullptr && !tenant.org.empty()) {
      options.tenants->record(tenant.org, res.result_int() >= 500,
                              std::chrono::duration<double>(elapsed).count(),
                              tenant.statement_time->seconds());
    }
    std::size_t bytes_out = out.size();
    if (written && streaming) {
      ChunkedStream stream(s, draining, options.request_timeout);
      bool failed = false;
      try {
        co_await stream_body(stream);
      } catch (const std::exception& e) {
        handler_failures.inc();
        spdlog::error("stream of request {} failed: {}", request_id, e.what());
        failed = true;
      }
      open_streams.add(-1);
      // A body that failed ends without its last chunk: the client sees the response cut short,
      // never a partial body that looks whole.
      written = false;
      if (!failed) written = co_await stream.finish();
      bytes_out += stream.bytes();
      elapsed = Clock::now() - started;
    }
    auto route_name = route ? std::string_view(route->pattern) : std::string_view("unmatched");
    log_access(request_id, &trace, req.method_string(), route_name, res.result_int(), elapsed,
               req.body().size(), bytes_out, client);
    if (trace.span.sampled() && options.spans != nullptr) {
      record_request_span(trace, req.method_string(), route_name, res.result_int(), elapsed,
                          request_id, client);
    }
    co_return written&& keep_alive && !draining;
  }

  // The client behind a trusted proxy is the last hop it appended; anyone can forge the rest.
  std::string_view client_address(const Request& req, std::string_view peer) const {
    if (options.trusted_proxies.empty() ||
        std::find(options.trusted_proxies.begin(), options.trusted_proxies.end(), peer) ==
            options.trusted_proxies.end()) {
      return peer;
    }
    std::string_view forwarded = req["X-Forwarded-For"];
    auto comma = forwarded.rfind(',');
    auto last = comma == std::string_view::npos ? forwarded : forwarded.substr(comma + 1);
    while (!last.empty() && last.front() == ' ') last.remove_prefix(1);
    while (!last.empty() && last.back() == ' ') last.remove_suffix(1);
    beast::error_code ec;
    asio::ip::make_address(std::string(last), ec);
    return ec ? peer : last;
  }

  // The request's place in a distributed trace (W3C Trace Context).
  struct RequestTrace {
    core::TraceContext span;      // the server's span
    core::SpanId parent{};        // the caller's span (all zero: none)
    std::string trace_id;         // span.trace_id in hex
    std::string_view tracestate;  // the caller's, passed on when it and traceparent are valid
  };

  // One traceparent names the caller's span; none, several or a malformed one start a new trace,
  // as the specification says (never an error: tracing must not fail a request).
  RequestTrace trace_of(const Request& req) const {
    RequestTrace trace;
    std::optional<core::TraceContext> parent;
    auto [first, last] = req.equal_range("traceparent");
    if (first != last && std::next(first) == last) parent = core::parse_traceparent(first->value());
    trace.span = core::server_span(parent, trace_sampler);
    if (parent) trace.parent = parent->span_id;
    trace.trace_id = trace.span.trace_id_hex();
    auto [state, state_end] = req.equal_range("tracestate");
    if (parent && state != state_end && std::next(state) == state_end &&
        core::valid_tracestate(state->value()))
      trace.tracestate = state->value();
    return trace;
  }

  // The organization a request acted for (the API layer says: RequestContext::tenant) and its
  // statements' time, for the per-tenant metrics.
  struct RequestTenant {
    std::string org;
    std::shared_ptr<core::StatementTime> statement_time;
  };

  asio::awaitable<Response> dispatch(Request& req, Clock::time_point started,
                                     std::string_view remote, const Router::Route*& route,
                                     std::string& request_id, const RequestTrace& trace,
                                     RequestTenant& tenant, StreamBody& stream) {
    auto incoming = req["X-Request-Id"];
    request_id = valid_request_id(incoming) ? std::string(incoming) : generate_request_id();
    // Every answer, errors too, says whether the page that asked may read it (cors.hpp).
    std::string_view allow_origin;
    auto res =
        co_await route_request(req, started, remote, route, RequestIds{request_id, trace.trace_id},
                               trace, tenant, stream, allow_origin);
    if (req.method() != Verb::options) cors.decorate(res, allow_origin);
    co_return res;
  }

  asio::awaitable<Response> route_request(Request& req, Clock::time_point started,
                                          std::string_view remote, const Router::Route*& route,
                                          RequestIds ids, const RequestTrace& trace,
                                          RequestTenant& tenant, StreamBody& stream,
                                          std::string_view& allow_origin) {
    auto origin = Cors::origin(req);
    if (!origin) co_return problem_response(origin.error(), ids, req.version());
    auto target = boost::urls::parse_origin_form(req.target());
    if (!target) {
      co_return problem_response(make_error(Errc::bad_request, "invalid request target"), ids,
                                 req.version());
    }
    // The decoded path segments, in strings each worker thread keeps: once a thread has seen a
    // path as long, the next costs no allocation (matching copies what it keeps).
    thread_local std::vector<std::string> segments;
    std::size_t count = 0;
    for (auto segment : target->encoded_segments()) {
      if (count == segments.size()) segments.emplace_back();
      segment.decode({}, boost::urls::string_token::assign_to(segments[count++]));
    }
    auto outcome = router.match(req.method(), std::span(segments.data(), count));
    if (std::holds_alternative<Router::NotFound>(outcome)) {
      allow_origin = cors.allow_origin(*origin, {});
      co_return problem_response(
          make_error(Errc::not_found, "no route for " + std::string(target->encoded_path())), ids,
          req.version());
    }
    if (auto* mna = std::get_if<Router::MethodNotAllowed>(&outcome)) {
      route = mna->route;
      allow_origin = cors.allow_origin(*origin, mna->params);
      if (req.method() == Verb::options) {
        bool preflight = Cors::is_preflight(req);
        if (preflight) cors_preflights[allow_origin.empty() ? 1 : 0]->inc();
        co_return cors.options(req, preflight, allow_origin, mna->route->allow);
      }
      auto res =
          problem_response(make_error(Errc::method_not_allowed,
                                      std::string(req.method_string()) +
                                          " is not allowed here; allowed: " + mna->route->allow),
                           ids, req.version());
      res.set(beast_http::field::allow, mna->route->allow);
      co_return res;
    }
    auto& match = std::get<Router::Match>(outcome);
    route = match.route;
    allow_origin = cors.allow_origin(*origin, match.params);
    if (match.cost == Cost::heavy && options.memory_guard && options.memory_guard->shedding()) {
      options.memory_guard->shed();
      auto error = make_error(Errc::unavailable,
                              "the server is short of memory; retry this request shortly");
      error.retry_after = std::chrono::seconds(1);
      co_return problem_response(error, ids, req.version());
    }
    RequestContext ctx{req,
                       ids.request_id,
                       trace.span,
                       ids.trace_id,
                       trace.tracestate,
                       match.route->pattern,
                       std::move(match.params),
                       target->encoded_query(),
                       started,
                       started + options.handling_timeout,
                       remote};
    ctx.spans = options.spans;
    ctx.statement_time = tenant.statement_time;
    std::optional<Response> answered;
    std::optional<Error> failure;
    try {
      auto res = co_await (*match.handler)(ctx);
      res.version(req.version());
      stream = std::move(ctx.stream);
      answered = std::move(res);
    } catch (const ErrorException& e) {
      failure = e.error();
    } catch (const std::exception& e) {
      handler_failures.inc();
      spdlog::error("request {} {} failed: {}", ids.request_id, match.route->pattern, e.what());
      failure = make_error(Errc::internal, "internal error; see the server log for request " +
                                               std::string(ids.request_id));
    }
    tenant.org = std::move(ctx.tenant);
    if (answered) co_return std::move(*answered);
    co_return problem_response(*failure, ids, req.version());
  }

  // The server span of an answered request, named and described by OpenTelemetry's HTTP
  // conventions ("GET /v1/orgs/{org}": the route, never the raw path); 5xx answers are errors.
  void record_request_span(const RequestTrace& trace, std::string_view method,
                           std::string_view route, unsigned status,
                           std::chrono::nanoseconds elapsed, std::string_view request_id,
                           std::string_view client) const {
    trace::Span span;
    span.trace_id = trace.span.trace_id;
    span.span_id = trace.span.span_id;
    span.parent_span_id = trace.parent;
    span.trace_state = std::string(trace.tracestate);
    span.kind = trace::Span::Kind::server;
    span.name = std::string(method) + " " + std::string(route);
    auto end = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    span.end_unix_nano = static_cast<std::uint64_t>(end.count());
    span.start_unix_nano = static_cast<std::uint64_t>((end - elapsed).count());
    span.attributes = {{"http.request.method", std::string(method)},
                       {"http.route", std::string(route)},
                       {"http.response.status_code", static_cast<std::int64_t>(status)},
                       {"client.address", std::string(client)},
                       {"liftoff.request_id", std::string(request_id)}};
    span.error = status >= 500;
    options.spans->record(std::move(span));
  }

  // `trace`: null for a request that could not be parsed.
  void log_access(std::string_view request_id, const RequestTrace* trace, std::string_view method,
                  std::string_view route, unsigned status, std::chrono::nanoseconds elapsed,
                  std::size_t bytes_in, std::size_t bytes_out, std::string_view remote) {
    auto* logger = core::access_logger();
    if (logger == nullptr) return;
    thread_local std::string line;
    line.clear();
    line += R"("request_id":")";  // the logger's pattern opens the object with the timestamp
    core::append_json_escaped(line, request_id);
    if (trace != nullptr) {
      line += R"(","trace_id":")";
      line += trace->trace_id;
      line += R"(","span_id":")";
      line += trace->span.span_id_hex();
    }
    line += R"(","method":")";
    core::append_json_escaped(line, method);
    line += R"(","route":")";
    core::append_json_escaped(line, route);
    fmt::format_to(
        std::back_inserter(line),
        R"(","status":{},"duration_ms":{}.{:03},"bytes_in":{},"bytes_out":{},"remote":"{}"}})",
        status, elapsed.count() / 1'000'000, (elapsed.count() / 1'000) % 1'000, bytes_in, bytes_out,
        remote);
    logger->log(spdlog::level::info, std::string_view(line));
  }

  asio::awaitable<void> drain(Worker& w) {
    w.draining = true;
    beast::error_code ec;
    for (auto& slot : w.sessions) {
      if (slot.session->idle && !slot.session->fresh) slot.session->socket.cancel(ec);
      if (slot.session->stream) slot.session->stream->wake();
    }
    take_backlog(w);
    w.acceptor->close(ec);
    auto deadline = Clock::now() + options.shutdown_timeout;
    asio::steady_timer timer(*w.ioc);
    while (!w.sessions.empty() && Clock::now() < deadline) {
      timer.expires_after(std::chrono::milliseconds(10));
      co_await timer.async_wait(kUseTuple);
    }
    w.cut = w.sessions.size();
    for (auto& slot : w.sessions) slot.session->socket.close(ec);
    drained_workers.fetch_add(1);
  }

  // Connections the kernel completed but the server has not accepted would be reset when the
  // listener closes, after a balancer may have sent a request on one: accept each (without the
  // acceptor's asynchronous accept, still pending) and answer its first request.
  void take_backlog(Worker& w) {
    // Non-blocking even if no asynchronous accept has begun yet (a stop right after the start can
    // drain before the accept loop first runs): an empty backlog must not block the drain.
    beast::error_code blocking;
    w.acceptor->non_blocking(true, blocking);
    if (blocking) return;
    for (;;) {
      int fd =
          ::accept4(w.acceptor->native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN: nothing more waits (or the listener failed: nothing to take)
      tcp::socket socket(*w.ioc);
      beast::error_code ec;
      socket.assign(w.acceptor->local_endpoint(ec).protocol(), fd, ec);
      if (ec) {
        ::close(fd);
        continue;
      }
      start_session(w, std::move(socket), "");
    }
  }

  std::size_t run(const WorkerHook& on_start, const WorkerHook& on_stop) {
    std::atomic<std::size_t> running{workers.size()};
    watch_signals();
    auto control_work = asio::make_work_guard(control);
    std::vector<std::thread> threads;
    for (auto& wp : workers) {
      threads.emplace_back([&, w = wp.get()] {
        core::set_this_worker(w->index);
        if (on_start) on_start(w->index, *w->ioc);
        asio::co_spawn(*w->ioc, warm_up_and_accept(*w), log_failure("accept loop"));
        asio::co_spawn(*w->ioc, sweep(*w), log_failure("deadline sweeper"));
        w->ioc->run();
        if (on_stop) on_stop(w->index, *w->ioc);
        // Frames still alive here were cut at the deadline; run what their closing released.
        w->ioc->restart();
        w->ioc->run_for(std::chrono::milliseconds(100));
        if (running.fetch_sub(1) == 1)
          asio::post(control, [&] {
            control_work.reset();
            if (signals) signals->cancel();
          });
      });
    }
    control.run();
    for (auto& t : threads) t.join();
    std::size_t cut = 0;
    for (auto& w : workers) cut += w->cut;
    return cut;
  }

  // The first signal starts the stop; one more while it waits out drain_delay drains at once.
  void watch_signals() {
    if (!signals) return;
    signals->async_wait([this](const beast::error_code& ec, int signal) {
      if (ec) return;
      if (leaving.load()) {
        spdlog::info("signal {}: draining now", signal);
        begin_drain();
        return;
      }
      spdlog::info("signal {}: shutting down (drain in {} ms, deadline {} ms after)", signal,
                   options.drain_delay.count(), options.shutdown_timeout.count());
      request_stop();
      watch_signals();
    });
  }

  // On the control thread.
  void request_stop() {
    if (leaving.exchange(true)) return;
    if (options.on_leave) options.on_leave();
    if (options.drain_delay.count() <= 0) {
      begin_drain();
      return;
    }
    drain_timer.expires_after(options.drain_delay);
    drain_timer.async_wait([this](const beast::error_code& ec) {
      if (!ec) begin_drain();
    });
  }

  void begin_drain() {
    if (drain_begun) return;
    drain_begun = true;
    drain_timer.cancel();
    if (options.on_drain) options.on_drain();
    for (auto& w : workers) {
      asio::co_spawn(*w->ioc, drain(*w), log_failure("drain"));
    }
  }
};

Server::Server(ServerOptions options, const Router& router, core::Registry& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), router, metrics)) {}

Server::~Server() = default;

void Server::bind() {
  impl_->bind();
}

std::uint16_t Server::port() const {
  return impl_->bound_port;
}

bool Server::drained() const {
  return impl_->drained_workers.load() == impl_->workers.size();
}

std::size_t Server::run(const WorkerHook& on_start, const WorkerHook& on_stop) {
  return impl_->run(on_start, on_stop);
}

void Server::stop() {
  if (impl_->stop_requested.exchange(true)) return;
  asio::post(impl_->control, [impl = impl_.get()] { impl->request_stop(); });
}

}  // namespace liftoff::http
