#pragma once
#include <chrono>
#include <string>

namespace liftoff::core {

// "2026-11-27T12:34:56.789Z" (UTC, milliseconds): how every API response writes a time.
[[nodiscard]] std::string format_rfc3339(std::chrono::sys_time<std::chrono::microseconds> t);

}  // namespace liftoff::core
