#pragma once
// The systemd notification protocol (sd_notify(3)), without libsystemd: when the process was
// started with NOTIFY_SOCKET (systemd's Type=notify units, or a test harness), state lines such as
// "READY=1" go to that datagram socket. Without NOTIFY_SOCKET it does nothing.
#include <string_view>

namespace liftoff::core {

// Sends `state` (newline-separated VAR=value lines) to $NOTIFY_SOCKET; false when it is set but the
// message could not be sent.
bool notify_service_manager(std::string_view state);

}  // namespace liftoff::core
