#pragma once
// The filter language of GET .../records?filter=...:
//
//   expr       := or
//   or         := and ("or" and)*
//   and        := unary ("and" unary)*
//   unary      := "not" unary | "(" expr ")" | comparison
//   comparison := field op value
//               | field "in" "(" value ("," value)* ")"
//               | field ("contains" | "prefix") value
//               | field "is" ["not"] "null"
//   op         := "=" | "!=" | "<" | "<=" | ">" | ">="
//   value      := 'string' | "string" | number | true | false
//
// Keywords are case-insensitive; strings take \-escapes (\' \" \\). parse_filter() builds a typed
// tree; compile_filter() (query.hpp) checks it against a collection's schema and turns it into
// parameterized SQL. Every error names its position (0-based byte offset) in the text.
#include <boost/json/value.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "liftoff/core/error.hpp"

namespace liftoff::records {

enum class CompareOp { eq, ne, lt, le, gt, ge, in, contains, prefix, is_null, is_not_null };

struct Comparison {
  std::string field;
  CompareOp op = CompareOp::eq;
  std::vector<boost::json::value> values;  // one, several for `in`, none for `is [not] null`
  std::size_t position = 0;                // of the field name
  std::size_t value_position = 0;          // of the (first) value
};

struct FilterNode;

struct Logical {
  enum class Kind { all, any, negate } kind = Kind::all;  // and, or, not
  std::vector<FilterNode> children;
};

struct FilterNode {
  std::variant<Comparison, Logical> node;
};

struct FilterLimits {
  std::size_t max_length = 4096;     // characters of filter text
  std::size_t max_comparisons = 64;  // field comparisons in one filter
  std::size_t max_depth = 16;        // nesting of parentheses and not
  std::size_t max_in_values = 100;
};

// bad_request "filter: <what> at position N" on a syntax error.
[[nodiscard]] Result<FilterNode> parse_filter(std::string_view text,
                                              const FilterLimits& limits = {});

}  // namespace liftoff::records
