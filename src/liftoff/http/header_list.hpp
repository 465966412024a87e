#pragma once
// The comma-separated lists of RFC 9110 5.6.1 with ";"-parameters (Accept-Encoding, Prefer, ...):
// one tokenizer for every header Liftoff reads this way. Commas and semicolons inside quoted
// strings do not separate; empty elements are skipped; whitespace around each part is trimmed.
#include <string_view>
#include <vector>

namespace liftoff::http {

struct ListParameter {
  std::string_view name;   // before "=" (the whole parameter when there is none)
  std::string_view value;  // after "=", quotes kept; empty when there is none
};

struct ListElement {
  std::string_view value;  // up to the first ";": "gzip", "return=representation"
  std::vector<ListParameter> parameters;
};

// The elements of `header`, views into it, in order.
[[nodiscard]] std::vector<ListElement> list_elements(std::string_view header);

// "0.5" -> 500: a q-value (RFC 9110 12.4.2) in thousandths; malformed or above 1 -> 0.
[[nodiscard]] int qvalue_thousandths(std::string_view value);

// The element's q parameter in thousandths (1000 when it has none).
[[nodiscard]] int weight(const ListElement& element);

}  // namespace liftoff::http
