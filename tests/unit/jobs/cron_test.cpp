// Cron schedules: parsing (and the field named when it fails), the next tick and the last one, in
// UTC, across day, month and year ends and with both day fields restricted.
#include "liftoff/jobs/cron.hpp"

#include <gtest/gtest.h>

namespace liftoff::jobs {
namespace {
using namespace std::chrono;

SysSeconds at(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  return sys_days(year(y) / month(mo) / day(d)) + hours(h) + minutes(mi) + seconds(s);
}

CronSchedule parse(std::string_view text) {
  auto schedule = CronSchedule::parse(text);
  EXPECT_TRUE(schedule) << text;
  return *schedule;
}

TEST(Cron, EveryMinuteTicksAtTheNextMinuteStrictlyAfter) {
  auto every_minute = parse("* * * * *");
  EXPECT_EQ(every_minute.next_after(at(2026, 12, 3, 10, 15, 0)), at(2026, 12, 3, 10, 16, 0));
  EXPECT_EQ(every_minute.next_after(at(2026, 12, 3, 10, 15, 59)), at(2026, 12, 3, 10, 16, 0));
  EXPECT_EQ(every_minute.last_at_or_before(at(2026, 12, 3, 10, 15, 0)), at(2026, 12, 3, 10, 15));
  EXPECT_EQ(every_minute.last_at_or_before(at(2026, 12, 3, 10, 15, 30)), at(2026, 12, 3, 10, 15));
}

TEST(Cron, SixFieldsHaveSeconds) {
  auto every_five_seconds = parse("*/5 * * * * *");
  EXPECT_EQ(every_five_seconds.next_after(at(2026, 1, 1, 0, 0, 3)), at(2026, 1, 1, 0, 0, 5));
  EXPECT_EQ(every_five_seconds.next_after(at(2026, 1, 1, 0, 0, 55)), at(2026, 1, 1, 0, 1, 0));
  EXPECT_EQ(every_five_seconds.last_at_or_before(at(2026, 1, 1, 0, 0, 59)),
            at(2026, 1, 1, 0, 0, 55));
}

TEST(Cron, ListsRangesAndStepsCombine) {
  auto schedule =
      parse("0,30 9-17/4 * * 1-5");  // 09:00, 09:30, 13:00, 13:30, 17:00, 17:30 weekdays
  // 2026-12-04 is a Friday; the next weekday after Friday 17:30 is Monday the 7th.
  EXPECT_EQ(schedule.next_after(at(2026, 12, 4, 9, 0)), at(2026, 12, 4, 9, 30));
  EXPECT_EQ(schedule.next_after(at(2026, 12, 4, 9, 30)), at(2026, 12, 4, 13, 0));
  EXPECT_EQ(schedule.next_after(at(2026, 12, 4, 17, 30)), at(2026, 12, 7, 9, 0));
  EXPECT_EQ(schedule.last_at_or_before(at(2026, 12, 7, 8, 59)), at(2026, 12, 4, 17, 30));
}

TEST(Cron, CrossesMonthAndYearEnds) {
  auto monthly = parse("@monthly");
  EXPECT_EQ(monthly.next_after(at(2026, 12, 3)), at(2027, 1, 1));
  EXPECT_EQ(monthly.last_at_or_before(at(2026, 12, 3)), at(2026, 12, 1));
  auto leap_day = parse("0 12 29 2 *");
  EXPECT_EQ(leap_day.next_after(at(2026, 12, 3)), at(2028, 2, 29, 12));
  auto impossible = parse("0 0 30 2 *");
  EXPECT_EQ(impossible.next_after(at(2026, 12, 3)), std::nullopt);
}

TEST(Cron, BothDayFieldsRestrictedMatchEither) {
  auto schedule = parse("0 0 13 * 5");  // the 13th, and every Friday
  // From Tuesday 2026-12-01: Friday the 4th comes before the 13th.
  EXPECT_EQ(schedule.next_after(at(2026, 12, 1)), at(2026, 12, 4));
  EXPECT_EQ(schedule.next_after(at(2026, 12, 11)), at(2026, 12, 13));
  auto sunday = parse("0 0 * * 7");  // 7 is Sunday too
  EXPECT_EQ(sunday.next_after(at(2026, 12, 3)), at(2026, 12, 6));
}

TEST(Cron, NonsenseIsRefusedNamingTheField) {
  for (auto [text, field] :
       std::vector<std::pair<std::string, std::string>>{{"* * * *", "schedule"},
                                                        {"60 * * * *", "minute"},
                                                        {"* 24 * * *", "hour"},
                                                        {"* * 0 * *", "day"},
                                                        {"* * * 13 *", "month"},
                                                        {"* * * * 8", "weekday"},
                                                        {"*/0 * * * *", "minute"},
                                                        {"5-1 * * * *", "minute"},
                                                        {"a * * * *", "minute"},
                                                        {"* * * * * * *", "schedule"},
                                                        {"@sometimes", "schedule"}}) {
    auto schedule = CronSchedule::parse(text);
    ASSERT_FALSE(schedule) << text;
    EXPECT_EQ(schedule.error().code, Errc::validation_failed);
    ASSERT_EQ(schedule.error().fields.size(), 1u) << text;
    EXPECT_EQ(schedule.error().fields[0].field, field) << text;
  }
}

}  // namespace
}  // namespace liftoff::jobs
