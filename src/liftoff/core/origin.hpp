#pragma once
// Web origins (RFC 6454; the Fetch standard's serialized origin), as browsers send them in the
// Origin header and as operators and org admins list the front ends they allow:
// scheme "://" host [":" port], nothing else, or "null" (an opaque origin: a sandboxed frame, a
// file:// page).
#include <optional>
#include <string>
#include <string_view>

namespace liftoff::core {

// What an origin may be at most, in bytes (a browser's are far shorter).
inline constexpr std::size_t kMaxOriginLength = 512;

// The canonical form of `text`: scheme and host lower-cased, the scheme's default port dropped
// (http 80, https 443, as browsers do), so that two spellings of one origin compare equal; "null"
// stays "null". nullopt when `text` is not an origin (a path, a query, user info, a trailing slash,
// spaces, a bad port, longer than kMaxOriginLength).
[[nodiscard]] std::optional<std::string> canonical_origin(std::string_view text);

// Whether `text` is an origin in its canonical form already (what browsers send), without
// allocating: canonical_origin(text) == text.
[[nodiscard]] bool is_canonical_origin(std::string_view text);

}  // namespace liftoff::core
