#pragma once
// Small text helpers every domain needs: UTF-8 checks and lengths, base64url, hex.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace liftoff::core {

// True when `s` is well-formed UTF-8 (no truncated or stray continuation bytes).
[[nodiscard]] bool valid_utf8(std::string_view s) noexcept;

// Characters (code points) in valid UTF-8: the bytes that start one.
[[nodiscard]] std::size_t utf8_length(std::string_view s) noexcept;

// URL-safe base64 without padding (RFC 4648 section 5), and back (nullopt when malformed).
[[nodiscard]] std::string base64url(std::string_view bytes);
[[nodiscard]] std::optional<std::string> from_base64url(std::string_view text);
// Standard base64 with padding (RFC 4648 section 4), and back (nullopt when malformed).
[[nodiscard]] std::string base64(std::string_view bytes);
[[nodiscard]] std::optional<std::string> from_base64(std::string_view text);

// Lower-case hexadecimal, two digits a byte.
[[nodiscard]] std::string hex(std::string_view bytes);

// `text` with & < > " ' escaped for HTML (element content and quoted attribute values).
[[nodiscard]] std::string escape_html(std::string_view text);

}  // namespace liftoff::core
