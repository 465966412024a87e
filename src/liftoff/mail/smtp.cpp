#include "liftoff/mail/smtp.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>

#include "liftoff/core/text.hpp"
#include "liftoff/core/tls_client.hpp"
#include "liftoff/mail/message.hpp"

namespace liftoff::mail {
namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxReply = 64 * 1024;  // bytes of one reply, all its lines
constexpr std::size_t kMaxLines = 100;        // lines of one reply

struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // the text after each line's code
  [[nodiscard]] std::string text() const {
    std::string out;
    for (const auto& line : lines) {
      if (!out.empty()) out += ' ';
      out += line;
    }
    return out;
  }
};

// Whether `address` may go in a MAIL FROM or RCPT TO: printable, without brackets or spaces.
bool sane_address(std::string_view address) {
  if (address.empty() || address.size() > 254) return false;
  return std::all_of(address.begin(), address.end(),
                     [](unsigned char c) { return c > 0x20 && c < 0x7f && c != '<' && c != '>'; });
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// One SMTP conversation: a connection (plain, then perhaps TLS) and what it has read ahead.
class Session {
 public:
  Session(const SmtpOptions& options, asio::ssl::context& context, Clock::time_point deadline,
          Sent& sent)
      : options_(options), context_(context), deadline_(deadline), sent_(sent) {}

  // Resolves and connects (and for `tls`, handshakes); false with sent_ saying why.
  asio::awaitable<bool> connect() {
    auto executor = co_await asio::this_coro::executor;
    tcp::resolver resolver(executor);
    asio::steady_timer timer(executor, deadline_);
    auto resolving = resolver.async_resolve(options_.host, std::to_string(options_.port), kTuple);
    auto resolved = co_await (std::move(resolving) || timer.async_wait(kTuple));
    if (resolved.index() == 1) co_return timed_out();
    auto [resolve_error, results] = std::get<0>(std::move(resolved));
    if (resolve_error)
      co_return fail("cannot resolve " + options_.host + ": " + resolve_error.message());
    plain_.emplace(executor);
    plain_->expires_at(deadline_);
    auto [connect_error, endpoint] = co_await plain_->async_connect(results, kTuple);
    if (connect_error) {
      if (connect_error == beast::error::timeout) co_return timed_out();
      co_return fail("cannot connect to " + options_.host + ":" + std::to_string(options_.port) +
                     ": " + connect_error.message());
    }
    if (options_.security == Security::tls) {
      bool handshaken = co_await handshake();
      co_return handshaken;
    }
    co_return true;
  }

  // Reads one reply, all its lines; nullopt with sent_ saying why.
  asio::awaitable<std::optional<Reply>> reply() {
    Reply reply;
    for (;;) {
      auto [error, length] = co_await read_line();
      if (error) {
        if (error == beast::error::timeout)
          timed_out();
        else if (error == asio::error::not_found)
          fail("the server's reply is too long");
        else
          fail("the connection failed: " + error.message());
        co_return std::nullopt;
      }
      std::string_view line(buffer_.data(), length - 2);
      bool well_formed = line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                         std::isdigit(static_cast<unsigned char>(line[1])) &&
                         std::isdigit(static_cast<unsigned char>(line[2])) &&
                         (line.size() == 3 || line[3] == ' ' || line[3] == '-');
      if (!well_formed || reply.lines.size() == kMaxLines) {
        fail("the server's reply is malformed");
        co_return std::nullopt;
      }
      int code = std::stoi(std::string(line.substr(0, 3)));
      if (!reply.lines.empty() && code != reply.code) {
        fail("the server's reply is malformed");
        co_return std::nullopt;
      }
      reply.code = code;
      reply.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view{});
      bool last = line.size() == 3 || line[3] == ' ';
      buffer_.erase(0, length);
      if (last) co_return reply;
    }
  }

  // Sends `line` (CRLF added) and reads the reply; nullopt unless it is of class `expected`
  // (2 for 2xx, 3 for 3xx), with sent_ saying why.
  asio::awaitable<std::optional<Reply>> command(std::string line, int expected,
                                                std::string_view step) {
    line += "\r\n";
    if (!co_await write(line)) co_return std::nullopt;
    auto got = co_await expect(expected, step);
    co_return got;
  }

  // Reads a reply; nullopt unless it is of class `expected`, with sent_ saying why.
  asio::awaitable<std::optional<Reply>> expect(int expected, std::string_view step) {
    auto got = co_await reply();
    if (!got) co_return std::nullopt;
    if (got->code / 100 != expected) {
      sent_.code = got->code;
      sent_.permanent = got->code >= 500;
      fail("the server refused " + std::string(step) + ": " + std::to_string(got->code) + " " +
           got->text());
      co_return std::nullopt;
    }
    co_return got;
  }

  asio::awaitable<bool> write(std::string_view text) {
    boost::system::error_code error;
    if (tls_) {
      beast::get_lowest_layer(*tls_).expires_at(deadline_);
      std::tie(error, std::ignore) = co_await asio::async_write(*tls_, asio::buffer(text), kTuple);
    } else {
      plain_->expires_at(deadline_);
      std::tie(error, std::ignore) =
          co_await asio::async_write(*plain_, asio::buffer(text), kTuple);
    }
    if (!error) co_return true;
    if (error == beast::error::timeout) co_return timed_out();
    co_return fail("the connection failed: " + error.message());
  }

  // After the server's 220 to STARTTLS: TLS on the same connection.
  asio::awaitable<bool> upgrade() {
    // Anything the server sent after its 220 would be read as if it came over TLS (the STARTTLS
    // injection of CVE-2011-0411's kind): refuse.
    if (!buffer_.empty()) co_return fail("the server sent data before the TLS handshake");
    bool handshaken = co_await handshake();
    co_return handshaken;
  }

  [[nodiscard]] bool encrypted() const { return tls_.has_value(); }

  asio::awaitable<void> close() {
    if (tls_) {
      beast::get_lowest_layer(*tls_).expires_after(std::chrono::milliseconds(200));
      co_await tls_->async_shutdown(kTuple);
    }
  }

 private:
  asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_line() {
    auto buffer = asio::dynamic_buffer(buffer_, kMaxReply);
    if (tls_) {
      beast::get_lowest_layer(*tls_).expires_at(deadline_);
      auto read = co_await asio::async_read_until(*tls_, buffer, "\r\n", kTuple);
      co_return read;
    }
    plain_->expires_at(deadline_);
    auto read = co_await asio::async_read_until(*plain_, buffer, "\r\n", kTuple);
    co_return read;
  }

  asio::awaitable<bool> handshake() {
    tls_.emplace(std::move(*plain_), context_);
    plain_.reset();
    core::set_server_name(tls_->native_handle(), options_.host);
    tls_->set_verify_callback(asio::ssl::host_name_verification(options_.host));
    beast::get_lowest_layer(*tls_).expires_at(deadline_);
    auto [error] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kTuple);
    if (!error) co_return true;
    if (error == beast::error::timeout) co_return timed_out();
    co_return fail("the TLS handshake failed: " + error.message());
  }

  bool fail(std::string why) {
    if (sent_.error.empty()) sent_.error = std::move(why);
    return false;
  }
  bool timed_out() {
    return fail("timed out after " + std::to_string(options_.timeout.count()) + " ms");
  }

  const SmtpOptions& options_;
  asio::ssl::context& context_;
  Clock::time_point deadline_;
  Sent& sent_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  std::string buffer_;
};

