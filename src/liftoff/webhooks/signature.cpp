#include "liftoff/webhooks/signature.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <array>
#include <stdexcept>

#include "liftoff/core/text.hpp"

namespace liftoff::webhooks {
namespace {

constexpr std::size_t kSecretBytes = 32;
constexpr std::size_t kMinSecretBytes = 24;
constexpr std::size_t kMaxSecretBytes = 64;

}  // namespace

std::string generate_secret() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
  std::array<unsigned char, kSecretBytes> key{};
  randombytes_buf(key.data(), key.size());
  return std::string(kSecretPrefix) +
         core::base64(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
}

std::optional<std::string> secret_key(std::string_view secret) {
  if (!secret.starts_with(kSecretPrefix)) return std::nullopt;
  auto key = core::from_base64(secret.substr(kSecretPrefix.size()));
  if (!key || key->size() < kMinSecretBytes || key->size() > kMaxSecretBytes) return std::nullopt;
  return key;
}

std::string sign(std::string_view key, std::string_view message_id, std::int64_t timestamp,
                 std::string_view body) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()),
                              key.size());
  auto header = fmt::format("{}.{}.", message_id, timestamp);
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(header.data()),
                                header.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(body.data()),
                                body.size());
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
  crypto_auth_hmacsha256_final(&state, mac.data());
  return "v1," +
         core::base64(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

}  // namespace liftoff::webhooks
