#include "support/tcp_proxy.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <list>
#include <mutex>
#include <thread>

namespace liftoff::testing {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
enum class Mode { pass, blackhole, refuse };
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

struct TcpProxy::Impl {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  tcp::endpoint upstream;
  unsigned short port = 0;
  std::atomic<Mode> mode{Mode::pass};
  std::atomic<std::chrono::milliseconds::rep> delay_ms{0};
  std::atomic<std::size_t> open{0};
  std::atomic<std::size_t> accepted{0};
  // Waiters for a change of mode (cancelled on every change; never expires by itself).
  asio::steady_timer changed{io, asio::steady_timer::time_point::max()};

  std::mutex events_mutex;
  std::string events;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  void note(const std::string& what) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started)
                  .count();
    std::lock_guard lock(events_mutex);
    events += std::to_string(ms) + " ms: " + what + "\n";
  }
  void note(std::size_t link, const std::string& what) {
    note("link " + std::to_string(link) + ": " + what);
  }

  struct Link {
    std::size_t id = 0;
    tcp::socket client;
    tcp::socket server;
    void close() {
      boost::system::error_code ec;
      client.close(ec);
      server.close(ec);
    }
  };
  std::list<std::shared_ptr<Link>> links;  // touched on the io thread only
  std::thread thread;

  void set_mode(Mode m) {
    note(m == Mode::pass ? "pass" : m == Mode::blackhole ? "blackhole" : "refuse");
    mode = m;
    asio::post(io, [this] { changed.cancel(); });
  }

  // Returns once the mode is not blackhole or the link is closed (at once if neither holds).
  asio::awaitable<void> while_blackholed(const Link& link) {
    while (mode == Mode::blackhole && link.client.is_open()) co_await changed.async_wait(kTuple);
  }

  asio::awaitable<void> pump(std::shared_ptr<Link> link, tcp::socket& from, tcp::socket& to) {
    std::array<char, 16 * 1024> buffer{};
    asio::steady_timer late(io);
    for (;;) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer), kTuple);
      if (ec) {
        note(link->id, "read ended: " + ec.message());
        break;
      }
      co_await while_blackholed(*link);
      if (auto d = delay_ms.load(); d > 0) {
        late.expires_after(std::chrono::milliseconds(d));
        co_await late.async_wait(kTuple);
      }
      auto [wec, written] = co_await asio::async_write(to, asio::buffer(buffer.data(), n), kTuple);
      if (wec) break;
    }
    link->close();  // one direction ended: so does the other (a half-close is not modelled)
  }

  asio::awaitable<void> serve(std::shared_ptr<Link> link) {
    co_await while_blackholed(*link);
    if (mode == Mode::refuse || !link->client.is_open()) {
      note(link->id, "closed before connecting");
      link->close();
      co_return;
    }
    auto [ec] = co_await link->server.async_connect(upstream, kTuple);
    if (ec) {
      note(link->id, "connect failed: " + ec.message());
      link->close();
      co_return;
    }
    note(link->id, "connected");
    asio::co_spawn(io, pump(link, link->server, link->client), asio::detached);
    co_await pump(link, link->client, link->server);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;
      auto id = ++accepted;
      if (mode == Mode::refuse) {
        note(id, "refused");
        continue;  // the socket closes as it leaves scope
      }
      note(id, "accepted");
      auto link = std::make_shared<Link>(Link{id, std::move(socket), tcp::socket(io)});
      links.push_back(link);
      auto at = std::prev(links.end());
      ++open;
      asio::co_spawn(io, serve(link), [this, at](const std::exception_ptr&) {
        note((*at)->id, "done");
        (*at)->close();
        links.erase(at);
        --open;
      });
    }
  }
};

TcpProxy::TcpProxy(std::string upstream_host, unsigned short upstream_port)
    : impl_(std::make_unique<Impl>()) {
  impl_->upstream = tcp::endpoint(asio::ip::make_address(upstream_host), upstream_port);
  tcp::endpoint local(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(local.protocol());
  impl_->acceptor.bind(local);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

TcpProxy::~TcpProxy() {
  asio::post(impl_->io, [impl = impl_.get()] {
    boost::system::error_code ec;
    impl->acceptor.close(ec);
    for (auto& link : impl->links) link->close();
    impl->mode = Mode::pass;
    impl->changed.cancel();
  });
  // The pumps end as their sockets close; then run() returns.
  impl_->thread.join();
}

unsigned short TcpProxy::port() const {
  return impl_->port;
}

void TcpProxy::pass() {
  impl_->delay_ms = 0;
  impl_->set_mode(Mode::pass);
}

void TcpProxy::delay(std::chrono::milliseconds d) {
  impl_->delay_ms = d.count();
  impl_->set_mode(Mode::pass);
}

void TcpProxy::blackhole() {
  impl_->set_mode(Mode::blackhole);
}

void TcpProxy::refuse() {
  impl_->set_mode(Mode::refuse);
}

void TcpProxy::cut() {
  asio::post(impl_->io, [impl = impl_.get()] {
    impl->note("cut: " + std::to_string(impl->links.size()) + " links");
    for (auto& link : impl->links) link->close();
    impl->changed.cancel();  // what a blackhole holds sees its link closed
  });
}

std::size_t TcpProxy::open_connections() const {
  return impl_->open;
}
std::size_t TcpProxy::accepted() const {
  return impl_->accepted;
}

std::string TcpProxy::events() const {
  std::lock_guard lock(impl_->events_mutex);
  return impl_->events;
}

}  // namespace liftoff::testing
