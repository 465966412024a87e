#pragma once
// Webhook signing secrets at rest. A secret must be readable again to sign deliveries, so it cannot
// be hashed like a password or an API key: it is sealed (libsodium secretbox, XSalsa20-Poly1305)
// under a key the server holds and the database does not. A copy of the database alone yields no
// secret.
#include <optional>
#include <string>
#include <string_view>

#include "liftoff/core/error.hpp"

namespace liftoff::webhooks {

class SecretBox {
 public:
  static constexpr std::size_t kKeyBytes = 32;

  // The box for a key given as standard base64 of 32 bytes (webhook_key); a validation error
  // otherwise.
  [[nodiscard]] static Result<SecretBox> from_base64(std::string_view key);
  // A new random key, as base64: what an operator puts in webhook_key.
  [[nodiscard]] static std::string generate_key();

  // nonce || ciphertext of `plain`, a new random nonce each time.
  [[nodiscard]] std::string seal(std::string_view plain) const;
  // What seal() sealed under this key; nullopt for anything else (another key, altered bytes).
  [[nodiscard]] std::optional<std::string> open(std::string_view sealed) const;

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace liftoff::webhooks
