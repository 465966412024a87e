#include "liftoff/core/id.hpp"

#include <chrono>
#include <random>

namespace liftoff::core {

std::array<std::uint8_t, 16> new_uuid_v7() {
  thread_local std::mt19937_64 rng{(static_cast<std::uint64_t>(std::random_device{}()) << 32) ^
                                   std::random_device{}()};
  auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  std::uint64_t a = rng();
  std::uint64_t b = rng();
  std::array<std::uint8_t, 16> id{};
  for (int i = 0; i < 6; ++i)
    id[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  for (int i = 6; i < 8; ++i)
    id[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(a >> (8 * i));
  for (int i = 8; i < 16; ++i)
    id[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(b >> (8 * (i - 8)));
  id[6] = static_cast<std::uint8_t>(0x70 | (id[6] & 0x0F));  // version 7
  id[8] = static_cast<std::uint8_t>(0x80 | (id[8] & 0x3F));  // variant 10
  return id;
}

}  // namespace liftoff::core
