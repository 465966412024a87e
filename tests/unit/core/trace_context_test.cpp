#include "liftoff/core/trace_context.hpp"

#include <gtest/gtest.h>

#include <set>

namespace liftoff::core {
namespace {

constexpr std::string_view kExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceContext, ReadsAndWritesTheSpecificationsExample) {
  auto parsed = parse_traceparent(kExample);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parsed->span_id_hex(), "00f067aa0ba902b7");
  EXPECT_TRUE(parsed->sampled());
  EXPECT_EQ(parsed->traceparent(), kExample);
}

TEST(TraceContext, MalformedParentsAreNoParent) {
  for (std::string_view bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",    // short
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // 00 is 55 exactly
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero span id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   // not hex
           "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // later, no '-'
       }) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
  // A later version is read by its first 55 characters.
  auto later = parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what");
  ASSERT_TRUE(later);
  EXPECT_EQ(later->trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(TraceContext, TracestateWithinTheLimitsIsKept) {
  EXPECT_TRUE(valid_tracestate("congo=t61rcWkgMzE"));
  EXPECT_TRUE(valid_tracestate("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE ,,"));
  EXPECT_TRUE(valid_tracestate("fw529a3039@dt=mYWY2MmRh"));
  EXPECT_TRUE(valid_tracestate(""));
  EXPECT_FALSE(valid_tracestate("Congo=x"));  // upper-case key
  EXPECT_FALSE(valid_tracestate("congo"));    // no value
  EXPECT_FALSE(valid_tracestate("congo=a=b"));
  EXPECT_FALSE(valid_tracestate(std::string(513, 'a')));
  std::string many;
  for (int i = 0; i < 33; ++i) many += "k" + std::to_string(i) + "=v,";
  EXPECT_FALSE(valid_tracestate(many));
}

TEST(TraceContext, ASpanContinuesItsParentsTraceAndDecision) {
  TraceSampler never(0.0);
  TraceSampler always(1.0);
  auto parent = parse_traceparent(kExample);
  auto span = server_span(parent, never);
  EXPECT_EQ(span.trace_id, parent->trace_id);
  EXPECT_NE(span.span_id, parent->span_id);
  EXPECT_TRUE(span.sampled()) << "the parent sampled it";
  auto unsampled = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  EXPECT_FALSE(server_span(unsampled, always).sampled()) << "the parent did not";

  auto fresh = server_span(std::nullopt, always);
  EXPECT_NE(fresh.trace_id, parent->trace_id);
  EXPECT_TRUE(fresh.sampled());
  EXPECT_TRUE(fresh.flags & TraceContext::kRandom);
  EXPECT_FALSE(server_span(std::nullopt, never).sampled());
  EXPECT_EQ(parse_traceparent(fresh.traceparent())->trace_id, fresh.trace_id);
}

TEST(TraceContext, NewTracesAreSampledAtTheRatio) {
  TraceSampler tenth(0.1);
  int sampled = 0;
  std::set<TraceId> ids;
  for (int i = 0; i < 20000; ++i) {
    auto id = new_trace_id();
    ids.insert(id);
    sampled += tenth.sample_new(id) ? 1 : 0;
  }
  EXPECT_EQ(ids.size(), 20000u);
  // 2,000 expected; the binomial's standard deviation is 42: ±300 is 7 of them.
  EXPECT_NEAR(sampled, 2000, 300);
  // The decision is the id's: the same id is sampled alike everywhere.
  TraceId low{};
  low[15] = 1;
  TraceId high{};
  high.fill(0xff);
  EXPECT_TRUE(tenth.sample_new(low));
  EXPECT_FALSE(tenth.sample_new(high));
}

}  // namespace
}  // namespace liftoff::core
