// Micro-benchmarks of hot-path pieces (Google Benchmark): routing, problem+json, parameter
// encoding.
#include <benchmark/benchmark.h>

#include "liftoff/db/value.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/http/router.hpp"

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
}  // namespace

BENCHMARK_MAIN();
