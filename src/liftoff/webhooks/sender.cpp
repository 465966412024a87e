#include "liftoff/webhooks/sender.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <cctype>

#include "liftoff/core/tls_client.hpp"
#include "liftoff/webhooks/address.hpp"

namespace liftoff::webhooks {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::size_t kMaxUrl = 2000;

Error invalid_url(std::string_view field, std::string problem) {
  return Error{Errc::validation_failed,
               "the webhook endpoint is invalid",
               {{std::string(field), std::move(problem)}}};
}

// Why `address` may not be delivered to, or nullopt.
std::optional<std::string> refusal(const asio::ip::address& address, bool allow_private) {
  auto why = classify(address);
  if (why == Refusal::none || allow_private) return std::nullopt;
  return std::string(describe(why));
}

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string excerpt_of(const std::string& body, std::size_t limit) {
  return body.substr(0, std::min(body.size(), limit));
}

std::string timeout_message(std::chrono::milliseconds timeout) {
  return "timed out after " + std::to_string(timeout.count()) + " ms";
}

// How an exchange on a connection ended.
enum class Exchanged {
  reusable,  // answered, and the connection may carry the next request
  spent,     // answered or failed (the reply says which): the connection is to be closed
  stale,     // a kept connection the peer had closed: nothing was answered on it
};

// Writes the request and reads the answer on a connected (and, for TLS, handshaken) stream.
template <typename Stream>
asio::awaitable<Exchanged> exchange(Stream& stream, beast::flat_buffer& buffer,
                                    const http::request<http::string_body>& request,
                                    const SenderOptions& options, bool reused, Reply& reply) {
  auto [written, sent] = co_await http::async_write(stream, request, kTuple);
  if (written) {
    if (reused) co_return Exchanged::stale;
    reply.error = written == beast::error::timeout
                      ? timeout_message(options.timeout)
                      : "cannot send the request: " + written.message();
    co_return Exchanged::spent;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(options.max_response);
  auto [read, received] = co_await http::async_read(stream, buffer, parser, kTuple);
  if (!parser.is_header_done()) {
    if (reused && received == 0 &&
        (read == http::error::end_of_stream || read == asio::error::eof ||
         read == asio::error::connection_reset))
      co_return Exchanged::stale;
    reply.error = read == beast::error::timeout
                      ? timeout_message(options.timeout)
                      : "no answer: " + (read ? read.message() : std::string("incomplete header"));
    co_return Exchanged::spent;
  }
  const auto& response = parser.get();
  reply.status = static_cast<int>(response.result_int());
  // A body cut short (too long, or the peer closed early) still shows the answer's status.
  reply.excerpt = excerpt_of(response.body(), options.excerpt);
  if (*reply.status < 200 || *reply.status > 299)
    reply.error = "the endpoint answered " + std::to_string(*reply.status);
  co_return read || !response.keep_alive() ? Exchanged::spent : Exchanged::reusable;
}

}  // namespace

Result<Target> parse_target(std::string_view text, bool allow_private, std::string_view field) {
  if (text.size() > kMaxUrl)
    return invalid_url(field, "is longer than " + std::to_string(kMaxUrl) + " characters");
  auto parsed = boost::urls::parse_absolute_uri(text);
  if (!parsed) return invalid_url(field, "is not an absolute URL");
  const auto& url = *parsed;
  Target target;
  if (url.scheme_id() == boost::urls::scheme::https) {
    target.tls = true;
  } else if (url.scheme_id() != boost::urls::scheme::http) {
    return invalid_url(field, "must be an http or https URL");
  }
  if (url.has_userinfo()) return invalid_url(field, "must not carry a user name or password");
  if (url.has_fragment()) return invalid_url(field, "must not have a fragment");
  switch (url.host_type()) {
    case boost::urls::host_type::ipv4:
      target.host = url.host_ipv4_address().to_string();
      break;
    case boost::urls::host_type::ipv6:
      target.host = url.host_ipv6_address().to_string();
      break;
    case boost::urls::host_type::name:
      target.host = std::string(url.encoded_host());
      break;
    default:
      return invalid_url(field, "must have a host name or an IP address");
  }
  if (target.host.empty() || target.host.find('%') != std::string::npos)
    return invalid_url(field, "must have a host name or an IP address");
  std::transform(target.host.begin(), target.host.end(), target.host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (url.host_type() != boost::urls::host_type::name) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(target.host, ec);
    if (ec) return invalid_url(field, "must have a host name or an IP address");
    if (auto why = refusal(address, allow_private))
      return invalid_url(field, "is " + *why + ", where webhooks are not delivered");
  }
  if (url.has_port()) {
    if (url.port_number() == 0) return invalid_url(field, "has an invalid port");
    target.port = url.port_number();
  } else {
    target.port = target.tls ? 443 : 80;
  }
  target.path = std::string(url.encoded_path());
  if (target.path.empty()) target.path = "/";
  if (url.has_query()) target.path += "?" + std::string(url.encoded_query());
  return target;
}

struct Sender::Tls {
  asio::ssl::context context{asio::ssl::context::tls_client};
};

// A connection kept open between posts: to `origin`, plain or TLS.
struct Sender::Connection::State {
  std::string origin;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  [[nodiscard]] bool open() const { return plain || tls; }
  void close() {
    plain.reset();
    tls.reset();
    buffer.clear();
  }
};

Sender::Connection::Connection() : state_(std::make_unique<State>()) {}
Sender::Connection::~Connection() = default;

Sender::Sender(SenderOptions options)
    : options_(std::move(options)), tls_(std::make_unique<Tls>()) {
  core::configure_tls_client(tls_->context, options_.ca_file);
}

Sender::~Sender() = default;

asio::awaitable<Reply> Sender::post(const Post& post, Connection* keep) {
  auto started = Clock::now();
  Reply reply;
  auto target = parse_target(post.url, options_.allow_private);
  if (!target) {
    reply.error = target.error().fields.empty() ? target.error().detail
                                                : "the URL " + target.error().fields[0].message;
    co_return reply;
  }
  auto deadline = started + options_.timeout;
  Connection own;
  auto& connection = keep ? *keep->state_ : *own.state_;
  auto origin =
      (target->tls ? "https://" : "http://") + target->host + ":" + std::to_string(target->port);
  if (connection.open() && connection.origin != origin) connection.close();

  http::request<http::string_body> request{http::verb::post, target->path, 11};
  bool default_port = target->port == (target->tls ? 443 : 80);
  auto host = target->host.find(':') != std::string::npos ? "[" + target->host + "]" : target->host;
  request.set(http::field::host, default_port ? host : host + ":" + std::to_string(target->port));
  request.set(http::field::user_agent, "Liftoff-Webhooks/1");
  request.set(http::field::content_type, "application/json");
  request.keep_alive(keep != nullptr);
  for (const auto& [name, value] : post.headers) request.set(name, value);
  request.body() = post.body;
  request.prepare_payload();

  // On a kept connection first; on a new one when there is none, or the peer had closed it.
  auto exchanged = Exchanged::stale;
  if (connection.open()) {
    if (connection.plain) {
      connection.plain->expires_at(deadline);
      exchanged =
          co_await exchange(*connection.plain, connection.buffer, request, options_, true, reply);
    } else {
      beast::get_lowest_layer(*connection.tls).expires_at(deadline);
      exchanged =
          co_await exchange(*connection.tls, connection.buffer, request, options_, true, reply);
    }
    if (exchanged == Exchanged::stale) connection.close();
  }
  if (exchanged == Exchanged::stale) {
    co_await connect(*target, deadline, connection, reply);
    if (connection.plain) {
      connection.origin = origin;
      exchanged =
          co_await exchange(*connection.plain, connection.buffer, request, options_, false, reply);
    } else if (connection.tls) {
      connection.origin = origin;
      exchanged =
          co_await exchange(*connection.tls, connection.buffer, request, options_, false, reply);
    }
  }
  if (exchanged != Exchanged::reusable) connection.close();
  reply.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  co_return reply;
}

asio::awaitable<void> Sender::connect(const Target& target, Clock::time_point deadline,
                                      Connection::State& connection, Reply& reply) {
  auto executor = co_await asio::this_coro::executor;
  // Resolve, and keep the addresses deliveries may go to.
  tcp::resolver resolver(executor);
  asio::steady_timer timer(executor, deadline);
  auto resolving = resolver.async_resolve(target.host, std::to_string(target.port), kTuple);
  auto resolved = co_await (std::move(resolving) || timer.async_wait(kTuple));
  if (resolved.index() == 1) {
    reply.error = timeout_message(options_.timeout);
    co_return;
  }
  auto [resolve_error, results] = std::get<0>(std::move(resolved));
  if (resolve_error) {
    reply.error = "cannot resolve " + target.host + ": " + resolve_error.message();
    co_return;
  }
  std::vector<tcp::endpoint> allowed;
  std::string refused;
  for (const auto& entry : results) {
    auto why = refusal(entry.endpoint().address(), options_.allow_private);
    if (why) {
      refused = *why;
    } else {
      allowed.push_back(entry.endpoint());
    }
  }
  if (allowed.empty()) {
    reply.error = target.host + " resolves to " +
                  (refused.empty() ? std::string("no address") : refused) +
                  ", where webhooks are not delivered";
    co_return;
  }
  beast::tcp_stream stream(executor);
  stream.expires_at(deadline);
  auto [connect_error, connected] = co_await stream.async_connect(allowed, kTuple);
  if (connect_error) {
    reply.error = connect_error == beast::error::timeout
                      ? timeout_message(options_.timeout)
                      : "cannot connect to " + target.host + ": " + connect_error.message();
    co_return;
  }
  if (!target.tls) {
    connection.plain.emplace(std::move(stream));
    co_return;
  }
  connection.tls.emplace(std::move(stream), tls_->context);
  auto& tls = *connection.tls;
  // SNI and the name checked against the certificate: the URL's host.
  core::set_server_name(tls.native_handle(), target.host);
  tls.set_verify_callback(asio::ssl::host_name_verification(target.host));
  auto [handshake_error] = co_await tls.async_handshake(asio::ssl::stream_base::client, kTuple);
  if (handshake_error) {
    reply.error = handshake_error == beast::error::timeout
                      ? timeout_message(options_.timeout)
                      : "TLS handshake failed: " + handshake_error.message();
    connection.close();
  }
}

}  // namespace liftoff::webhooks
