#include "liftoff/core/time.hpp"

#include <array>
#include <ctime>

namespace liftoff::core {

std::string format_rfc3339(std::chrono::sys_time<std::chrono::microseconds> t) {
  auto seconds = std::chrono::floor<std::chrono::seconds>(t);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(t - seconds).count();
  std::time_t tt =
      std::chrono::system_clock::to_time_t(std::chrono::system_clock::time_point(seconds));
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::array<char, 40> buf{};
  auto n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf.data(), n);
  std::array<char, 8> frac{};
  std::snprintf(frac.data(), frac.size(), ".%03dZ", static_cast<int>(millis));
  out += frac.data();
  return out;
}

}  // namespace liftoff::core
