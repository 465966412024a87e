#include "liftoff/identity/credentials.hpp"

#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <unordered_set>

#include "liftoff/core/text.hpp"

namespace liftoff::identity {
namespace {

// The list is compiled in (see cmake: data/common-passwords.txt -> common_passwords.inc).
const std::unordered_set<std::string>& common_passwords() {
  static const std::unordered_set<std::string> kSet = [] {
    static constexpr std::string_view kText =
#include "common_passwords.inc"
        ;
    std::unordered_set<std::string> set;
    std::size_t pos = 0;
    while (pos < kText.size()) {
      auto end = kText.find('\n', pos);
      if (end == std::string_view::npos) end = kText.size();
      auto line = kText.substr(pos, end - pos);
      if (!line.empty() && line.front() != '#') set.emplace(line);
      pos = end + 1;
    }
    return set;
  }();
  return kSet;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(c < 0x80 ? std::tolower(c) : c); });
  return out;
}

// libsodium must be initialized before its random generator is used; idempotent and thread-safe.
void ensure_sodium() {
  static const int kInitialized = sodium_init();
  (void)kInitialized;
}

}  // namespace

std::optional<std::string> normalize_email(std::string_view email) {
  while (!email.empty() && (email.front() == ' ' || email.front() == '\t')) email.remove_prefix(1);
  while (!email.empty() && (email.back() == ' ' || email.back() == '\t')) email.remove_suffix(1);
  if (email.empty() || email.size() > 254 || !core::valid_utf8(email)) return std::nullopt;
  auto at = email.find('@');
  if (at == std::string_view::npos || at == 0 || email.find('@', at + 1) != std::string_view::npos)
    return std::nullopt;
  auto local = email.substr(0, at);
  auto domain = email.substr(at + 1);
  if (local.size() > 64 || domain.size() < 3) return std::nullopt;
  for (unsigned char c : email) {
    if (c <= 0x20 || c == 0x7F || c == '"' || c == '(' || c == ')' || c == ',' || c == ':' ||
        c == ';' || c == '<' || c == '>' || c == '[' || c == ']' || c == '\\') {
      return std::nullopt;
    }
  }
  auto dot = domain.find('.');
  if (dot == std::string_view::npos || dot == 0 || domain.back() == '.' ||
      domain.find("..") != std::string_view::npos) {
    return std::nullopt;
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return std::nullopt;
  return lower_ascii(email);
}

bool is_common_password(std::string_view password) {
  return common_passwords().contains(lower_ascii(password));
}

std::optional<std::string> password_problem(std::string_view password) {
  if (!core::valid_utf8(password)) return "must be valid UTF-8";
  auto length = core::utf8_length(password);
  if (length < kMinPasswordLength)
    return "must be at least " + std::to_string(kMinPasswordLength) + " characters";
  if (length > kMaxPasswordLength)
    return "must be at most " + std::to_string(kMaxPasswordLength) + " characters";
  if (is_common_password(password)) return "is too common; choose another";
  return std::nullopt;
}

std::optional<std::string> name_problem(std::string_view name) {
  auto length = core::utf8_length(name);
  if (length == 0 || length > kMaxNameLength)
    return "must be 1 to " + std::to_string(kMaxNameLength) + " characters";
  return std::nullopt;
}

std::string new_token(std::string_view prefix) {
  ensure_sodium();
  unsigned char raw[32];
  randombytes_buf(raw, sizeof(raw));
  auto encoded = core::base64url(std::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
  sodium_memzero(raw, sizeof(raw));
  return std::string(prefix) + encoded;
}

bool token_shaped(std::string_view token, std::string_view prefix) {
  if (token.size() != prefix.size() + kTokenRandomChars || !token.starts_with(prefix)) return false;
  return std::all_of(
      token.begin() + static_cast<std::ptrdiff_t>(prefix.size()), token.end(),
      [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

std::string token_digest(std::string_view token) {
  std::string digest(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(digest.data()),
                     reinterpret_cast<const unsigned char*>(token.data()), token.size());
  return digest;
}

Result<Credential> credential_of(std::string_view token) {
  if (token_shaped(token, kSessionTokenPrefix))
    return Credential{Credential::Kind::session, token_digest(token)};
  if (token_shaped(token, kApiKeyPrefix))
    return Credential{Credential::Kind::api_key, token_digest(token)};
  return make_error(Errc::unauthenticated, "invalid or expired credentials");
}

}  // namespace liftoff::identity
