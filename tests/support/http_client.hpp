#pragma once
// A deliberately plain blocking HTTP/1.1 client over a POSIX socket, so tests can send anything:
// malformed request lines, partial bodies, stalls.
#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace liftoff::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class RawConnection {
 public:
  // receive_buffer > 0: SO_RCVBUF, fixed (no autotuning), e.g. for a client that reads slowly.
  explicit RawConnection(unsigned short port, int receive_buffer = 0);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  [[nodiscard]] bool connected() const { return fd_ >= 0; }
  bool send(const std::string& bytes);
  void shutdown_write();
  // Reads one response (Content-Length framed or chunked); nullopt on timeout or a closed
  // connection (a chunked body cut short included).
  std::optional<HttpResponse> read_response(
      std::chrono::milliseconds timeout = std::chrono::seconds(5), bool head = false);
  // Reads a response's status line and headers, leaving its body unread.
  std::optional<HttpResponse> read_head(std::chrono::steady_clock::time_point deadline);
  // True when the server closed the connection (EOF) within the timeout.
  bool closed_by_peer(std::chrono::milliseconds timeout);

  enum class Fill { data, closed, timeout };
  // Appends what arrives before the deadline to buffer().
  Fill fill(std::chrono::steady_clock::time_point deadline);
  // What arrived and was not read yet.
  std::string& buffer() { return buffer_; }

 private:
  int fd_ = -1;
  std::string buffer_;
};

// One request on a fresh connection.
std::optional<HttpResponse> http_request(unsigned short port, const std::string& method,
                                         const std::string& target,
                                         const std::string& extra_headers = "",
                                         const std::string& body = "");

}  // namespace liftoff::testing
