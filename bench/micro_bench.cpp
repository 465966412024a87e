// Micro-benchmarks of hot-path pieces (Google Benchmark): routing, problem+json, parameter
// encoding, what an unsampled request pays for tracing and per-tenant metrics, and rendering
// /metrics with 10,000 organizations active.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "liftoff/core/metrics.hpp"
#include "liftoff/core/tenant_tally.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/http/router.hpp"
#include "liftoff/trace/span.hpp"

namespace {
using namespace liftoff;

http::Handler noop() {
  return [](http::RequestContext&) -> boost::asio::awaitable<http::Response> {
    co_return http::Response{};
  };
}

void BM_RouterMatch(benchmark::State& state) {
  http::Router router;
  for (const char* p :
       {"/healthz", "/readyz", "/metrics", "/v1/me", "/v1/orgs", "/v1/orgs/{org}",
        "/v1/orgs/{org}/members", "/v1/orgs/{org}/members/{user}", "/v1/orgs/{org}/audit",
        "/v1/orgs/{org}/collections/{c}/records", "/v1/orgs/{org}/collections/{c}/records/{id}"}) {
    router.add(http::Verb::get, p, noop());
  }
  std::vector<std::string> path = {"v1",    "orgs",    "o_123", "collections",
                                   "tasks", "records", "r_456"};
  for (auto _ : state) benchmark::DoNotOptimize(router.match(http::Verb::get, path));
}
BENCHMARK(BM_RouterMatch);

void BM_ProblemResponse(benchmark::State& state) {
  auto error = make_error(Errc::not_found, "no such record");
  for (auto _ : state)
    benchmark::DoNotOptimize(http::problem_response(error, {"0123456789abcdef01234567"}));
}
BENCHMARK(BM_ProblemResponse);

void BM_EncodeParams(benchmark::State& state) {
  for (auto _ : state) {
    db::Params p(std::int64_t{42}, std::string("hello world"), true, db::Json{R"({"a":1})"});
    benchmark::DoNotOptimize(p.values());
  }
}
BENCHMARK(BM_EncodeParams);
// Organization ids as they look in labels.
std::vector<std::string> org_ids(int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(fmt::format("0190b5b0-0000-7000-8000-{:012d}", i));
  return ids;
}

// What an unsampled request pays for its spans: the request's own is made by the server either way
// (it names the trace); its statements' spans and its session cache lookup, from a context that is
// not sampled, record nothing. Three statements and one lookup per iteration.
void BM_UnsampledSpans(benchmark::State& state) {
  trace::Context unsampled;  // not sampled, no recorder
  for (auto _ : state) {
    trace::CacheLookup lookup(unsampled, "session");
    lookup.hit(true);
    for (int i = 0; i < 3; ++i) {
      trace::ActiveSpan statement(unsampled, "records.list", trace::Span::Kind::client);
      benchmark::DoNotOptimize(statement.recording());
    }
  }
}
BENCHMARK(BM_UnsampledSpans);

// One request counted for its organization (core::TenantTally as `liftoff serve` sizes it: 256
// tracked per worker, 10 shown), with Arg(0) organizations taking turns: within what a worker
// tracks (100), and far beyond it (10,000: every request replaces the least counted).
void BM_TenantTallyRecord(benchmark::State& state) {
  core::TenantTally tally(256, 10, 1);
  const auto orgs = org_ids(static_cast<int>(state.range(0)));
  std::size_t i = 0;
  for (auto _ : state) tally.record(orgs[i++ % orgs.size()], false, 0.002, 0.001);
}
BENCHMARK(BM_TenantTallyRecord)->Arg(100)->Arg(10'000);

// The /metrics body of a serving process with 10,000 organizations active: 60 routes by status
// class with their latency histograms, and the tenant families (each of the 10,000 made requests,
// on two workers). bytes: the body's size.
void BM_MetricsRender10000Orgs(benchmark::State& state) {
  core::Registry registry;
  for (int route = 0; route < 60; ++route) {
    const auto label = fmt::format(R"(route="/v1/route/{}")", route);
    for (const char* klass : {"1xx", "2xx", "3xx", "4xx", "5xx"}) {
      registry
          .counter("http_requests_total", "HTTP requests by route and status class",
                   label + ",class=\"" + klass + "\"")
          .inc();
    }
    registry
        .histogram("http_request_duration_seconds", "Time from request header to response", label)
        .observe_seconds(0.002);
  }
  core::TenantTally tally(256, 10, 2);
  const auto orgs = org_ids(10'000);
  for (std::size_t i = 0; i < 5 * orgs.size(); ++i)
    tally.record(orgs[(i * 7919) % orgs.size()], i % 97 == 0, 0.002, 0.001);
  registry.add_collector([&tally](std::string& out) { tally.render(out); });
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto body = registry.render();
    bytes = body.size();
    benchmark::DoNotOptimize(body);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_MetricsRender10000Orgs);
}  // namespace

BENCHMARK_MAIN();
