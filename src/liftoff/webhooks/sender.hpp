#pragma once
// Sends one webhook: an HTTP(S) POST to an org's endpoint, bounded in time and in what it reads
// back. The host is resolved, every address it resolves to is checked (address.hpp), and only a
// checked address is connected to; redirects are not followed (a 3xx is a failed delivery). TLS
// verifies the peer's certificate against the system's CA store and the URL's host name (SNI).
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "liftoff/core/error.hpp"

namespace liftoff::webhooks {

// Where a webhook goes.
struct Target {
  bool tls = false;
  std::string host;  // a name, or an IP address (without brackets)
  std::uint16_t port = 0;
  std::string path;  // path and query; "/" at least
};

// The target of `url`; a 422 naming `field` unless it is an absolute http or https URL of at most
// 2,000 characters with a host, and without user info or fragment. With `allow_private` false, a
// host given as an address must be a public one (a name is checked when it is resolved).
[[nodiscard]] Result<Target> parse_target(std::string_view url, bool allow_private,
                                          std::string_view field = "url");

struct SenderOptions {
  bool allow_private = false;  // loopback and private addresses too (tests, on-premise)
  std::chrono::milliseconds timeout{10'000};  // the whole exchange: resolve, connect, TLS, answer
  std::size_t excerpt = 1024;                 // bytes of the answer's body kept
  std::size_t max_response = 64 * 1024;       // bytes of the body read at most
  std::string ca_file;                        // PEM of CAs trusted besides the system's (tests)
};

struct Post {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // JSON
};

struct Reply {
  std::optional<int> status;  // the HTTP status the peer answered, if it answered
  std::string error;          // why it failed; empty when the peer answered 2xx
  std::string excerpt;        // the start of the answer's body
  std::chrono::milliseconds duration{0};
  [[nodiscard]] bool delivered() const { return error.empty(); }
};

class Sender {
 public:
  // A connection kept open between posts to one endpoint (a delivery job's events, in order):
  // reused while the peer keeps it alive, made again when the peer closed it or the URL's origin
  // changed. Used by one coroutine at a time.
  class Connection {
   public:
    Connection();
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

   private:
    friend class Sender;
    struct State;
    std::unique_ptr<State> state_;
  };

  explicit Sender(SenderOptions options);
  ~Sender();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // Never throws; every failure is in the reply. With `keep`, on that connection (and left open
  // when the peer allows); without, on a connection of its own, closed after the answer.
  [[nodiscard]] boost::asio::awaitable<Reply> post(const Post& post, Connection* keep = nullptr);

  [[nodiscard]] const SenderOptions& options() const { return options_; }

 private:
  struct Tls;
  // Resolves, checks the addresses, connects (and for https, handshakes) into `connection`; on
  // failure `reply.error` says why and `connection` stays closed.
  boost::asio::awaitable<void> connect(const Target& target,
                                       std::chrono::steady_clock::time_point deadline,
                                       Connection::State& connection, Reply& reply);
  SenderOptions options_;
  std::unique_ptr<Tls> tls_;
};

}  // namespace liftoff::webhooks
