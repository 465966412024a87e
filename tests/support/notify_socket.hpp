#pragma once
// The receiving end of the systemd notification protocol (core::notify_service_manager), for the
// harness: a datagram socket in the run directory, passed to a child as NOTIFY_SOCKET. Each
// message arrives with the sender's credentials (SO_PASSCRED), so readiness is read from the child
// itself, never from whatever else answers on a port.
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

namespace liftoff::testing {

class NotifySocket {
 public:
  NotifySocket();
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  // The next message sent by process `pid` within `timeout` (others are dropped).
  [[nodiscard]] std::optional<std::string> receive_from(pid_t pid,
                                                        std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace liftoff::testing
