#include "liftoff/webhooks/secret_box.hpp"

#include <sodium.h>

#include <array>
#include <stdexcept>

#include "liftoff/core/text.hpp"

namespace liftoff::webhooks {
namespace {

const unsigned char* bytes(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

void init_sodium() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
}

}  // namespace

static_assert(SecretBox::kKeyBytes == crypto_secretbox_KEYBYTES);

Result<SecretBox> SecretBox::from_base64(std::string_view key) {
  auto raw = core::from_base64(key);
  if (!raw || raw->size() != kKeyBytes) {
    return make_error(Errc::validation_failed,
                      "webhook_key must be standard base64 of 32 bytes (liftoff webhooks key "
                      "prints a new one)");
  }
  init_sodium();
  return SecretBox(std::move(*raw));
}

std::string SecretBox::generate_key() {
  init_sodium();
  std::array<unsigned char, kKeyBytes> key{};
  randombytes_buf(key.data(), key.size());
  return core::base64(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
}

std::string SecretBox::seal(std::string_view plain) const {
  std::string out(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plain.size(), '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES, bytes(plain), plain.size(), nonce,
                        bytes(key_));
  return out;
}

std::optional<std::string> SecretBox::open(std::string_view sealed) const {
  constexpr std::size_t kOverhead = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES;
  if (sealed.size() < kOverhead) return std::nullopt;
  std::string plain(sealed.size() - kOverhead, '\0');
  const auto* nonce = bytes(sealed);
  if (crypto_secretbox_open_easy(
          reinterpret_cast<unsigned char*>(plain.data()), nonce + crypto_secretbox_NONCEBYTES,
          sealed.size() - crypto_secretbox_NONCEBYTES, nonce, bytes(key_)) != 0)
    return std::nullopt;
  return plain;
}

}  // namespace liftoff::webhooks
