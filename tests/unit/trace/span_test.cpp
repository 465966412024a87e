#include "liftoff/trace/span.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace liftoff::trace {
namespace {

class Collected final : public Recorder {
 public:
  void record(Span span) override { spans.push_back(std::move(span)); }
  std::vector<Span> spans;
};

Context sampled_context(Recorder* recorder) {
  Context context;
  context.span.trace_id = core::new_trace_id();
  context.span.span_id = core::new_span_id();
  context.span.flags = core::TraceContext::kSampled;
  context.trace_state = "congo=t61rcWkgMzE";
  context.recorder = recorder;
  return context;
}

TEST(ActiveSpan, UnderASampledContextIsRecordedOnceAsItsChild) {
  Collected collected;
  auto parent = sampled_context(&collected);
  {
    ActiveSpan span(parent, "records.get", Span::Kind::client);
    ASSERT_TRUE(span.recording());
    span.set("db.response.returned_rows", std::int64_t{1});
    // Its children hang under it, in the same trace.
    EXPECT_EQ(span.context().span.trace_id, parent.span.trace_id);
    EXPECT_NE(span.context().span.span_id, parent.span.span_id);
    ActiveSpan child(span.context(), "liftoff.commit", Span::Kind::client);
    child.fail("the statement failed");
  }
  ASSERT_EQ(collected.spans.size(), 2U);
  const auto& child = collected.spans[0];
  const auto& span = collected.spans[1];
  EXPECT_EQ(span.name, "records.get");
  EXPECT_EQ(span.kind, Span::Kind::client);
  EXPECT_EQ(span.trace_id, parent.span.trace_id);
  EXPECT_EQ(span.parent_span_id, parent.span.span_id);
  EXPECT_EQ(span.trace_state, "congo=t61rcWkgMzE");
  EXPECT_LE(span.start_unix_nano, span.end_unix_nano);
  EXPECT_GT(span.start_unix_nano, 1'700'000'000'000'000'000ULL);  // wall-clock nanoseconds
  ASSERT_EQ(span.attributes.size(), 1U);
  EXPECT_EQ(std::get<std::int64_t>(span.attributes[0].value), 1);
  EXPECT_FALSE(span.error);
  EXPECT_EQ(child.parent_span_id, span.span_id);
  EXPECT_TRUE(child.error);
  EXPECT_EQ(child.status_message, "the statement failed");
}

TEST(ActiveSpan, UnsampledOrWithoutARecorderRecordsNothingButKeepsTheTrace) {
  Collected collected;
  auto unsampled = sampled_context(&collected);
  unsampled.span.flags = 0;
  auto no_recorder = sampled_context(nullptr);
  for (const auto& parent : {unsampled, no_recorder}) {
    ActiveSpan span(parent, "records.get", Span::Kind::client);
    EXPECT_FALSE(span.recording());
    span.set("ignored", true);
    span.fail("ignored");
    // What it passes on names the parent's span: the trace goes on without a gap.
    EXPECT_EQ(span.context().span.span_id, parent.span.span_id);
    EXPECT_EQ(span.context().span.trace_id, parent.span.trace_id);
  }
  EXPECT_TRUE(collected.spans.empty());
  ActiveSpan none;
  EXPECT_FALSE(none.recording());
}

TEST(ActiveSpan, ARootIsRecordedWithoutAParentAndAlwaysNamesASpanToPassOn) {
  Collected collected;
  auto root = sampled_context(&collected);
  root.span.span_id = {};
  {
    ActiveSpan span(root, "job webhooks.dispatch", Span::Kind::consumer);
    EXPECT_TRUE(core::parse_traceparent(span.context().span.traceparent()));
  }
  ASSERT_EQ(collected.spans.size(), 1U);
  EXPECT_EQ(collected.spans[0].parent_span_id, core::SpanId{});
  // Unsampled (a periodic job's new trace, most of the time): what goes on is still a valid
  // traceparent, which a receiver would refuse with an all-zero span id.
  root.span.flags = 0;
  ActiveSpan unsampled(root, "job webhooks.dispatch", Span::Kind::consumer);
  EXPECT_FALSE(unsampled.recording());
  auto passed_on = core::parse_traceparent(unsampled.context().span.traceparent());
  ASSERT_TRUE(passed_on);
  EXPECT_EQ(passed_on->trace_id, root.span.trace_id);
  EXPECT_FALSE(passed_on->sampled());
}

TEST(ActiveSpan, AMovedSpanIsRecordedOnceByItsLastOwner) {
  Collected collected;
  auto parent = sampled_context(&collected);
  ActiveSpan first(parent, "a", Span::Kind::internal);
  ActiveSpan second(std::move(first));
  first.end();  // NOLINT(bugprone-use-after-move): a moved-from span is inert
  EXPECT_TRUE(collected.spans.empty());
  ActiveSpan third(parent, "b", Span::Kind::internal);
  third = std::move(second);  // "b" ends as it is replaced
  ASSERT_EQ(collected.spans.size(), 1U);
  EXPECT_EQ(collected.spans[0].name, "b");
  third.end();
  third.end();
  ASSERT_EQ(collected.spans.size(), 2U);
  EXPECT_EQ(collected.spans[1].name, "a");
}

TEST(PropagationHeaders, PassTheSpanAndItsTracestateOn) {
  Context none;
  EXPECT_TRUE(propagation_headers(none).empty());
  auto context = sampled_context(nullptr);
  auto headers = propagation_headers(context);
  ASSERT_EQ(headers.size(), 2U);
  EXPECT_EQ(headers[0].first, "traceparent");
  EXPECT_EQ(headers[0].second, context.span.traceparent());
  EXPECT_EQ(headers[1], (std::pair<std::string, std::string>{"tracestate", "congo=t61rcWkgMzE"}));
  context.trace_state.clear();
  EXPECT_EQ(propagation_headers(context).size(), 1U);
}

}  // namespace
}  // namespace liftoff::trace
