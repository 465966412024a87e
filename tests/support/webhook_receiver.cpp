#include "support/webhook_receiver.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json/parse.hpp>

#include "support/http_client.hpp"

namespace liftoff::testing {
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::optional<std::string> decode_base64(const std::string& text) {
  std::string out(3 * text.size() / 4 + 3, '\0');
  int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                               reinterpret_cast<const unsigned char*>(text.data()),
                               static_cast<int>(text.size()));
  if (length < 0) return std::nullopt;
  auto padding = static_cast<int>(text.size() - text.find_last_not_of('=') - 1);
  out.resize(static_cast<std::size_t>(length - padding));
  return out;
}

// base64(HMAC-SHA256(key, text)).
std::string hmac_base64(const std::string& key, const std::string& text) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &length);
  std::string out(4 * ((length + 2) / 3) + 1, '\0');
  int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(length));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

}  // namespace

WebhookReceiver::WebhookReceiver(const fs::path& dir, const std::string& name,
                                 std::optional<Tls> tls)
    : tls_(tls.has_value()) {
  std::vector<std::string> args;
  if (tls) args.insert(args.end(), {"--tls", tls->cert.string(), tls->key.string()});
  auto peer = start_python_peer(dir, name, "webhook_receiver.py", args);
  process_ = std::move(peer.process);
  if (!peer.ports.empty()) port_ = peer.ports[0];
}

std::string WebhookReceiver::url(const std::string& path) const {
  return (tls_ ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(port_) + path;
}

std::vector<json::object> WebhookReceiver::received(const std::string& prefix) const {
  std::vector<json::object> out;
  if (tls_) return out;  // read through a plain receiver; the HTTPS one is for the sender's TLS
  auto response = http_request(port_, "GET", "/_received");
  if (!response || response->status != 200) return out;
  auto list = json::parse(response->body);
  for (const auto& item : list.as_array()) {
    const auto& request = item.as_object();
    if (std::string_view(request.at("path").as_string()).starts_with(prefix))
      out.push_back(request);
  }
  return out;
}

bool make_certificate(const fs::path& dir) {
  auto command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout '" +
      (dir / "key.pem").string() + "' -out '" + (dir / "cert.pem").string() + "' >/dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

bool verifies(const json::object& request, const std::string& secret) {
  const auto& headers = request.at("headers").as_object();
  if (!secret.starts_with("whsec_") || !headers.contains("webhook-signature")) return false;
  auto key = decode_base64(secret.substr(6));
  if (!key) return false;
  auto signed_text = std::string(headers.at("webhook-id").as_string()) + "." +
                     std::string(headers.at("webhook-timestamp").as_string()) + "." +
                     std::string(request.at("body").as_string());
  auto expected = "v1," + hmac_base64(*key, signed_text);
  std::string signatures(headers.at("webhook-signature").as_string());
  for (std::size_t start = 0; start < signatures.size();) {
    auto space = signatures.find(' ', start);
    if (signatures.substr(start, space == std::string::npos ? space : space - start) == expected)
      return true;
    if (space == std::string::npos) break;
    start = space + 1;
  }
  return false;
}

}  // namespace liftoff::testing
