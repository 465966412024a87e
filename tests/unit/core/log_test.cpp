// The access log on standard output when standard output is a socket, as under systemd (the
// journal's stream socket) or a parent that talks to its child over a socketpair (Node's
// child_process): Liftoff once reopened /dev/stdout by name, which a socket refuses (ENXIO), and
// died at start with "Failed opening file /dev/stdout".
#include "liftoff/core/log.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

namespace liftoff::core {
namespace {

TEST(Logging, TheAccessLogWritesToStandardOutputEvenWhenItIsASocket) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  std::cout.flush();
  std::fflush(stdout);
  int saved = ::dup(STDOUT_FILENO);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(::dup2(pair[0], STDOUT_FILENO), STDOUT_FILENO);
  std::string failure;
  try {
    init_logging("info", "-");
    access_logger()->info(R"("probe":"socket"})");
    access_logger()->flush();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  std::cout.flush();
  std::fflush(stdout);
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  ::close(pair[0]);
  spdlog::drop("access");  // the rest of this binary logs as before
  EXPECT_EQ(failure, "");

  std::string received;
  char buffer[4096];
  pollfd ready{pair[1], POLLIN, 0};
  while (received.find("probe") == std::string::npos && ::poll(&ready, 1, 2000) > 0) {
    auto n = ::read(pair[1], buffer, sizeof buffer);
    if (n <= 0) break;
    received.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pair[1]);
  EXPECT_NE(received.find(R"("probe":"socket")"), std::string::npos) << received;
}

}  // namespace
}  // namespace liftoff::core
