#include "liftoff/http/wire.hpp"

#include <algorithm>
#include <array>
#include <boost/beast/http/error.hpp>
#include <cctype>
#include <ctime>
#include <random>

#include "liftoff/http/compression.hpp"

namespace liftoff::http {
namespace beast = boost::beast;

bool valid_request_id(std::string_view id) {
  constexpr std::size_t kMaxRequestIdLength = 200;
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == ':';
  });
}

std::string generate_request_id() {
  thread_local const std::uint64_t kPrefix =
      (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  thread_local std::uint32_t counter = 0;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(24, '0');
  std::uint64_t p = kPrefix;
  for (int i = 15; i >= 0; --i, p >>= 4) id[static_cast<std::size_t>(i)] = kHex[p & 0xF];
  std::uint32_t c = ++counter;
  for (int i = 23; i >= 16; --i, c >>= 4) id[static_cast<std::size_t>(i)] = kHex[c & 0xF];
  return id;
}

namespace {
// RFC 9110 Date header, formatted once per second per thread.
std::string_view http_date() {
  thread_local std::time_t cached_second = 0;
  thread_local std::array<char, 64> buffer{};
  thread_local std::size_t length = 0;
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    length = std::strftime(buffer.data(), buffer.size(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return {buffer.data(), length};
}

}  // namespace

std::optional<Error> classify_read_error(const beast::error_code& ec) {
  if (ec == beast::error::timeout) {
    return make_error(Errc::request_timeout, "the request was not received in time");
  }
  if (ec == beast_http::error::header_limit) {
    return make_error(Errc::headers_too_large, "the request header block exceeds the limit");
  }
  if (ec == beast_http::error::body_limit) {
    return make_error(Errc::payload_too_large, "the request body exceeds the limit");
  }
  if (ec.category() == beast_http::make_error_code(beast_http::error::bad_method).category()) {
    if (ec == beast_http::error::end_of_stream) return std::nullopt;  // closed between requests
    if (ec == beast_http::error::partial_message) {
      return make_error(Errc::bad_request, "the connection closed before the request was complete");
    }
    return make_error(Errc::bad_request, "malformed request: " + ec.message());
  }
  return std::nullopt;  // I/O errors: reset, eof, aborted by shutdown
}

void serialize_response(const Response& res, std::string_view request_id, std::string& out) {
  out.clear();
  out.reserve(256 + res.body().size());
  out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(res.result_int());
  out += ' ';
  out += res.reason();
  out += "\r\n";
  for (const auto& field : res) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += "Date: ";
  out += http_date();
  if (!request_id.empty()) {
    out += "\r\nX-Request-Id: ";
    out += request_id;
  }
  out += "\r\n\r\n";
  out += res.body();
}

void add_vary(Response& res, std::string_view name) {
  auto present = res[beast_http::field::vary];
  if (present.empty()) {
    res.set(beast_http::field::vary, name);
    return;
  }
  std::string merged(present);
  merged += ", ";
  merged += name;
  res.set(beast_http::field::vary, merged);
}

void set_default_cache_control(const Request& req, Response& res) {
  if (res.find(beast_http::field::cache_control) != res.end()) return;
  bool read = req.method() == Verb::get || req.method() == Verb::head;
  res.set(beast_http::field::cache_control, read ? "private, no-cache" : "no-store");
}

void compress_response(const Request& req, Response& res) {
  if (res.body().size() < kMinCompressedBytes ||
      !compressible(res[beast_http::field::content_type]) ||
      res.find(beast_http::field::content_encoding) != res.end())
    return;
  auto etag = res[beast_http::field::etag];
  if (!etag.empty() && !etag.starts_with("W/")) return;
  add_vary(res, "Accept-Encoding");
  auto encoding = choose_encoding(req[beast_http::field::accept_encoding]);
  if (encoding == Encoding::identity) return;
  auto packed = compress(encoding, res.body());
  if (!packed || packed->size() >= res.body().size()) return;
  res.body() = std::move(*packed);
  res.set(beast_http::field::content_encoding, to_string(encoding));
  res.prepare_payload();
}

}  // namespace liftoff::http
