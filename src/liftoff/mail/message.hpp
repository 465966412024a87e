#pragma once
// An email as the templates produce it and as SMTP carries it: a multipart/alternative message
// (plain text and HTML) in RFC 5322 form, with header values encoded per RFC 2047 when they are
// not plain ASCII, so that no value (a user's name, an org's name) can add a header line.
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace liftoff::mail {

struct Address {
  std::string name;   // display name, any UTF-8; may be empty
  std::string email;  // addr-spec, already validated (no spaces, brackets or line breaks)
};

struct Message {
  Address from;
  Address to;
  std::string subject;
  std::string text;  // the plain-text part
  std::string html;  // the HTML part; empty: a text/plain message
  // More header fields, written as given (such as a trace's `traceparent`); a field whose name or
  // value holds a line break is left out.
  std::vector<std::pair<std::string, std::string>> headers;
};

// The message in RFC 5322 form with CRLF line ends: Date (at `now`), Message-ID (under the sender's
// domain), MIME headers, and each part's body in base64 lines of 76 characters.
[[nodiscard]] std::string compose(const Message& message,
                                  std::chrono::system_clock::time_point now);

// `value` as a header's value: as is when it is printable ASCII, else as RFC 2047 encoded words
// (UTF-8, base64), folded so that no line passes 78 characters and no character is split.
[[nodiscard]] std::string encode_header(std::string_view value);

// `message` ready to follow DATA: every line that starts with a dot gets one more (RFC 5321 section
// 4.5.2), bare LF and CR become CRLF, and it ends with CRLF "." CRLF.
[[nodiscard]] std::string dot_stuffed(std::string_view message);

}  // namespace liftoff::mail
