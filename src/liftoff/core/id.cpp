#include "liftoff/core/id.hpp"

#include <chrono>
#include <random>

namespace liftoff::core {

std::array<std::uint8_t, 16> new_uuid_v7() {
  // RFC 9562's method 2 (a monotonic random counter): within one millisecond, each id of a thread
  // is the previous one plus one in its 74 random bits, so ids a thread makes sort in the order it
  // made them (a batch of rows keyed by them lists in that order); a new millisecond starts from
  // fresh random bits, half of the counter's range below its top so it cannot overflow in
  // practice (when it would, the millisecond moves on by one).
  thread_local std::mt19937_64 rng{(static_cast<std::uint64_t>(std::random_device{}()) << 32) ^
                                   std::random_device{}()};
  thread_local std::uint64_t last_ms = 0;
  thread_local std::uint64_t high = 0;  // the counter's top 12 bits (rand_a)
  thread_local std::uint64_t low = 0;   // its low 62 bits (rand_b)
  constexpr std::uint64_t kLowMask = (std::uint64_t{1} << 62) - 1;
  constexpr std::uint64_t kHighMask = (std::uint64_t{1} << 12) - 1;
  auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  if (ms > last_ms) {
    last_ms = ms;
    high = rng() & (kHighMask >> 1);
    low = rng() & kLowMask;
  } else if (++low > kLowMask) {
    low = 0;
    if (++high > kHighMask) {
      ++last_ms;
      high = rng() & (kHighMask >> 1);
      low = rng() & kLowMask;
    }
  }
  std::array<std::uint8_t, 16> id{};
  for (int i = 0; i < 6; ++i)
    id[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(last_ms >> (40 - 8 * i));
  id[6] = static_cast<std::uint8_t>(0x70 | (high >> 8));  // version 7
  id[7] = static_cast<std::uint8_t>(high);
  id[8] = static_cast<std::uint8_t>(0x80 | (low >> 56));  // variant 10
  for (int i = 9; i < 16; ++i)
    id[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(low >> (8 * (15 - i)));
  return id;
}

}  // namespace liftoff::core
