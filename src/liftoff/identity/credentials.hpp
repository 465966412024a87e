#pragma once
// Rules for what users type: email normalization and validation, the password policy, and session
// tokens, API keys and invitation tokens (256-bit random, shown once, stored only as a SHA-256
// digest).
#include <optional>
#include <string>
#include <string_view>

#include "liftoff/core/error.hpp"

namespace liftoff::identity {

// Trimmed and lower-cased; nullopt when it is not a plausible address (one '@', a dotted domain,
// no spaces or control characters, at most 254 bytes).
[[nodiscard]] std::optional<std::string> normalize_email(std::string_view email);

inline constexpr std::size_t kMaxNameLength = 200;  // code points

// nullopt when acceptable as a display name (a user's, an organization's, an API key's): 1 to
// kMaxNameLength characters; otherwise why not.
[[nodiscard]] std::optional<std::string> name_problem(std::string_view name);

inline constexpr std::size_t kMinPasswordLength = 12;    // code points
inline constexpr std::size_t kMaxPasswordLength = 1024;  // code points

// nullopt when acceptable; otherwise why not (for the `password` field of a 422).
[[nodiscard]] std::optional<std::string> password_problem(std::string_view password);

// True when `password` (case-insensitively) is on the shipped list of common passwords.
[[nodiscard]] bool is_common_password(std::string_view password);

// Bearer secrets are a recognizable prefix + 43 base64url characters (32 random bytes).
inline constexpr std::string_view kSessionTokenPrefix = "ls_";
inline constexpr std::string_view kApiKeyPrefix = "lk_";
inline constexpr std::string_view kInvitationTokenPrefix = "li_";
inline constexpr std::string_view kStreamTicketPrefix = "lt_";
inline constexpr std::size_t kTokenRandomChars = 43;

[[nodiscard]] std::string new_token(std::string_view prefix);
[[nodiscard]] inline std::string new_session_token() {
  return new_token(kSessionTokenPrefix);
}

// True when `token` has the shape new_token(prefix) gives (checked before any lookup).
[[nodiscard]] bool token_shaped(std::string_view token, std::string_view prefix);

// SHA-256 of the token: what the database stores and looks up by.
[[nodiscard]] std::string token_digest(std::string_view token);

// A bearer credential as the server keeps it past the request that showed it (an event stream
// checks access again with it): what it is and its digest, never the token itself.
struct Credential {
  enum class Kind { session, api_key };
  Kind kind = Kind::session;
  std::string digest;
};
// The credential `token` would be; unauthenticated when it has the shape of neither a session
// token nor an API key.
[[nodiscard]] Result<Credential> credential_of(std::string_view token);

}  // namespace liftoff::identity
