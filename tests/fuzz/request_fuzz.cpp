// Fuzz target: bytes -> Beast request parser (with the server's limits) -> Boost.URL target parsing
// -> Router. Built with libFuzzer under the `fuzz` preset; in every other build it is linked with
// replay_main.cpp and replays the checked-in corpus as a unit test.
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/parse.hpp>
#include <cstddef>
#include <cstdint>

#include "liftoff/http/router.hpp"

namespace {
using namespace liftoff;

const http::Router& router() {
  static const http::Router r = [] {
    http::Router router;
    // Never called: the fuzzer only routes. (Not a coroutine: clang 14 cannot instrument those.)
    auto noop = [](http::RequestContext&) { return boost::asio::awaitable<http::Response>{}; };
    for (const char* p : {"/healthz", "/readyz", "/metrics", "/v1/orgs/{org}",
                          "/v1/orgs/{org}/members/{user}", "/v1/orgs/mine"}) {
      router.add(http::Verb::get, p, noop);
    }
    router.add(http::Verb::post, "/v1/orgs", noop);
    return router;
  }();
  return r;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace beast_http = boost::beast::http;
  beast_http::request_parser<beast_http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t offset = 0;
  while (offset < size && !parser.is_done()) {
    auto used = parser.put(boost::asio::buffer(data + offset, size - offset), ec);
    if (ec == beast_http::error::need_more) break;
    if (ec || used == 0) return 0;
    offset += used;
  }
  if (!parser.is_header_done()) return 0;
  auto target = boost::urls::parse_origin_form(parser.get().target());
  if (!target) return 0;
  std::vector<std::string> segments;
  for (auto s : target->segments()) segments.push_back(s);
  auto outcome = router().match(parser.get().method(), segments);
  if (auto* m = std::get_if<http::Router::Match>(&outcome)) {
    for (const auto& [name, value] : m->params) {
      if (name.empty() || value.empty()) __builtin_trap();  // a parameter is never empty
    }
  }
  return 0;
}
