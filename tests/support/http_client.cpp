#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

namespace liftoff::testing {
namespace {

// With LIFTOFF_CONTRACT_LOG set (CTest sets it for e2e_tests), every answer of Liftoff to
// http_request() (Liftoff's carry X-Request-Id; the suite's own peers' do not) is appended to that
// file with its request, one JSON object a line, for the contract test
// (tests/contract/contract.test.mjs) to check against docs/openapi.json. The first exchange of the
// process empties the file. A compressed body is not recorded, only its encoding.
void record_exchange(const std::string& method, const std::string& target,
                     const HttpResponse& response) {
  static const char* const path = std::getenv("LIFTOFF_CONTRACT_LOG");
  if (path == nullptr || *path == '\0' || response.header("x-request-id").empty()) return;
  static std::mutex mutex;
  static std::ofstream out(path, std::ios::trunc);
  constexpr std::size_t kLargestBody = 1 << 20;  // larger ones are recorded without their body
  boost::json::object exchange{{"method", method},
                               {"target", target},
                               {"status", response.status},
                               {"content_type", response.header("content-type")}};
  if (auto encoding = response.header("content-encoding"); !encoding.empty())
    exchange["content_encoding"] = encoding;
  else if (response.body.size() <= kLargestBody)
    exchange["body"] = response.body;
  auto line = boost::json::serialize(exchange);
  std::lock_guard lock(mutex);
  out << line << '\n' << std::flush;
}

}  // namespace

RawConnection::RawConnection(unsigned short port, int receive_buffer) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (receive_buffer > 0)  // before connect: it sets the window the peer may fill
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::send(const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

void RawConnection::shutdown_write() {
  ::shutdown(fd_, SHUT_WR);
}

RawConnection::Fill RawConnection::fill(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return Fill::timeout;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return Fill::timeout;
  char chunk[16384];
  auto n = ::recv(fd_, chunk, sizeof(chunk), 0);
  if (n <= 0) return Fill::closed;
  buffer_.append(chunk, static_cast<std::size_t>(n));
  return Fill::data;
}

std::optional<HttpResponse> RawConnection::read_head(
    std::chrono::steady_clock::time_point deadline) {
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (fill(deadline) != Fill::data) return std::nullopt;
  }
  HttpResponse res;
  std::string head_block = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  auto line_end = head_block.find("\r\n");
  std::string status_line = head_block.substr(0, line_end);
  if (status_line.size() < 12) return std::nullopt;
  res.status = std::stoi(status_line.substr(9, 3));
  std::size_t pos = line_end == std::string::npos ? head_block.size() : line_end + 2;
  while (pos < head_block.size()) {
    auto next = head_block.find("\r\n", pos);
    if (next == std::string::npos) next = head_block.size();
    auto line = head_block.substr(pos, next - pos);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      res.headers[name] = value;
    }
    pos = next + 2;
  }
  return res;
}

std::optional<HttpResponse> RawConnection::read_response(std::chrono::milliseconds timeout,
                                                         bool head) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto read = read_head(deadline);
  if (!read) return std::nullopt;
  auto& res = *read;
  if (res.status == 100) return read_response(timeout, head);
  if (!head && res.header("transfer-encoding") == "chunked") {
    // Chunks until the last (0), without trailers.
    for (;;) {
      std::size_t line_end;
      while ((line_end = buffer_.find("\r\n")) == std::string::npos) {
        if (fill(deadline) != Fill::data) return std::nullopt;
      }
      auto size = std::stoul(buffer_.substr(0, line_end), nullptr, 16);
      while (buffer_.size() < line_end + 2 + size + 2) {
        if (fill(deadline) != Fill::data) return std::nullopt;
      }
      res.body.append(buffer_, line_end + 2, size);
      buffer_.erase(0, line_end + 2 + size + 2);
      if (size == 0) return res;
    }
  }
  std::size_t length =
      res.headers.count("content-length") ? std::stoul(res.headers["content-length"]) : 0;
  if (head) length = 0;
  while (buffer_.size() < length) {
    if (fill(deadline) != Fill::data) return std::nullopt;
  }
  res.body = buffer_.substr(0, length);
  buffer_.erase(0, length);
  return res;
}

bool RawConnection::closed_by_peer(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Fill last;
  while ((last = fill(deadline)) == Fill::data) {
  }
  return last == Fill::closed;
}

std::optional<HttpResponse> http_request(unsigned short port, const std::string& method,
                                         const std::string& target,
                                         const std::string& extra_headers,
                                         const std::string& body) {
  RawConnection c(port);
  if (!c.connected()) return std::nullopt;
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers;
  if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  if (!c.send(req)) return std::nullopt;
  auto response = c.read_response(std::chrono::seconds(10), method == "HEAD");
  if (response) record_exchange(method, target, *response);
  return response;
}

}  // namespace liftoff::testing
