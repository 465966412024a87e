#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace liftoff::core {

// "2026-11-27T12:34:56.789Z" (UTC, milliseconds): how every API response writes a time.
[[nodiscard]] std::string format_rfc3339(std::chrono::sys_time<std::chrono::microseconds> t);

// Parses an RFC 3339 date-time: "2026-11-27T12:34:56Z", with optional fractional seconds (up to
// microseconds are kept) and a "Z" or "+hh:mm"/"-hh:mm" offset. nullopt when malformed.
[[nodiscard]] std::optional<std::chrono::sys_time<std::chrono::microseconds>> parse_rfc3339(
    std::string_view text);

}  // namespace liftoff::core
