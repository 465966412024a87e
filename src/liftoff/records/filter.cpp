#include "liftoff/records/filter.hpp"

#include <cctype>
#include <charconv>
#include <optional>

namespace liftoff::records {
namespace json = boost::json;

namespace {

enum class Tok { end, ident, string, number, lparen, rparen, comma, op };

struct Token {
  Tok kind = Tok::end;
  std::string text;  // identifier (lower-cased for keywords), decoded string, number or operator
  std::size_t pos = 0;
};

class Parser {
 public:
  Parser(std::string_view text, const FilterLimits& limits) : text_(text), limits_(limits) {}

  Result<FilterNode> parse() {
    if (text_.size() > limits_.max_length) {
      return fail("longer than " + std::to_string(limits_.max_length) + " characters", 0);
    }
    if (auto t = advance(); !t) return t.error();
    if (current_.kind == Tok::end) return fail("empty filter", 0);
    auto node = parse_or(0);
    if (!node) return node;
    if (current_.kind != Tok::end) return fail("unexpected '" + current_.text + "'", current_.pos);
    return node;
  }

 private:
  Error fail(std::string what, std::size_t pos) const {
    return make_error(Errc::bad_request,
                      "filter: " + std::move(what) + " at position " + std::to_string(pos));
  }

  bool keyword(std::string_view word) const {
    return current_.kind == Tok::ident && current_.text == word;
  }

  Result<void> advance() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    current_ = Token{Tok::end, "", pos_};
    if (pos_ >= text_.size()) return {};
    char c = text_[pos_];
    auto start = pos_;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < text_.size() &&
             (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
        ++pos_;
      }
      current_ = {Tok::ident, std::string(text_.substr(start, pos_ - start)), start};
      // Keywords are case-insensitive; field names are lower-case identifiers anyway.
      for (auto& ch : current_.text)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return {};
    }
    if (c == '\'' || c == '"') {
      std::string out;
      ++pos_;
      while (pos_ < text_.size() && text_[pos_] != c) {
        if (text_[pos_] == '\\') {
          if (pos_ + 1 >= text_.size()) break;
          ++pos_;
        }
        out += text_[pos_++];
      }
      if (pos_ >= text_.size()) return fail("unterminated string", start);
      ++pos_;
      current_ = {Tok::string, std::move(out), start};
      return {};
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.') {
      ++pos_;
      while (pos_ < text_.size() &&
             (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.' ||
              ((text_[pos_] == '-' || text_[pos_] == '+') &&
               (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E')))) {
        ++pos_;
      }
      current_ = {Tok::number, std::string(text_.substr(start, pos_ - start)), start};
      return {};
    }
    if (c == '(' || c == ')' || c == ',') {
      ++pos_;
      current_ = {c == '('   ? Tok::lparen
                  : c == ')' ? Tok::rparen
                             : Tok::comma,
                  std::string(1, c), start};
      return {};
    }
    for (std::string_view op : {"!=", "<=", ">=", "=", "<", ">"}) {
      if (text_.substr(pos_, op.size()) == op) {
        pos_ += op.size();
        current_ = {Tok::op, std::string(op), start};
        return {};
      }
    }
    return fail("unexpected character '" + std::string(1, c) + "'", start);
  }

  Result<FilterNode> parse_or(std::size_t depth) {
    auto first = parse_and(depth);
    if (!first) return first;
    if (!keyword("or")) return first;
    Logical any{Logical::Kind::any, {std::move(*first)}};
    while (keyword("or")) {
      if (auto t = advance(); !t) return t.error();
      auto next = parse_and(depth);
      if (!next) return next;
      any.children.push_back(std::move(*next));
    }
    return FilterNode{std::move(any)};
  }

  Result<FilterNode> parse_and(std::size_t depth) {
    auto first = parse_unary(depth);
    if (!first) return first;
    if (!keyword("and")) return first;
    Logical all{Logical::Kind::all, {std::move(*first)}};
    while (keyword("and")) {
      if (auto t = advance(); !t) return t.error();
      auto next = parse_unary(depth);
      if (!next) return next;
      all.children.push_back(std::move(*next));
    }
    return FilterNode{std::move(all)};
  }

  Result<FilterNode> parse_unary(std::size_t depth) {
    if (depth >= limits_.max_depth) {
      return fail("nested deeper than " + std::to_string(limits_.max_depth), current_.pos);
    }
    if (keyword("not")) {
      if (auto t = advance(); !t) return t.error();
      auto inner = parse_unary(depth + 1);
      if (!inner) return inner;
      return FilterNode{Logical{Logical::Kind::negate, {std::move(*inner)}}};
    }
    if (current_.kind == Tok::lparen) {
      auto open = current_.pos;
      if (auto t = advance(); !t) return t.error();
      auto inner = parse_or(depth + 1);
      if (!inner) return inner;
      if (current_.kind != Tok::rparen)
        return fail("missing ')' for '(' at " + std::to_string(open), current_.pos);
      if (auto t = advance(); !t) return t.error();
      return inner;
    }
    return parse_comparison();
  }

  Result<json::value> value() {
    json::value v;
    if (current_.kind == Tok::string) {
      v = json::value(current_.text);
    } else if (current_.kind == Tok::number) {
      const auto& n = current_.text;
      std::int64_t i = 0;
      auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), i);
      if (ec == std::errc{} && end == n.data() + n.size()) {
        v = json::value(i);
      } else {
        double d = 0;
        auto [dend, dec] = std::from_chars(n.data(), n.data() + n.size(), d);
        if (dec != std::errc{} || dend != n.data() + n.size())
          return fail("malformed number '" + n + "'", current_.pos);
        v = json::value(d);
      }
    } else if (keyword("true") || keyword("false")) {
      v = json::value(current_.text == "true");
    } else if (current_.kind == Tok::end) {
      return fail("expected a value, found the end", current_.pos);
    } else {
      return fail("expected a value, found '" + current_.text + "'", current_.pos);
    }
    if (auto t = advance(); !t) return t.error();
    return v;
  }

