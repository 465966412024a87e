#pragma once
// Signing webhook deliveries the Standard Webhooks way (https://www.standardwebhooks.com): the
// receiver recomputes HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>" with the
// endpoint's secret and compares it with each entry of `webhook-signature`. Secrets are shown to
// users as "whsec_" + base64 of 32 random bytes (the spec allows 24 to 64).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace liftoff::webhooks {

inline constexpr std::string_view kSecretPrefix = "whsec_";

// A new secret, serialized ("whsec_...").
[[nodiscard]] std::string generate_secret();

// The key bytes of a serialized secret; nullopt unless it is "whsec_" + standard base64 of 24-64
// bytes.
[[nodiscard]] std::optional<std::string> secret_key(std::string_view secret);

// One entry of the `webhook-signature` header: "v1," + base64(HMAC-SHA256(key, id.timestamp.body)).
[[nodiscard]] std::string sign(std::string_view key, std::string_view message_id,
                               std::int64_t timestamp, std::string_view body);

}  // namespace liftoff::webhooks
