#include "liftoff/jobs/cron.hpp"

#include <charconv>
#include <vector>

namespace liftoff::jobs {
namespace {
using namespace std::chrono;

constexpr auto kHorizon = days(5 * 366);

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    auto end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::optional<int> number(std::string_view text) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// One field's values in [low, high] as a bit set indexed by value (bits below `low` stay clear).
template <std::size_t N>
Result<std::bitset<N>> parse_field(std::string_view text, int low, int high,
                                   std::string_view name) {
  auto bad = [&](std::string_view why) {
    return Error{
        Errc::validation_failed, "invalid cron schedule", {{std::string(name), std::string(why)}}};
  };
  std::bitset<N> bits;
  for (auto item : split(text, ',')) {
    int step = 1;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      auto parsed = number(item.substr(slash + 1));
      if (!parsed || *parsed < 1) return bad("a step must be a positive number");
      step = *parsed;
      item = item.substr(0, slash);
    }
    int first = low, last = high;
    if (item != "*") {
      auto dash = item.find('-');
      auto from = number(item.substr(0, dash));
      auto to = dash == std::string_view::npos ? from : number(item.substr(dash + 1));
      if (!from || !to) return bad("expected *, a number, a range a-b or a step");
      first = *from;
      last = dash == std::string_view::npos && step > 1 ? high : *to;
      if (first < low || last > high || first > last)
        return bad("values must lie within " + std::to_string(low) + "-" + std::to_string(high));
    }
    for (int v = first; v <= last; v += step) bits.set(static_cast<std::size_t>(v));
  }
  return bits;
}

std::string_view expand(std::string_view text) {
  if (text == "@yearly" || text == "@annually") return "0 0 1 1 *";
  if (text == "@monthly") return "0 0 1 * *";
  if (text == "@weekly") return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight") return "0 0 * * *";
  if (text == "@hourly") return "0 * * * *";
  return text;
}

}  // namespace

Result<CronSchedule> CronSchedule::parse(std::string_view text) {
  std::vector<std::string_view> fields;
  for (auto field : split(expand(text), ' ')) {
    if (!field.empty()) fields.push_back(field);
  }
  if (fields.size() != 5 && fields.size() != 6) {
    return Error{Errc::validation_failed,
                 "invalid cron schedule",
                 {{"schedule",
                   "expected five fields (minute hour day month weekday), six with "
                   "leading seconds, or @hourly, @daily, @weekly, @monthly, @yearly"}}};
  }
  CronSchedule schedule;
  schedule.text_ = std::string(text);
  std::size_t i = 0;
  if (fields.size() == 6) {
    auto seconds = parse_field<60>(fields[i++], 0, 59, "second");
    if (!seconds) return seconds.error();
    schedule.seconds_ = *seconds;
  } else {
    schedule.seconds_.set(0);
  }
  auto minutes = parse_field<60>(fields[i++], 0, 59, "minute");
  if (!minutes) return minutes.error();
  auto hours = parse_field<24>(fields[i++], 0, 23, "hour");
  if (!hours) return hours.error();
  schedule.any_day_ = fields[i] == "*";
  auto days = parse_field<32>(fields[i++], 1, 31, "day");
  if (!days) return days.error();
  auto months = parse_field<13>(fields[i++], 1, 12, "month");
  if (!months) return months.error();
  schedule.any_weekday_ = fields[i] == "*";
  auto weekdays = parse_field<8>(fields[i], 0, 7, "weekday");
  if (!weekdays) return weekdays.error();
  schedule.minutes_ = *minutes;
  schedule.hours_ = *hours;
  schedule.days_ = *days;
  schedule.months_ = *months;
  for (std::size_t d = 0; d < 7; ++d) schedule.weekdays_[d] = (*weekdays)[d];
  if ((*weekdays)[7]) schedule.weekdays_.set(0);
  return schedule;
}

bool CronSchedule::day_matches(sys_days day) const {
  year_month_day ymd(day);
  if (!months_[static_cast<unsigned>(ymd.month())]) return false;
  bool by_day = days_[static_cast<unsigned>(ymd.day())];
  bool by_weekday = weekdays_[weekday(day).c_encoding()];
  if (any_day_ && any_weekday_) return true;
  if (any_day_) return by_weekday;
  if (any_weekday_) return by_day;
  return by_day || by_weekday;
}

std::optional<SysSeconds> CronSchedule::next_after(SysSeconds after) const {
  // Day by day to a matching day, then the first matching second of it.
  auto t = after + seconds(1);
  auto day = floor<days>(t);
  for (auto end = day + kHorizon; day <= end; day += days(1)) {
    if (!day_matches(day)) continue;
    auto from = day == floor<days>(t) ? t - day : seconds(0);
    for (auto s = from.count(); s < 86'400; ++s) {
      auto hour = static_cast<std::size_t>(s / 3600),
           minute = static_cast<std::size_t>(s / 60 % 60),
           second = static_cast<std::size_t>(s % 60);
      if (!hours_[hour]) {
        s = static_cast<long>(hour + 1) * 3600 - 1;
      } else if (!minutes_[minute]) {
        s = static_cast<long>(hour * 3600 + (minute + 1) * 60) - 1;
      } else if (seconds_[second]) {
        return day + seconds(s);
      }
    }
  }
  return std::nullopt;
}

std::optional<SysSeconds> CronSchedule::last_at_or_before(SysSeconds at) const {
  auto day = floor<days>(at);
  for (auto end = day - kHorizon; day >= end; day -= days(1)) {
    if (!day_matches(day)) continue;
    auto from = day == floor<days>(at) ? (at - day).count() : 86'399;
    for (auto s = from; s >= 0; --s) {
      auto hour = static_cast<std::size_t>(s / 3600),
           minute = static_cast<std::size_t>(s / 60 % 60),
           second = static_cast<std::size_t>(s % 60);
      if (!hours_[hour]) {
        s = static_cast<long>(hour) * 3600;
      } else if (!minutes_[minute]) {
        s = static_cast<long>(hour * 3600 + minute * 60);
      } else if (seconds_[second]) {
        return day + seconds(s);
      }
    }
  }
  return std::nullopt;
}

}  // namespace liftoff::jobs
