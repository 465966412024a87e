// records::matches(): the filter language evaluated in memory (see query.hpp).
#include <algorithm>
#include <boost/json/value.hpp>
#include <cctype>
#include <compare>

#include "liftoff/core/time.hpp"
#include "liftoff/records/query.hpp"

namespace liftoff::records {
namespace json = boost::json;

namespace {

// SQL's three truth values.
enum class Truth { no, yes, unknown };

Truth truth(bool b) {
  return b ? Truth::yes : Truth::no;
}

// How a field's values compare.
enum class Kind { text, uuid, number, time, boolean, list, other };

Kind kind_of(const Schema& schema, std::string_view name) {
  if (name == "id") return Kind::uuid;
  if (name == "version") return Kind::number;
  if (name == "created_at" || name == "updated_at") return Kind::time;
  const auto* field = schema.find(name);
  if (!field) return Kind::other;
  switch (field->type) {
    case FieldType::integer:
    case FieldType::number:
      return Kind::number;
    case FieldType::datetime:
      return Kind::time;
    case FieldType::boolean:
      return Kind::boolean;
    case FieldType::text_list:
      return Kind::list;
    case FieldType::json:
      return Kind::other;
    default:
      return Kind::text;
  }
}

const json::value* lookup(const json::object& record, std::string_view name) {
  const json::value* value = nullptr;
  if (name == "id" || name == "version" || name == "created_at" || name == "updated_at") {
    value = record.if_contains(name);
  } else if (const auto* data = record.if_contains("data"); data && data->is_object()) {
    value = data->get_object().if_contains(name);
  }
  return value && !value->is_null() ? value : nullptr;
}

std::optional<double> number_of(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  return std::nullopt;
}

// <=> between a stored value and a filter value of the field's kind; nullopt when they cannot be
// compared (which compile_count ruled out for the filter side).
std::optional<std::partial_ordering> compare(Kind kind, const json::value& stored,
                                             const json::value& wanted) {
  switch (kind) {
    case Kind::text:
      if (!stored.is_string() || !wanted.is_string()) return std::nullopt;
      return std::string_view(stored.get_string()) <=> std::string_view(wanted.get_string());
    case Kind::uuid: {
      // Canonical (lower-case) text orders as the uuid's bytes do.
      auto a = stored.is_string() ? db::Uuid::parse(stored.get_string()) : std::nullopt;
      auto b = wanted.is_string() ? db::Uuid::parse(wanted.get_string()) : std::nullopt;
      if (!a || !b) return std::nullopt;
      return a->to_string() <=> b->to_string();
    }
    case Kind::number: {
      auto a = number_of(stored), b = number_of(wanted);
      if (!a || !b) return std::nullopt;
      return *a <=> *b;
    }
    case Kind::time: {
      auto a = stored.is_string() ? core::parse_rfc3339(stored.get_string()) : std::nullopt;
      auto b = wanted.is_string() ? core::parse_rfc3339(wanted.get_string()) : std::nullopt;
      if (!a || !b) return std::nullopt;
      return *a <=> *b;
    }
    case Kind::boolean:
      if (!stored.is_bool() || !wanted.is_bool()) return std::nullopt;
      return stored.get_bool() == wanted.get_bool() ? std::partial_ordering::equivalent
                                                    : std::partial_ordering::unordered;
    default:
      return std::nullopt;
  }
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Truth evaluate(const Schema& schema, const Comparison& c, const json::object& record) {
  const json::value* stored = lookup(record, c.field);
  if (c.op == CompareOp::is_null) return truth(stored == nullptr);
  if (c.op == CompareOp::is_not_null) return truth(stored != nullptr);
  auto kind = kind_of(schema, c.field);
  if (!stored) return c.op == CompareOp::ne ? Truth::yes : Truth::unknown;
  const json::value& wanted = c.values.front();
  switch (c.op) {
    case CompareOp::contains:
      if (kind == Kind::list) {
        if (!stored->is_array() || !wanted.is_string()) return Truth::no;
        const auto& items = stored->get_array();
        return truth(std::any_of(items.begin(), items.end(), [&](const json::value& item) {
          return item.is_string() && item.get_string() == wanted.get_string();
        }));
      }
      if (!stored->is_string() || !wanted.is_string()) return Truth::unknown;
      return truth(ascii_lower(stored->get_string()).find(ascii_lower(wanted.get_string())) !=
                   std::string::npos);
    case CompareOp::prefix:
      if (!stored->is_string() || !wanted.is_string()) return Truth::unknown;
      return truth(std::string_view(stored->get_string()).starts_with(wanted.get_string()));
    case CompareOp::in:
      return truth(std::any_of(c.values.begin(), c.values.end(), [&](const json::value& v) {
        auto order = compare(kind, *stored, v);
        return order && *order == 0;
      }));
    default:
      break;
  }
  auto order = compare(kind, *stored, wanted);
  if (!order) return c.op == CompareOp::ne ? Truth::yes : Truth::no;
  switch (c.op) {
    case CompareOp::eq:
      return truth(*order == 0);
    case CompareOp::ne:
      return truth(*order != 0);
    case CompareOp::lt:
      return truth(*order < 0);
    case CompareOp::le:
      return truth(*order <= 0);
    case CompareOp::gt:
      return truth(*order > 0);
    default:
      return truth(*order >= 0);
  }
}

Truth evaluate(const Schema& schema, const FilterNode& node, const json::object& record) {
  if (const auto* c = std::get_if<Comparison>(&node.node)) return evaluate(schema, *c, record);
  const auto& logical = std::get<Logical>(node.node);
  if (logical.kind == Logical::Kind::negate) {
    auto inner = evaluate(schema, logical.children.front(), record);
    return inner == Truth::unknown ? inner : truth(inner == Truth::no);
  }
  // and: no beats unknown beats yes; or: yes beats unknown beats no.
  Truth decisive = logical.kind == Logical::Kind::all ? Truth::no : Truth::yes;
  Truth result = logical.kind == Logical::Kind::all ? Truth::yes : Truth::no;
  for (const auto& child : logical.children) {
    auto t = evaluate(schema, child, record);
    if (t == decisive) return t;
    if (t == Truth::unknown) result = Truth::unknown;
  }
  return result;
}

}  // namespace

bool matches(const Schema& schema, const FilterNode& filter, const json::object& record) {
  return evaluate(schema, filter, record) == Truth::yes;
}

}  // namespace liftoff::records