// The SASL mechanisms an EHLO reply offers ("AUTH PLAIN LOGIN", or the old "AUTH=PLAIN").
std::vector<std::string> mechanisms(const Reply& ehlo) {
  std::vector<std::string> out;
  for (const auto& line : ehlo.lines) {
    auto keyword = upper(line);
    if (!keyword.starts_with("AUTH ") && !keyword.starts_with("AUTH=")) continue;
    std::string_view rest(keyword);
    rest.remove_prefix(5);
    while (!rest.empty()) {
      auto end = std::min(rest.find(' '), rest.size());
      if (end > 0) out.emplace_back(rest.substr(0, end));
      rest.remove_prefix(std::min(end + 1, rest.size()));
    }
  }
  return out;
}

bool offers(const Reply& ehlo, std::string_view keyword) {
  return std::any_of(ehlo.lines.begin(), ehlo.lines.end(), [&](const std::string& line) {
    auto word = upper(line.substr(0, line.find(' ')));
    return word == keyword;
  });
}

}  // namespace

std::optional<Security> parse_security(std::string_view text) {
  if (text == "starttls") return Security::starttls;
  if (text == "tls") return Security::tls;
  if (text == "none") return Security::none;
  return std::nullopt;
}

struct SmtpClient::Tls {
  asio::ssl::context context{asio::ssl::context::tls_client};
};

