#pragma once
// A webhook receiver for tests: tests/support/webhook_receiver.py (Python's HTTP server, over HTTP
// or HTTPS) in a child process, which keeps what it receives; and the receiver's side of Standard
// Webhooks signatures, computed with OpenSSL (not the server's libsodium).
#include <boost/json/object.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace liftoff::testing {

class WebhookReceiver {
 public:
  struct Tls {
    std::filesystem::path cert;
    std::filesystem::path key;
  };
  // Starts one in `dir` (its port file and log go there); port() is 0 when it did not start.
  explicit WebhookReceiver(const std::filesystem::path& dir, const std::string& name,
                           std::optional<Tls> tls = std::nullopt);
  [[nodiscard]] unsigned short port() const { return port_; }
  // http://127.0.0.1:<port><path>, or with TLS https://localhost:<port><path> (the certificate's
  // name).
  [[nodiscard]] std::string url(const std::string& path) const;
  // What it received at paths starting with `prefix`, oldest first: {path, headers (lower-case
  // names), body, client_port (the same for requests on one connection)}.
  [[nodiscard]] std::vector<boost::json::object> received(const std::string& prefix) const;

 private:
  std::unique_ptr<Process> process_;
  unsigned short port_ = 0;
  bool tls_ = false;
};

// A self-signed certificate for "localhost" (cert.pem, key.pem in `dir`) made by openssl; false
// when it could not be made.
[[nodiscard]] bool make_certificate(const std::filesystem::path& dir);

// Whether one of the request's webhook-signature entries verifies with `secret` ("whsec_...").
[[nodiscard]] bool verifies(const boost::json::object& request, const std::string& secret);

}  // namespace liftoff::testing
