#include "liftoff/http/header_list.hpp"

#include <boost/beast/core/string.hpp>
#include <cctype>

namespace liftoff::http {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits `text` at each `separator` outside a quoted string ("..." with \-escapes).
std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == separator) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

}  // namespace

std::vector<ListElement> list_elements(std::string_view header) {
  std::vector<ListElement> elements;
  for (auto item : split(header, ',')) {
    auto parts = split(item, ';');
    ListElement element{trim(parts.front()), {}};
    if (element.value.empty()) continue;
    for (std::size_t i = 1; i < parts.size(); ++i) {
      auto parameter = trim(parts[i]);
      if (parameter.empty()) continue;
      auto equals = parameter.find('=');
      if (equals == std::string_view::npos) {
        element.parameters.push_back({parameter, {}});
      } else {
        element.parameters.push_back(
            {trim(parameter.substr(0, equals)), trim(parameter.substr(equals + 1))});
      }
    }
    elements.push_back(std::move(element));
  }
  return elements;
}

int qvalue_thousandths(std::string_view value) {
  if (value.empty() || (value[0] != '0' && value[0] != '1')) return 0;
  int whole = value[0] - '0';
  int thousandths = 0;
  if (value.size() > 1) {
    if (value[1] != '.' || value.size() > 5) return 0;
    auto digits = value.substr(2);
    for (std::size_t i = 0; i < 3; ++i) {
      thousandths *= 10;
      if (i < digits.size()) {
        if (!std::isdigit(static_cast<unsigned char>(digits[i]))) return 0;
        thousandths += digits[i] - '0';
      }
    }
  }
  int q = whole * 1000 + thousandths;
  return q > 1000 ? 0 : q;
}

int weight(const ListElement& element) {
  for (const auto& p : element.parameters) {
    if (boost::beast::iequals(p.name, "q")) return qvalue_thousandths(p.value);
  }
  return 1000;
}

}  // namespace liftoff::http
