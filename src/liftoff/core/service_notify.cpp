#include "liftoff/core/service_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace liftoff::core {

bool notify_service_manager(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return true;
  std::string_view address(path);
  sockaddr_un to{};
  to.sun_family = AF_UNIX;
  // '@' names an abstract socket (a leading NUL); anything else is a path.
  if ((address.front() != '/' && address.front() != '@') || address.size() >= sizeof(to.sun_path))
    return false;
  std::memcpy(to.sun_path, address.data(), address.size());
  if (address.front() == '@') to.sun_path[0] = '\0';
  auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  auto sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&to), length);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

}  // namespace liftoff::core
