#pragma once
// The HTTP types handlers see. Handlers are coroutines that take a RequestContext and return a
// Response; errors are turned into problem+json by `problem_response` (one place, see problem.hpp).
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace liftoff::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Response = beast_http::response<beast_http::string_body>;
using Verb = beast_http::verb;
using Clock = std::chrono::steady_clock;

struct RequestContext {
  Request& request;
  std::string_view request_id;
  std::string_view route;  // the matched route template, e.g. "/v1/orgs/{org}"
  std::vector<std::pair<std::string_view, std::string>> params;  // decoded path parameters
  std::string_view query;                                        // raw query string, without '?'
  Clock::time_point received_at;
  // The client's IP address: the peer's, or, when the peer is a trusted proxy, the last address it
  // appended to X-Forwarded-For.
  std::string_view remote;

  [[nodiscard]] std::optional<std::string_view> param(std::string_view name) const {
    for (const auto& [k, v] : params) {
      if (k == name) return v;
    }
    return std::nullopt;
  }
};

using Handler = std::function<boost::asio::awaitable<Response>(RequestContext&)>;

}  // namespace liftoff::http