  Result<FilterNode> parse_comparison() {
    if (current_.kind != Tok::ident || is_reserved(current_.text)) {
      if (current_.kind == Tok::end)
        return fail("expected a field name, found the end", current_.pos);
      return fail("expected a field name, found '" + current_.text + "'", current_.pos);
    }
    if (++comparisons_ > limits_.max_comparisons) {
      return fail("more than " + std::to_string(limits_.max_comparisons) + " comparisons",
                  current_.pos);
    }
    Comparison c;
    c.field = current_.text;
    c.position = current_.pos;
    if (auto t = advance(); !t) return t.error();
    c.value_position = current_.pos;
    if (current_.kind == Tok::op) {
      static const std::pair<std::string_view, CompareOp> kOps[] = {
          {"=", CompareOp::eq},  {"!=", CompareOp::ne}, {"<", CompareOp::lt},
          {"<=", CompareOp::le}, {">", CompareOp::gt},  {">=", CompareOp::ge}};
      for (const auto& [text, op] : kOps) {
        if (current_.text == text) c.op = op;
      }
      if (auto t = advance(); !t) return t.error();
      c.value_position = current_.pos;
      auto v = value();
      if (!v) return v.error();
      c.values.push_back(std::move(*v));
    } else if (keyword("contains") || keyword("prefix")) {
      c.op = keyword("contains") ? CompareOp::contains : CompareOp::prefix;
      if (auto t = advance(); !t) return t.error();
      c.value_position = current_.pos;
      auto v = value();
      if (!v) return v.error();
      c.values.push_back(std::move(*v));
    } else if (keyword("in")) {
      c.op = CompareOp::in;
      if (auto t = advance(); !t) return t.error();
      if (current_.kind != Tok::lparen) return fail("expected '(' after in", current_.pos);
      if (auto t = advance(); !t) return t.error();
      c.value_position = current_.pos;
      for (;;) {
        if (c.values.size() >= limits_.max_in_values) {
          return fail("more than " + std::to_string(limits_.max_in_values) + " values in a list",
                      current_.pos);
        }
        auto v = value();
        if (!v) return v.error();
        c.values.push_back(std::move(*v));
        if (current_.kind == Tok::comma) {
          if (auto t = advance(); !t) return t.error();
          continue;
        }
        if (current_.kind != Tok::rparen) return fail("expected ',' or ')'", current_.pos);
        if (auto t = advance(); !t) return t.error();
        break;
      }
    } else if (keyword("is")) {
      if (auto t = advance(); !t) return t.error();
      c.op = CompareOp::is_null;
      if (keyword("not")) {
        c.op = CompareOp::is_not_null;
        if (auto t = advance(); !t) return t.error();
      }
      if (!keyword("null")) return fail("expected null", current_.pos);
      if (auto t = advance(); !t) return t.error();
    } else {
      return fail(current_.kind == Tok::end ? "expected an operator after '" + c.field + "'"
                                            : "expected an operator, found '" + current_.text + "'",
                  current_.pos);
    }
    return FilterNode{std::move(c)};
  }

  static bool is_reserved(std::string_view word) {
    for (std::string_view k :
         {"and", "or", "not", "in", "contains", "prefix", "is", "null", "true", "false"}) {
      if (word == k) return true;
    }
    return false;
  }

  std::string_view text_;
  const FilterLimits& limits_;
  std::size_t pos_ = 0;
  std::size_t comparisons_ = 0;
  Token current_;
};

}  // namespace

Result<FilterNode> parse_filter(std::string_view text, const FilterLimits& limits) {
  return Parser(text, limits).parse();
}

}  // namespace liftoff::records
