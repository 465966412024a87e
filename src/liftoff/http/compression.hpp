#pragma once
// Response compression (RFC 9110 8.4, 12.5.3): gzip (zlib) and zstd (libzstd), chosen from the
// request's Accept-Encoding. The server compresses a response after its handler (see
// Server's compress_response): only bodies worth it, of compressible types, without a strong ETag.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace liftoff::http {

enum class Encoding { identity, gzip, zstd };

[[nodiscard]] std::string_view to_string(Encoding encoding);

// The best encoding the client accepts: the highest q-value among gzip and zstd (zstd on a tie;
// `*` stands for each not named), identity when neither is acceptable or the header is absent.
[[nodiscard]] Encoding choose_encoding(std::string_view accept_encoding);

// `body` in `encoding` (gzip: RFC 1952; zstd: RFC 8878 frame), at a fast level: a response is
// compressed on the request's own thread. nullopt when the library fails (then send it as is).
[[nodiscard]] std::optional<std::string> compress(Encoding encoding, std::string_view body);

// Whether a response of `content_type` is worth compressing (JSON, problem+json, ndjson, plain
// text, HTML, JavaScript, CSS, SVG).
[[nodiscard]] bool compressible(std::string_view content_type);

// Bodies smaller than this go as they are: below it compression saves less than it costs.
inline constexpr std::size_t kMinCompressedBytes = 1024;

}  // namespace liftoff::http
