#include "liftoff/webhooks/signature.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <array>
#include <stdexcept>

namespace liftoff::webhooks {
namespace {

constexpr std::size_t kSecretBytes = 32;
constexpr std::size_t kMinSecretBytes = 24;
constexpr std::size_t kMaxSecretBytes = 64;

std::string base64(std::string_view bytes) {
  constexpr int kVariant = sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_encoded_len(bytes.size(), kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), kVariant);
  out.resize(out.size() - 1);  // the terminating NUL sodium counts
  return out;
}

}  // namespace

std::string generate_secret() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
  std::array<unsigned char, kSecretBytes> key{};
  randombytes_buf(key.data(), key.size());
  return std::string(kSecretPrefix) +
         base64(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
}

std::optional<std::string> secret_key(std::string_view secret) {
  if (!secret.starts_with(kSecretPrefix)) return std::nullopt;
  auto encoded = secret.substr(kSecretPrefix.size());
  std::string key(kMaxSecretBytes + 1, '\0');
  std::size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(key.data()), key.size(), encoded.data(),
                        encoded.size(), nullptr, &length, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != encoded.data() + encoded.size() || length < kMinSecretBytes ||
      length > kMaxSecretBytes)
    return std::nullopt;
  key.resize(length);
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
  return "v1," + base64(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

}  // namespace liftoff::webhooks
