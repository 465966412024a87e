#include "liftoff/core/time.hpp"

#include <array>
#include <ctime>

namespace liftoff::core {

std::string format_rfc3339(std::chrono::sys_time<std::chrono::microseconds> t) {
  using namespace std::chrono;
  // By hand, not strftime: this runs for every timestamp of every response.
  auto days = floor<std::chrono::days>(t);
  year_month_day ymd{days};
  hh_mm_ss<microseconds> time{t - days};
  auto millis = duration_cast<milliseconds>(time.subseconds()).count();
  char buf[32];
  auto put = [&buf](std::size_t at, unsigned value, std::size_t digits) {
    for (std::size_t i = digits; i-- > 0; value /= 10)
      buf[at + i] = static_cast<char>('0' + value % 10);
  };
  put(0, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
  buf[4] = '-';
  put(5, static_cast<unsigned>(ymd.month()), 2);
  buf[7] = '-';
  put(8, static_cast<unsigned>(ymd.day()), 2);
  buf[10] = 'T';
  put(11, static_cast<unsigned>(time.hours().count()), 2);
  buf[13] = ':';
  put(14, static_cast<unsigned>(time.minutes().count()), 2);
  buf[16] = ':';
  put(17, static_cast<unsigned>(time.seconds().count()), 2);
  buf[19] = '.';
  put(20, static_cast<unsigned>(millis), 3);
  buf[23] = 'Z';
  return std::string(buf, 24);
}

namespace {
// Reads exactly `digits` decimal digits at `pos`.
std::optional<int> digits_at(std::string_view text, std::size_t pos, std::size_t digits) {
  if (pos + digits > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = pos; i < pos + digits; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}
}  // namespace

std::optional<std::chrono::sys_time<std::chrono::microseconds>> parse_rfc3339(
    std::string_view text) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  auto y = digits_at(text, 0, 4), mo = digits_at(text, 5, 2), d = digits_at(text, 8, 2);
  auto h = digits_at(text, 11, 2), mi = digits_at(text, 14, 2), s = digits_at(text, 17, 2);
  if (!y || !mo || !d || !h || !mi || !s || *h > 23 || *mi > 59 || *s > 59) return std::nullopt;
  year_month_day date{year(*y), month(static_cast<unsigned>(*mo)), day(static_cast<unsigned>(*d))};
  if (!date.ok()) return std::nullopt;
  std::size_t pos = 19;
  microseconds fraction{0};
  if (text[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    std::int64_t micros = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (pos - start < 6) micros = micros * 10 + (text[pos] - '0');
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (auto n = pos - start; n < 6; ++n) micros *= 10;
    fraction = microseconds(micros);
  }
  minutes offset{0};
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    auto oh = digits_at(text, pos + 1, 2), om = digits_at(text, pos + 4, 2);
    if (!oh || !om || pos + 3 >= text.size() || text[pos + 3] != ':' || *oh > 23 || *om > 59)
      return std::nullopt;
    offset = hours(*oh) + minutes(*om);
    if (text[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  auto local = sys_days(date) + hours(*h) + minutes(*mi) + seconds(*s);
  return time_point_cast<microseconds>(local - offset) + fraction;
}

}  // namespace liftoff::core
