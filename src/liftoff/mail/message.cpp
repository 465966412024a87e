#include "liftoff/mail/message.hpp"

#include <sodium.h>

#include <array>
#include <ctime>

#include "liftoff/core/text.hpp"

namespace liftoff::mail {

namespace {

constexpr std::size_t kLine = 76;  // base64 body lines (RFC 2045)
// Bytes of UTF-8 per encoded word: "=?UTF-8?B?" + base64 of 45 bytes (60) + "?=" is 72 characters,
// inside the 75 RFC 2047 allows.
constexpr std::size_t kWordBytes = 45;

bool plain_ascii(std::string_view value) {
  for (unsigned char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  // An ASCII value that looks like an encoded word is encoded too, so a reader does not decode it.
  return value.find("=?") == std::string_view::npos;
}

// The length of the longest prefix of `s` of at most `limit` bytes that ends on a character.
std::size_t utf8_prefix(std::string_view s, std::size_t limit) {
  if (s.size() <= limit) return s.size();
  auto end = limit;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return end == 0 ? limit : end;  // not UTF-8 (a run of continuation bytes): cut anyway
}

std::string base64_lines(std::string_view bytes) {
  auto encoded = core::base64(bytes);
  std::string out;
  out.reserve(encoded.size() + encoded.size() / kLine * 2 + 2);
  for (std::size_t at = 0; at < encoded.size(); at += kLine) {
    out.append(encoded, at, kLine);
    out += "\r\n";
  }
  return out;
}

std::string address_header(const Address& address) {
  if (address.name.empty()) return "<" + address.email + ">";
  std::string name;
  if (plain_ascii(address.name)) {
    // A quoted string: quotes and backslashes escaped.
    name = "\"";
    for (char c : address.name) {
      if (c == '"' || c == '\\') name += '\\';
      name += c;
    }
    name += '"';
  } else {
    name = encode_header(address.name);
  }
  return name + " <" + address.email + ">";
}

std::string rfc5322_date(std::chrono::system_clock::time_point now) {
  auto seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  std::array<char, 64> text{};
  auto length = std::strftime(text.data(), text.size(), "%a, %d %b %Y %H:%M:%S +0000", &utc);
  return {text.data(), length};
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  return core::hex(raw);
}

}  // namespace

std::string encode_header(std::string_view value) {
  if (plain_ascii(value)) return std::string(value);
  std::string out;
  while (!value.empty()) {
    auto take = utf8_prefix(value, kWordBytes);
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + core::base64(value.substr(0, take)) + "?=";
    value.remove_prefix(take);
  }
  return out;
}

std::string compose(const Message& message, std::chrono::system_clock::time_point now) {
  auto domain = message.from.email.substr(message.from.email.rfind('@') + 1);
  std::string out;
  out += "Date: " + rfc5322_date(now) + "\r\n";
  out += "From: " + address_header(message.from) + "\r\n";
  out += "To: " + address_header(message.to) + "\r\n";
  out += "Subject: " + encode_header(message.subject) + "\r\n";
  out += "Message-ID: <" + random_hex(16) + "@" + domain + ">\r\n";
  for (const auto& [name, value] : message.headers) {
    if ((name + value).find_first_of("\r\n") == std::string::npos)
      out += name + ": " + value + "\r\n";
  }
  out += "MIME-Version: 1.0\r\n";
  auto part = [](std::string_view type, std::string_view body) {
    return "Content-Type: " + std::string(type) +
           "; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64_lines(body);
  };
  if (message.html.empty()) {
    out += part("text/plain", message.text);
    return out;
  }
  // The boundary is random: no base64 line can contain it (base64 has no "=_").
  auto boundary = "=_" + random_hex(12);
  out += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n";
  out += "--" + boundary + "\r\n" + part("text/plain", message.text);
  out += "--" + boundary + "\r\n" + part("text/html", message.html);
  out += "--" + boundary + "--\r\n";
  return out;
}

std::string dot_stuffed(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 64 + 8);
  bool line_start = true;
  for (std::size_t i = 0; i < message.size(); ++i) {
    char c = message[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < message.size() && message[i + 1] == '\n') ++i;
      out += "\r\n";
      line_start = true;
      continue;
    }
    if (line_start && c == '.') out += '.';
    out += c;
    line_start = false;
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

}  // namespace liftoff::mail
