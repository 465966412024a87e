#include "liftoff/core/metrics.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <sstream>
#include <stdexcept>

#include "liftoff/core/log.hpp"

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

// A spawned task that ends by an exception is logged with the exception's text and counted; one
// that ends normally is neither (background tasks used to log only "... failed").
TEST(Failures, ATaskThatThrowsIsLoggedWithItsTextAndCounted) {
  std::ostringstream out;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out)));
  Registry r;
  auto& failures = r.counter("background_failures_total", "Failures", "task=\"test\"");
  boost::asio::io_context io;
  boost::asio::co_spawn(
      io, []() -> boost::asio::awaitable<void> { throw std::runtime_error("the disk is a lie"); },
      failure_handler("rewriting", &failures));
  boost::asio::co_spawn(
      io, []() -> boost::asio::awaitable<void> { co_return; }, failure_handler("idle", &failures));
  io.run();
  spdlog::set_default_logger(previous);
  EXPECT_EQ(failures.value(), 1u);
  EXPECT_NE(out.str().find("rewriting failed: the disk is a lie"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("idle"), std::string::npos);
}

}  // namespace
}  // namespace liftoff::core
