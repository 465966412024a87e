#pragma once
// A TCP proxy for fault injection: tests point a client (Liftoff, a driver, a replica) at it
// instead of a server and then make the network misbehave: delay every chunk, blackhole
// (connections stay open and nothing moves, the way a partitioned or paused host looks), refuse new
// connections, or cut every open one. It listens on a loopback port the kernel chooses, bound
// before the constructor returns (no race with other tests for it), and runs on a thread of its
// own.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace liftoff::testing {

class TcpProxy {
 public:
  TcpProxy(std::string upstream_host, unsigned short upstream_port);
  ~TcpProxy();  // closes everything
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  [[nodiscard]] unsigned short port() const;

  // Forward both ways (the initial state); what a blackhole held moves on.
  void pass();
  // Forward, each chunk `d` late (both ways).
  void delay(std::chrono::milliseconds d);
  // Accept, and hold every byte either way until pass(): the peer sees a silent, open connection.
  void blackhole();
  // Close new connections at once (open ones keep working).
  void refuse();
  // Close every open connection now, both sides (the mode is unchanged).
  void cut();

  // Connections open through the proxy now, and accepted since it started.
  [[nodiscard]] std::size_t open_connections() const;
  [[nodiscard]] std::size_t accepted() const;
  // What happened, one line per event (accepted, refused, connected, closed, cut), with the time:
  // for a failing test's message.
  [[nodiscard]] std::string events() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace liftoff::testing
