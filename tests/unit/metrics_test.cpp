#include "liftoff/core/metrics.hpp"

#include <gtest/gtest.h>

namespace liftoff::core {
namespace {

TEST(Metrics, RendersCountersGaugesAndCumulativeHistograms) {
  Registry r;
  r.counter("requests_total", "Requests", "route=\"/a\"").inc(3);
  r.gauge("in_flight", "In flight").add(2);
  auto& h = r.histogram("latency_seconds", "Latency", "route=\"/a\"");
  h.observe(std::chrono::microseconds(50));  // <= 0.0001
  h.observe(std::chrono::milliseconds(3));   // <= 0.005
  h.observe(std::chrono::seconds(10));       // +Inf only
  auto text = r.render();
  EXPECT_NE(text.find("# TYPE requests_total counter\nrequests_total{route=\"/a\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("in_flight 2\n"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"/a\",le=\"0.0001\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"/a\",le=\"0.005\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"/a\",le=\"5\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_count{route=\"/a\"} 3\n"), std::string::npos);
}

TEST(Metrics, SameNameAndLabelsIsTheSameSeries) {
  Registry r;
  auto& a = r.counter("c", "h", "x=\"1\"");
  auto& b = r.counter("c", "h", "x=\"1\"");
  auto& other = r.counter("c", "h", "x=\"2\"");
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &other);
  EXPECT_THROW(r.gauge("c", "h"), std::logic_error);
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace liftoff::core
