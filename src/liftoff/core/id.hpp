#pragma once
// Globally unique, time-ordered identifiers (UUIDv7, RFC 9562): 48 bits of Unix milliseconds, then
// random bits. Rows keep their ids when a tenant moves between shards, and ids sort by creation.
#include <array>
#include <cstdint>

namespace liftoff::core {

// 16 bytes of a UUIDv7. Thread-safe (per-thread random state seeded from the OS).
[[nodiscard]] std::array<std::uint8_t, 16> new_uuid_v7();

}  // namespace liftoff::core
