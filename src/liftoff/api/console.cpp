#include "liftoff/api/console.hpp"

#include <fmt/format.h>

#include <boost/beast/http/field.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "liftoff/http/problem.hpp"

namespace liftoff::api {
namespace {
using http::beast_http::field;
using http::beast_http::status;

// The page runs only its own script and style and talks only to this origin; no one may frame it.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// The FNV-1a hash of `body`, in hex: the version of a file (its URL's ?v=) and its validator.
std::string version_of(std::string_view body) {
  std::uint64_t hash = 14695981039346656037ULL;
  for (unsigned char c : body) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", hash);
}

// One file as served: the page names each other file by a URL with its version (?v=), which
// browsers may keep for a year; the page itself is revalidated on every load (no-cache), so a new
// binary's page names new URLs and an old cached script is never run with it.
struct Served {
  std::string body;
  std::string_view content_type;
  std::string etag;  // weak: the server may still compress it
  // "v=<version>": the query of the URL the page names it by ("" for the page itself).
  std::string versioned;
};

std::vector<Served> served_files() {
  std::vector<Served> files;
  for (const auto& file : kConsoleFiles) {
    const auto version = version_of(file.body);
    files.push_back({std::string(file.body), file.content_type, "W/\"" + version + "\"",
                     file.path == "/console" ? "" : "v=" + version});
  }
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (!files[i].versioned.empty()) continue;
    auto& html = files[i].body;
    for (std::size_t j = 0; j < files.size(); ++j) {
      if (files[j].versioned.empty()) continue;
      const auto quoted = "\"" + std::string(kConsoleFiles[j].path) + "\"";
      for (auto at = html.find(quoted); at != std::string::npos; at = html.find(quoted, at + 1))
        html.insert(at + quoted.size() - 1, "?" + files[j].versioned);
    }
    files[i].etag = "W/\"" + version_of(html) + "\"";
  }
  return files;
}
}  // namespace

void add_console_routes(http::Router& router) {
  auto files = served_files();
  for (std::size_t i = 0; i < files.size(); ++i) {
    router.add(http::Verb::get, kConsoleFiles[i].path,
               [file = std::move(files[i])](
                   http::RequestContext& ctx) -> boost::asio::awaitable<http::Response> {
                 http::Response res{status::not_modified, 11};
                 if (ctx.request[field::if_none_match] != file.etag) {
                   res = http::text_response(status::ok, file.body, std::string(file.content_type));
                 }
                 res.set(field::etag, file.etag);
                 const bool immutable = !file.versioned.empty() && ctx.query == file.versioned;
                 res.set(field::cache_control,
                         immutable ? "public, max-age=31536000, immutable" : "no-cache");
                 res.set("Content-Security-Policy", kContentSecurityPolicy);
                 res.set("X-Content-Type-Options", "nosniff");
                 res.set("Referrer-Policy", "no-referrer");
                 co_return res;
               });
  }
}

}  // namespace liftoff::api
