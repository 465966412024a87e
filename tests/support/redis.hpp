#pragma once
// A private Redis 7 for one test, on a loopback port of its own, without persistence, that a test
// can stop, pause and bring back on the same port (fault injection), and query with redis-cli.
#include <memory>
#include <string>

#include "support/process.hpp"

namespace liftoff::testing {

class TestRedis {
 public:
  TestRedis();  // started and answering PING, or the test has failed (see running())
  ~TestRedis();
  TestRedis(const TestRedis&) = delete;
  TestRedis& operator=(const TestRedis&) = delete;

  [[nodiscard]] bool running();
  [[nodiscard]] unsigned short port() const { return port_; }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // Stops it (SIGKILL: gone as a crash would leave it), and starts it again on the same port.
  void kill();
  [[nodiscard]] bool restart();
  // SIGSTOP / SIGCONT: connections stay open and nothing answers, as a hung host looks.
  void pause();
  void resume();

  // redis-cli's output for `command` (e.g. "PUBSUB NUMSUB channel").
  [[nodiscard]] std::string cli(const std::string& command) const;

 private:
  [[nodiscard]] bool start();
  unsigned short port_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace liftoff::testing
