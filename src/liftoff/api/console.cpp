#include "liftoff/api/console.hpp"

#include <fmt/format.h>

#include <boost/beast/http/field.hpp>
#include <cstdint>
#include <string>

#include "liftoff/http/problem.hpp"

namespace liftoff::api {
namespace {
using http::beast_http::field;
using http::beast_http::status;

// The page runs only its own script and style and talks only to this origin; no one may frame it.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// A weak validator of the file's bytes (FNV-1a): weak, so the server may still compress it.
std::string weak_etag(std::string_view body) {
  std::uint64_t hash = 14695981039346656037ULL;
  for (unsigned char c : body) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return "W/\"" + fmt::format("{:016x}", hash) + "\"";
}
}  // namespace

void add_console_routes(http::Router& router) {
  for (const auto& file : kConsoleFiles) {
    router.add(http::Verb::get, file.path,
               [&file, etag = weak_etag(file.body)](
                   http::RequestContext& ctx) -> boost::asio::awaitable<http::Response> {
                 // Revalidated on every load (no-cache), answered 304 while unchanged: a new
                 // binary's console is never mixed with an old one's cached script.
                 http::Response res{status::not_modified, 11};
                 if (ctx.request[field::if_none_match] != etag) {
                   res = http::text_response(status::ok, std::string(file.body),
                                             std::string(file.content_type));
                 }
                 res.set(field::etag, etag);
                 res.set(field::cache_control, "no-cache");
                 res.set("Content-Security-Policy", kContentSecurityPolicy);
                 res.set("X-Content-Type-Options", "nosniff");
                 res.set("Referrer-Policy", "no-referrer");
                 co_return res;
               });
  }
}

}  // namespace liftoff::api
