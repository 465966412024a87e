#pragma once
// Cron schedules for periodic jobs, in UTC: five fields (minute hour day-of-month month
// day-of-week), or six with a leading seconds field; each field `*`, a value, a range `a-b`, a step
// `*/n` or `a-b/n`, or a comma-separated list of those; months and weekdays by number (weekday 0 or
// 7 is Sunday). `@yearly`, `@monthly`, `@weekly`, `@daily` and `@hourly` stand for their usual
// five fields. As in Vixie cron, when both day fields are restricted a day matching either runs.
#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "liftoff/core/error.hpp"

namespace liftoff::jobs {

using SysSeconds = std::chrono::sys_seconds;

class CronSchedule {
 public:
  // A 422-style error naming the field at fault for anything that is not a schedule.
  [[nodiscard]] static Result<CronSchedule> parse(std::string_view text);

  // The first tick strictly after `after`; nullopt when none comes within five years (a schedule
  // such as February 30th).
  [[nodiscard]] std::optional<SysSeconds> next_after(SysSeconds after) const;
  // The last tick at or before `at` within the previous five years.
  [[nodiscard]] std::optional<SysSeconds> last_at_or_before(SysSeconds at) const;

  [[nodiscard]] const std::string& text() const { return text_; }

 private:
  [[nodiscard]] bool day_matches(std::chrono::sys_days day) const;
  std::string text_;
  std::bitset<60> seconds_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0..6, Sunday 0
  bool any_day_ = true;      // the day-of-month field is `*`
  bool any_weekday_ = true;  // the day-of-week field is `*`
};

}  // namespace liftoff::jobs
