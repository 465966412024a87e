#pragma once
// The HTTP/1.1 server: thread-per-core, one io_context and one SO_REUSEPORT listener per worker
// thread, one coroutine per connection. Limits answer with the right status (431, 413, 408, 503 +
// Retry-After); everything else that goes wrong in a request becomes problem+json.
//
// Lifetime: construct, bind(), run() (blocks until stopped and drained). stop() is thread-safe and
// idempotent: listeners close, idle keep-alive connections close, in-flight requests get until
// `shutdown_timeout` to finish (their responses carry Connection: close), then the rest are cut.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "liftoff/http/cors.hpp"
#include "liftoff/http/router.hpp"
#include "liftoff/trace/span.hpp"

namespace boost::asio {
class io_context;
}
namespace liftoff::core {
class MemoryGuard;
class Registry;
class TenantTally;
}  // namespace liftoff::core

namespace liftoff::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see Server::port())
  unsigned threads = 1;
  std::size_t max_connections = 10000;
  // Open connections from one client address (the peer's; trusted proxies are exempt) before new
  // ones are answered 429 and closed. 0: no cap.
  std::size_t max_connections_per_client = 1000;
  std::size_t header_limit = 16 * 1024;
  std::size_t body_limit = 1024 * 1024;
  std::chrono::milliseconds request_timeout{10'000};
  // From a request's last byte to its answer: RequestContext::deadline.
  std::chrono::milliseconds handling_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  // How long a new connection may take to begin its first request (a connection that sends
  // nothing holds a slot for this long, not for idle_timeout; never longer than idle_timeout).
  std::chrono::milliseconds first_byte_timeout{5'000};
  std::chrono::milliseconds shutdown_timeout{10'000};
  // From the stop's start (on_leave) to the drain: the server still accepts and serves, but every
  // answer closes its connection, so a load balancer's kept-alive connections end cleanly after
  // their last answer rather than racing the drain's close with a new request. 0: drain at once.
  // A second signal drains at once.
  std::chrono::milliseconds drain_delay{0};
  bool handle_signals = true;  // SIGINT/SIGTERM start a graceful shutdown
  // Peers (load balancers) whose X-Forwarded-For names the client; from anyone else it is ignored.
  std::vector<std::string> trusted_proxies;
  // While it sheds, heavy routes (Cost::heavy) answer 503 with Retry-After; light ones (health,
  // sign-in, single reads) are still served. Null: no memory guard.
  const core::MemoryGuard* memory_guard = nullptr;
  // Which browser origins may read the answers (cors.hpp).
  CorsOptions cors;
  // The share of new traces sampled (core/trace_context.hpp); a caller's traceparent decides its
  // own.
  double trace_sample_ratio = 0.01;
  // Takes the span of each sampled request once it is answered, and the spans of what handlers do
  // under it (RequestContext::spans); null: spans are not recorded.
  trace::Recorder* spans = nullptr;
  // Counts each request that acted for an organization (RequestContext::tenant) for the
  // per-tenant metrics; null: not counted.
  core::TenantTally* tenants = nullptr;
  // Called once when the stop begins (from the control thread), drain_delay before the drain:
  // make /readyz fail here.
  std::function<void()> on_leave;
  // Called once when the drain begins (from the control thread): stop background loops here so
  // the workers' event loops can run dry.
  std::function<void()> on_drain;
  // Runs on each worker before it accepts its first connection (the listener is open: connections
  // wait in its backlog meanwhile, and /readyz is not answered): open database connections here,
  // so that the first requests after a start or a restart do not each wait for one.
  std::function<boost::asio::awaitable<void>(std::size_t worker)> warm_up;
};

class Server {
 public:
  // Runs on each worker thread: after the thread's io_context exists and before it serves
  // (on_start), and after it stopped serving and before the io_context is destroyed (on_stop).
  using WorkerHook = std::function<void(std::size_t worker, boost::asio::io_context&)>;

  Server(ServerOptions options, const Router& router, core::Registry& metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the listeners; throws std::system_error when the address cannot be bound.
  void bind();
  [[nodiscard]] std::uint16_t port() const;

  // Serves until stop() (or a signal) and the drain finish. Returns the number of connections that
  // had to be cut at the shutdown deadline.
  std::size_t run(const WorkerHook& on_start = {}, const WorkerHook& on_stop = {});
  void stop();
  // Whether every worker has finished its drain: the last request is answered (or was cut at the
  // shutdown deadline). Any thread; work that must follow the last request (the last usage batch)
  // waits for it.
  [[nodiscard]] bool drained() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace liftoff::http
