#include "support/smtp_server.hpp"

#include <boost/json/parse.hpp>
#include <fstream>
#include <thread>

#include "support/http_client.hpp"

namespace liftoff::testing {
namespace json = boost::json;
namespace fs = std::filesystem;

SmtpServer::SmtpServer(const fs::path& dir, const std::string& name, const Options& options) {
  auto port_file = dir / (name + ".port");
  std::vector<std::string> argv{"/usr/bin/python3",
                                LIFTOFF_SOURCE_DIR "/tests/support/smtp_server.py", "--port-file",
                                port_file.string()};
  if (options.tls == Tls::starttls)
    argv.insert(argv.end(), {"--starttls", options.cert.string(), options.key.string()});
  if (options.tls == Tls::implicit)
    argv.insert(argv.end(), {"--tls", options.cert.string(), options.key.string()});
  if (!options.auth.empty()) argv.insert(argv.end(), {"--auth", options.auth});
  process_ = std::make_unique<Process>(argv, std::map<std::string, std::string>{},
                                       (dir / (name + ".log")).string());
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!fs::exists(port_file) && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ifstream in(port_file);
  in >> port_ >> listing_port_;
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
