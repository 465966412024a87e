#include "liftoff/http/compression.hpp"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <cctype>
#include <charconv>

#include "liftoff/http/header_list.hpp"

namespace liftoff::http {
namespace {

using boost::beast::iequals;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view to_string(Encoding encoding) {
  switch (encoding) {
    case Encoding::gzip:
      return "gzip";
    case Encoding::zstd:
      return "zstd";
    case Encoding::identity:
      break;
  }
  return "identity";
}

Encoding choose_encoding(std::string_view header) {
  int gzip = -1, zstd = -1, any = -1;  // -1: not named
  for (const auto& element : list_elements(header)) {
    const auto& coding = element.value;
    int q = weight(element);
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
      gzip = std::max(gzip, q);
    } else if (iequals(coding, "zstd")) {
      zstd = std::max(zstd, q);
    } else if (coding == "*") {
      any = std::max(any, q);
    }
  }
  if (gzip < 0) gzip = any;
  if (zstd < 0) zstd = any;
  if (zstd > 0 && zstd >= gzip) return Encoding::zstd;
  if (gzip > 0) return Encoding::gzip;
  return Encoding::identity;
}

std::optional<std::string> compress(Encoding encoding, std::string_view body) {
  if (encoding == Encoding::zstd) {
    std::string out(ZSTD_compressBound(body.size()), '\0');
    auto n = ZSTD_compress(out.data(), out.size(), body.data(), body.size(), 1);
    if (ZSTD_isError(n)) return std::nullopt;
    out.resize(n);
    return out;
  }
  if (encoding != Encoding::gzip) return std::nullopt;
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer around the deflate stream.
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return std::nullopt;
  std::string out(deflateBound(&z, static_cast<uLong>(body.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
  z.avail_in = static_cast<uInt>(body.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  auto written = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return std::nullopt;
  out.resize(written);
  return out;
}

bool compressible(std::string_view content_type) {
  auto type = trim(content_type.substr(0, content_type.find(';')));
  return iequals(type, "application/json") || iequals(type, "application/problem+json") ||
         iequals(type, "application/x-ndjson") || iequals(type, "text/plain") ||
         iequals(type, "text/html") || iequals(type, "text/javascript") ||
         iequals(type, "text/css") || iequals(type, "image/svg+xml");
}

}  // namespace liftoff::http
