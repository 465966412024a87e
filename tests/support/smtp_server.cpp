#include "support/smtp_server.hpp"

#include <boost/json/parse.hpp>
#include <thread>

#include "support/http_client.hpp"

namespace liftoff::testing {
namespace json = boost::json;
namespace fs = std::filesystem;

SmtpServer::SmtpServer(const fs::path& dir, const std::string& name, const Options& options) {
  std::vector<std::string> args;
  if (options.tls == Tls::starttls)
    args.insert(args.end(), {"--starttls", options.cert.string(), options.key.string()});
  if (options.tls == Tls::implicit)
    args.insert(args.end(), {"--tls", options.cert.string(), options.key.string()});
  if (!options.auth.empty()) args.insert(args.end(), {"--auth", options.auth});
  auto peer = start_python_peer(dir, name, "smtp_server.py", args);
  process_ = std::move(peer.process);
  if (peer.ports.size() == 2) {
    port_ = peer.ports[0];
    listing_port_ = peer.ports[1];
  }
}

std::vector<json::object> SmtpServer::received() const {
  std::vector<json::object> out;
  auto response = http_request(listing_port_, "GET", "/_received");
  if (!response || response->status != 200) return out;
  auto list = json::parse(response->body);
  const auto& items = list.as_array();
  out.reserve(items.size());
  for (const auto& item : items) out.push_back(item.as_object());
  return out;
}

std::vector<json::object> SmtpServer::wait_for(std::size_t count,
                                               std::chrono::milliseconds timeout) const {
  auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto messages = received();
    if (messages.size() >= count || std::chrono::steady_clock::now() >= end) return messages;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace liftoff::testing
