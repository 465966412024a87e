#pragma once
// A Server-Sent Events client for tests: opens GET <target> on its own connection, decodes the
// chunked body as it arrives and hands out events one at a time.
#include <chrono>
#include <optional>
#include <string>

#include "support/http_client.hpp"

namespace liftoff::testing {

struct ServerSentEvent {
  std::string id;
  std::string event;  // the `event:` name
  std::string data;
};

class EventStream {
 public:
  // receive_buffer: see RawConnection.
  EventStream(unsigned short port, const std::string& target, const std::string& headers,
              int receive_buffer = 0);

  // The response head (and, for anything but a 200, its body). nullopt: no answer in time.
  [[nodiscard]] const std::optional<HttpResponse>& response() const { return response_; }
  [[nodiscard]] bool open() const { return response_ && response_->status == 200; }

  // The next event within the timeout; nullopt on timeout or when the stream ended.
  std::optional<ServerSentEvent> next(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // True when the server ended the stream (last chunk or closed connection) within the timeout;
  // events that arrive meanwhile are dropped.
  bool ends_within(std::chrono::milliseconds timeout);

  // Whether the server ended the stream (last chunk or closed connection), as next() found.
  [[nodiscard]] bool ended() const { return ended_; }
  [[nodiscard]] int comments() const { return comments_; }  // heartbeats seen so far
  [[nodiscard]] const std::string& retry() const { return retry_; }
  // The id of the last frame that had one, events or not (what EventSource resumes from).
  [[nodiscard]] const std::string& last_event_id() const { return last_event_id_; }

 private:
  // Moves whole chunks from the connection into text_; false when the stream is over.
  bool decode();
  RawConnection connection_;
  std::optional<HttpResponse> response_;
  std::string text_;  // decoded body not yet parsed into events
  bool ended_ = false;
  int comments_ = 0;
  std::string retry_;
  std::string last_event_id_;
};

}  // namespace liftoff::testing
