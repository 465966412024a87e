#pragma once
// A real SMTP server for tests: tests/support/smtp_server.py (Debian's python3-aiosmtpd) in a child
// process, which keeps the messages it accepts and lists them, parsed by Python's email package.
#include <boost/json/object.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace liftoff::testing {

class SmtpServer {
 public:
  enum class Tls { none, starttls, implicit };
  struct Options {
    Tls tls = Tls::none;
    std::filesystem::path cert, key;  // with tls
    std::string auth;                 // "user:password": AUTH required
  };
  // Starts one in `dir` (its port file and log go there); port() is 0 when it did not start.
  SmtpServer(const std::filesystem::path& dir, const std::string& name, const Options& options);
  [[nodiscard]] unsigned short port() const { return port_; }
  // The messages accepted so far, oldest first: {mail_from, rcpt_tos, subject, from, to, headers,
  // content_type, text, html, tls, authenticated, defects}.
  [[nodiscard]] std::vector<boost::json::object> received() const;
  // received() once it holds at least `count` messages, or what it holds after `timeout`.
  [[nodiscard]] std::vector<boost::json::object> wait_for(
      std::size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

 private:
  std::unique_ptr<Process> process_;
  unsigned short port_ = 0;
  unsigned short listing_port_ = 0;
};

}  // namespace liftoff::testing