SmtpClient::SmtpClient(SmtpOptions options)
    : options_(std::move(options)), tls_(std::make_unique<Tls>()) {
  core::configure_tls_client(tls_->context, options_.ca_file);
}

SmtpClient::~SmtpClient() = default;

asio::awaitable<Sent> SmtpClient::send(const Envelope& envelope) {
  Sent sent;
  if (!sane_address(envelope.from) || envelope.to.empty() ||
      !std::all_of(envelope.to.begin(), envelope.to.end(),
                   [](const std::string& to) { return sane_address(to); })) {
    sent.error = "the envelope's addresses are malformed";
    sent.permanent = true;
    co_return sent;
  }
  Session session(options_, tls_->context, Clock::now() + options_.timeout, sent);
  if (!co_await session.connect()) co_return sent;
  if (!co_await session.expect(2, "the connection")) co_return sent;
  auto ehlo = co_await session.command("EHLO " + options_.helo, 2, "EHLO");
  if (!ehlo) co_return sent;
  if (options_.security == Security::starttls) {
    if (!offers(*ehlo, "STARTTLS")) {
      sent.error = "the server does not offer STARTTLS (smtp_security is starttls)";
      co_return sent;
    }
    if (!co_await session.command("STARTTLS", 2, "STARTTLS")) co_return sent;
    if (!co_await session.upgrade()) co_return sent;
    ehlo = co_await session.command("EHLO " + options_.helo, 2, "EHLO");  // anew, over TLS
    if (!ehlo) co_return sent;
  }
  if (!options_.username.empty()) {
    auto offered = mechanisms(*ehlo);
    auto has = [&](std::string_view name) {
      return std::find(offered.begin(), offered.end(), name) != offered.end();
    };
    if (has("PLAIN")) {
      std::string credentials = '\0' + options_.username + '\0' + options_.password;
      if (!co_await session.command("AUTH PLAIN " + core::base64(credentials), 2, "AUTH"))
        co_return sent;
    } else if (has("LOGIN")) {
      if (!co_await session.command("AUTH LOGIN", 3, "AUTH")) co_return sent;
      if (!co_await session.command(core::base64(options_.username), 3, "AUTH")) co_return sent;
      if (!co_await session.command(core::base64(options_.password), 2, "AUTH")) co_return sent;
    } else {
      sent.error = "the server offers no AUTH mechanism this client speaks (PLAIN, LOGIN)";
      co_return sent;
    }
  }
  if (!co_await session.command("MAIL FROM:<" + envelope.from + ">", 2, "the sender"))
    co_return sent;
  for (const auto& to : envelope.to) {
    if (!co_await session.command("RCPT TO:<" + to + ">", 2, "the recipient " + to)) co_return sent;
  }
  if (!co_await session.command("DATA", 3, "DATA")) co_return sent;
  if (!co_await session.write(dot_stuffed(envelope.message))) co_return sent;
  auto accepted = co_await session.expect(2, "the message");
  if (!accepted) co_return sent;
  // Accepted: nothing after this undoes it, so what QUIT meets is not the send's failure.
  Sent done{.error = {}, .code = accepted->code, .permanent = false};
  (void)co_await session.command("QUIT", 2, "QUIT");
  co_await session.close();
  co_return done;
}

}  // namespace liftoff::mail
