#include "support/event_stream.hpp"

namespace liftoff::testing {

EventStream::EventStream(unsigned short port, const std::string& target, const std::string& headers,
                         int receive_buffer)
    : connection_(port, receive_buffer) {
  if (!connection_.connected()) return;
  connection_.send("GET " + target +
                   " HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n" + headers +
                   "\r\n");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  response_ = connection_.read_head(deadline);
  if (response_ && response_->status != 200) {
    auto length = response_->header("content-length");
    std::size_t n = length.empty() ? 0 : std::stoul(length);
    while (connection_.buffer().size() < n) {
      if (connection_.fill(deadline) != RawConnection::Fill::data) break;
    }
    response_->body = connection_.buffer().substr(0, n);
  }
}

bool EventStream::decode() {
  auto& raw = connection_.buffer();
  for (;;) {
    auto line_end = raw.find("\r\n");
    if (line_end == std::string::npos) return !ended_;
    std::size_t size = std::stoul(raw.substr(0, line_end), nullptr, 16);
    if (size == 0) {
      ended_ = true;
      return false;
    }
    if (raw.size() < line_end + 2 + size + 2) return true;
    text_.append(raw, line_end + 2, size);
    raw.erase(0, line_end + 2 + size + 2);
  }
}

std::optional<ServerSentEvent> EventStream::next(std::chrono::milliseconds timeout) {
  if (!open()) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    decode();
    std::size_t end;
    while ((end = text_.find("\n\n")) != std::string::npos) {
      std::string block = text_.substr(0, end);
      text_.erase(0, end + 2);
      ServerSentEvent event;
      bool any = false;
      std::size_t pos = 0;
      while (pos <= block.size()) {
        auto eol = block.find('\n', pos);
        if (eol == std::string::npos) eol = block.size();
        auto line = block.substr(pos, eol - pos);
        pos = eol + 1;
        if (line.empty()) continue;
        if (line.front() == ':') {
          ++comments_;
          continue;
        }
        auto colon = line.find(": ");
        auto name = line.substr(0, colon);
        auto value = colon == std::string::npos ? "" : line.substr(colon + 2);
        if (name == "retry") {
          retry_ = value;
          continue;
        }
        if (name == "id") event.id = last_event_id_ = value;
        if (name == "event") event.event = value;
        if (name == "data") {
          event.data += value;
          any = true;
        }
      }
      // As EventSource: a frame without data sets the last event id and dispatches nothing.
      if (any) return event;
    }
    if (ended_) return std::nullopt;
    auto got = connection_.fill(deadline);
    if (got == RawConnection::Fill::closed) ended_ = true;
    if (got != RawConnection::Fill::data) return std::nullopt;
  }
}

bool EventStream::ends_within(std::chrono::milliseconds timeout) {
  if (!open()) return true;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!decode()) return true;
    auto got = connection_.fill(deadline);
    if (got == RawConnection::Fill::closed) return true;
    if (got == RawConnection::Fill::timeout) return false;
  }
}

}  // namespace liftoff::testing
