#pragma once
// An SMTP client (RFC 5321) on Asio: one message per connection to the relay the operator
// configured, bounded in time (one deadline for the whole exchange) and in what it reads back.
// With `starttls` (the default) the connection must be upgraded to TLS before anything else is
// said, and the server's certificate is verified against its host name; `tls` speaks TLS from the
// first byte (port 465); `none` is plain text, for a relay on loopback. AUTH PLAIN or LOGIN, as
// the server offers, when a username is configured.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"

namespace liftoff::mail {

enum class Security { starttls, tls, none };

// "starttls", "tls" or "none"; nullopt for anything else.
[[nodiscard]] std::optional<Security> parse_security(std::string_view text);

struct SmtpOptions {
  std::string host;  // empty: email is off
  std::uint16_t port = 587;
  Security security = Security::starttls;
  std::string username;  // empty: no AUTH
  std::string password;
  std::chrono::milliseconds timeout{30'000};  // the whole exchange, from resolving to QUIT
  std::string ca_file;                        // PEM of CAs trusted besides the system's
  std::string helo = "localhost";             // the name given in EHLO
};

struct Envelope {
  std::string from;             // the reverse path (MAIL FROM)
  std::vector<std::string> to;  // the recipients (RCPT TO)
  std::string message;          // RFC 5322 text (compose())
};

// How a send ended. `permanent` failures (the server answered 5xx) will fail again the same way;
// the others (4xx, network, timeout) may pass later.
struct Sent {
  std::string error;  // empty: the server accepted the message for delivery
  std::optional<int> code;
  bool permanent = false;
  [[nodiscard]] bool ok() const { return error.empty(); }
};

class SmtpClient {
 public:
  explicit SmtpClient(SmtpOptions options);
  ~SmtpClient();
  SmtpClient(const SmtpClient&) = delete;
  SmtpClient& operator=(const SmtpClient&) = delete;

  // Never throws; every failure is in the result.
  [[nodiscard]] boost::asio::awaitable<Sent> send(const Envelope& envelope);

  [[nodiscard]] const SmtpOptions& options() const { return options_; }

 private:
  struct Tls;
  SmtpOptions options_;
  std::unique_ptr<Tls> tls_;
};

}  // namespace liftoff::mail
