#include <gtest/gtest.h>

#include "liftoff/core/time.hpp"
#include "liftoff/http/query.hpp"

namespace liftoff {
namespace {
using namespace std::chrono;

TEST(Rfc3339, ParsesWhatFormatWrites) {
  auto t = time_point_cast<microseconds>(sys_days(year(2026) / 11 / 27) + hours(12) + minutes(34) +
                                         seconds(56) + milliseconds(789));
  EXPECT_EQ(core::parse_rfc3339(core::format_rfc3339(t)), t);
  EXPECT_EQ(core::format_rfc3339(t), "2026-11-27T12:34:56.789Z");
  EXPECT_EQ(core::format_rfc3339(time_point_cast<microseconds>(sys_days(year(1999) / 1 / 2))),
            "1999-01-02T00:00:00.000Z");
}

TEST(Rfc3339, HonoursOffsetsAndFractions) {
  auto utc = core::parse_rfc3339("2026-11-27T12:00:00Z");
  ASSERT_TRUE(utc);
  EXPECT_EQ(core::parse_rfc3339("2026-11-27T13:30:00+01:30"), utc);
  EXPECT_EQ(core::parse_rfc3339("2026-11-27T11:00:00-01:00"), utc);
  EXPECT_EQ(core::parse_rfc3339("2026-11-27t12:00:00z"), utc);
  EXPECT_EQ(core::parse_rfc3339("2026-11-27T12:00:00.123456789Z"), *utc + microseconds(123456));
  EXPECT_EQ(core::parse_rfc3339("2026-11-27T12:00:00.5Z"), *utc + milliseconds(500));
}

TEST(Rfc3339, RejectsMalformedTimes) {
  for (const char* bad :
       {"", "yesterday", "2026-11-27", "2026-11-27 12:00:00Z", "2026-02-30T12:00:00Z",
        "2026-11-27T24:00:00Z", "2026-11-27T12:00:00", "2026-11-27T12:00:00.Z",
        "2026-11-27T12:00:00+1:00", "2026-11-27T12:00:00Zjunk", "2026-1a-27T12:00:00Z"}) {
    EXPECT_FALSE(core::parse_rfc3339(bad)) << bad;
  }
}

TEST(Query, DecodesKnownParameters) {
  auto q = http::parse_query("since=2026-11-27T12%3A00%3A00%2B01%3A00&action=org.created&empty",
                             {"since", "action", "empty"});
  ASSERT_TRUE(q);
  EXPECT_EQ(q->at("since"), "2026-11-27T12:00:00+01:00");
  EXPECT_EQ(q->at("action"), "org.created");
  EXPECT_EQ(q->at("empty"), "");
  EXPECT_TRUE(http::parse_query("", {"a"})->empty());
}

// What browsers' forms, URLSearchParams, curl --data-urlencode and Python's urlencode send: a space
// as '+', a '+' as %2B (this answered 400 when '+' was kept as is).
TEST(Query, APlusIsASpace) {
  auto q = http::parse_query("filter=priority+%3E%3D+2&q=a%2Bb+c", {"filter", "q"});
  ASSERT_TRUE(q);
  EXPECT_EQ(q->at("filter"), "priority >= 2");
  EXPECT_EQ(q->at("q"), "a+b c");
  auto key = http::parse_query("sort+order=1", {"sort order"});
  ASSERT_TRUE(key);
  EXPECT_EQ(key->at("sort order"), "1");
}

TEST(Query, NamesUnknownAndRepeatedParameters) {
  auto unknown = http::parse_query("a=1&colour=blue&size=2", {"a"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::bad_request);
  ASSERT_EQ(unknown.error().fields.size(), 2u);
  EXPECT_EQ(unknown.error().fields[0].field, "colour");
  auto repeated = http::parse_query("a=1&a=2", {"a"});
  ASSERT_FALSE(repeated);
  EXPECT_EQ(repeated.error().fields[0].field, "a");
  EXPECT_FALSE(http::parse_query("a=%zz", {"a"}));
}

}  // namespace
}  // namespace liftoff

namespace liftoff::http {
namespace {

TEST(Query, ATimeParameterIsParsedOrNamedAsInvalid) {
  QueryParams query{{"since", "2026-11-27T12:00:00Z"}, {"until", "tomorrow"}};
  auto since = time_param(query, "since");
  ASSERT_TRUE(since);
  ASSERT_TRUE(since->has_value());
  EXPECT_EQ(**since, *core::parse_rfc3339("2026-11-27T12:00:00Z"));
  auto absent = time_param(query, "before");
  ASSERT_TRUE(absent);
  EXPECT_FALSE(absent->has_value());
  auto bad = time_param(query, "until");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::bad_request);
  ASSERT_EQ(bad.error().fields.size(), 1u);
  EXPECT_EQ(bad.error().fields.front().field, "until");
}

}  // namespace
}  // namespace liftoff::http
