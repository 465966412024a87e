#include "support/notify_socket.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "support/run_dir.hpp"

namespace liftoff::testing {

NotifySocket::NotifySocket() {
  static std::atomic<int> n = 0;
  path_ = (run_dir() / ("notify-" + std::to_string(++n) + ".sock")).string();
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  EXPECT_LT(path_.size(), sizeof(addr.sun_path));
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  int one = 1;
  EXPECT_EQ(::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
  EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << path_;
}

NotifySocket::~NotifySocket() {
  if (fd_ >= 0) ::close(fd_);
  ::unlink(path_.c_str());
}

std::optional<std::string> NotifySocket::receive_from(pid_t pid,
                                                      std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char data[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec io{data, sizeof(data)};
    msghdr msg{};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    auto n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) continue;
    for (auto* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS) continue;
      ucred cred{};
      std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
      if (cred.pid == pid) return std::string(data, static_cast<std::size_t>(n));
    }
  }
}

}  // namespace liftoff::testing
