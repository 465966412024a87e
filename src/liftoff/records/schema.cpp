#include "liftoff/records/schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <cmath>
#include <set>
#include <span>
#include <utility>

#include "liftoff/core/text.hpp"
#include "liftoff/core/time.hpp"

namespace liftoff::records {
namespace json = boost::json;

namespace {
constexpr std::array<std::pair<FieldType, std::string_view>, 9> kTypeNames{{
    {FieldType::text, "text"},
    {FieldType::integer, "integer"},
    {FieldType::number, "number"},
    {FieldType::boolean, "boolean"},
    {FieldType::datetime, "datetime"},
    {FieldType::enumeration, "enum"},
    {FieldType::json, "json"},
    {FieldType::relation, "relation"},
    {FieldType::text_list, "list_of_text"},
}};
constexpr std::size_t kMaxTextLength = 1'000'000;
constexpr std::size_t kMaxEnumValues = 200;
constexpr std::size_t kMaxListItems = 1'000;
// A btree index entry holds at most about 2,700 bytes (PostgreSQL's limit for 8 kB pages, SQLSTATE
// 54000 beyond): an indexed or unique text value stays well within it.
constexpr std::size_t kMaxIndexedTextBytes = 2'000;

bool indexable(FieldType t) {
  return t != FieldType::json && t != FieldType::text_list;
}
bool uniqueable(FieldType t) {
  return t == FieldType::text || t == FieldType::integer || t == FieldType::enumeration ||
         t == FieldType::datetime || t == FieldType::relation;
}

std::span<const std::string_view> slots_for(FieldType t) {
  switch (t) {
    case FieldType::integer:
    case FieldType::number:
      return kNumberSlots;
    case FieldType::datetime:
      return kTimeSlots;
    default:
      return kTextSlots;
  }
}

// The first of `slots` not in `taken` (which it joins), if any.
std::optional<std::string> free_slot(std::span<const std::string_view> slots,
                                     std::set<std::string>& taken) {
  for (auto slot : slots) {
    if (taken.insert(std::string(slot)).second) return std::string(slot);
  }
  return std::nullopt;
}

// A free index slot for a field of type `t`, or why there is none.
Result<std::string> index_slot(FieldType t, std::set<std::string>& taken) {
  if (!indexable(t))
    return make_error(Errc::validation_failed,
                      "a " + std::string(to_string(t)) + " field cannot be indexed");
  auto slots = slots_for(t);
  if (auto slot = free_slot(slots, taken)) return *slot;
  return make_error(Errc::validation_failed,
                    "at most " + std::to_string(slots.size()) + " indexed " +
                        (slots.data() == kTextSlots   ? "text, enum, boolean or relation"
                         : slots.data() == kTimeSlots ? "datetime"
                                                      : "integer or number") +
                        " fields per collection (slots of removed indexes count until their "
                        "records are rewritten)");
}

// Checks one value against its field; returns the value to store or why not.
Result<json::value> check_value(const Field& f, const json::value& v) {
  auto bad = [](std::string message) {
    return make_error(Errc::validation_failed, std::move(message));
  };
  switch (f.type) {
    case FieldType::text:
      if (!v.is_string()) return bad("must be a string");
      if (core::utf8_length(v.get_string()) > f.max_length)
        return bad("must be at most " + std::to_string(f.max_length) + " characters");
      if ((f.indexed || f.unique) && v.get_string().size() > kMaxIndexedTextBytes) {
        return bad("must be at most " + std::to_string(kMaxIndexedTextBytes) +
                   " bytes (UTF-8) in an indexed or unique field");
      }
      return v;
    case FieldType::integer:
      if (v.is_int64()) return v;
      if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
        return json::value(static_cast<std::int64_t>(v.get_uint64()));
      if (v.is_double() && std::isfinite(v.get_double()) &&
          v.get_double() == std::trunc(v.get_double()) && std::fabs(v.get_double()) < 9.0e15)
        return json::value(static_cast<std::int64_t>(v.get_double()));
      return bad("must be an integer (64-bit)");
    case FieldType::number:
      if (v.is_int64() || v.is_uint64() || (v.is_double() && std::isfinite(v.get_double())))
        return v;
      return bad("must be a number");
    case FieldType::boolean:
      if (!v.is_bool()) return bad("must be true or false");
      return v;
    case FieldType::datetime: {
      if (!v.is_string()) return bad("must be an RFC 3339 date-time string");
      auto t = core::parse_rfc3339(v.get_string());
      if (!t) return bad("must be an RFC 3339 date-time, e.g. 2026-11-27T12:00:00Z");
      return json::value(core::format_rfc3339(*t));
    }
    case FieldType::enumeration:
      if (!v.is_string() || std::find(f.values.begin(), f.values.end(),
                                      std::string_view(v.get_string())) == f.values.end())
        return bad("must be one of the field's values");
      return v;
    case FieldType::json:
      return v;
    case FieldType::relation: {
      if (!v.is_string() || v.get_string().size() != 36) return bad("must be a record id");
      return v;
    }
    case FieldType::text_list: {
      if (!v.is_array()) return bad("must be an array of strings");
      if (v.get_array().size() > kMaxListItems)
        return bad("must have at most " + std::to_string(kMaxListItems) + " items");
      for (const auto& item : v.get_array()) {
        if (!item.is_string()) return bad("must be an array of strings");
        if (core::utf8_length(item.get_string()) > f.max_length)
          return bad("items must be at most " + std::to_string(f.max_length) + " characters");
      }
      return v;
    }
  }
  return bad("has an unknown type");
}
}  // namespace

std::string_view to_string(FieldType type) noexcept {
  for (const auto& [t, name] : kTypeNames) {
    if (t == type) return name;
  }
  return "text";
}

std::optional<FieldType> parse_field_type(std::string_view text) noexcept {
  for (const auto& [t, name] : kTypeNames) {
    if (name == text) return t;
  }
  return std::nullopt;
}

bool is_identifier(std::string_view name) noexcept {
  if (name.empty() || name.size() > 63 || name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

Result<Schema> Schema::parse(const json::value& input, const SchemaLimits& limits) {
  return Schema().extend(input, limits, "fields");
}

Result<Schema> Schema::extend(const json::value& input, const SchemaLimits& limits,
                              std::string_view path) const {
  Error invalid{Errc::validation_failed, "the collection's fields are invalid", {}};
  const std::string list(path);
  if (!input.is_array()) {
    invalid.fields.push_back({list, "must be an array of field definitions"});
    return invalid;
  }
  const auto& items = input.get_array();
  if (fields_.size() + items.size() > limits.max_fields) {
    invalid.fields.push_back(
        {list, "a collection has at most " + std::to_string(limits.max_fields) + " fields"});
    return invalid;
  }
  static const std::set<std::string_view> kKnown = {"name",       "type",    "required",
                                                    "unique",     "indexed", "default",
                                                    "max_length", "values",  "collection"};
  std::vector<Field> fields = fields_;
  std::set<std::string> names;
  std::set<std::string> taken = taken_slots();
  for (const auto& f : fields_) names.insert(f.name);
  bool adding = !fields_.empty() || path != "fields";
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::string at = list + "[" + std::to_string(i) + "]";
    auto problem = [&](std::string_view member, const std::string& message) {
      invalid.fields.push_back({member.empty() ? at : at + "." + std::string(member), message});
    };
    if (!items[i].is_object()) {
      problem("", "must be an object");
      continue;
    }
    const auto& def = items[i].get_object();
    for (const auto& [key, value] : def) {
      if (!kKnown.contains(std::string_view(key))) problem(key, "is not a known member");
    }
    Field f;
    auto name = def.if_contains("name");
    if (!name || !name->is_string() || !is_identifier(name->get_string())) {
      problem("name", "must be an identifier: a-z, then a-z, 0-9 or _ (at most 63)");
      continue;
    }
    f.name = std::string(name->get_string());
    if (std::find(std::begin(kSystemFields), std::end(kSystemFields), f.name) !=
        std::end(kSystemFields)) {
      problem("name", "is a system field");
    }
    if (!names.insert(f.name).second) problem("name", "is used twice");
    auto type = def.if_contains("type");
    auto parsed = type && type->is_string() ? parse_field_type(type->get_string()) : std::nullopt;
    if (!parsed) {
      problem("type",
              "must be one of text, integer, number, boolean, datetime, enum, json, relation, "
              "list_of_text");
      continue;
    }
    f.type = *parsed;
    for (auto [member, flag] :
         {std::pair{"required", &f.required}, {"unique", &f.unique}, {"indexed", &f.indexed}}) {
      if (auto v = def.if_contains(member)) {
        if (!v->is_bool()) {
          problem(member, "must be true or false");
        } else {
          *flag = v->get_bool();
        }
      }
    }
    if (auto v = def.if_contains("max_length")) {
      if (f.type != FieldType::text && f.type != FieldType::text_list) {
        problem("max_length", "applies to text and list_of_text fields only");
      } else if (!v->is_int64() || v->get_int64() < 1 ||
                 static_cast<std::size_t>(v->get_int64()) > kMaxTextLength) {
        problem("max_length", "must be an integer from 1 to " + std::to_string(kMaxTextLength));
      } else {
        f.max_length = static_cast<std::size_t>(v->get_int64());
      }
    }
    if (f.type == FieldType::enumeration) {
      auto v = def.if_contains("values");
      if (!v || !v->is_array() || v->get_array().empty() ||
          v->get_array().size() > kMaxEnumValues) {
        problem("values", "must list 1 to " + std::to_string(kMaxEnumValues) + " strings");
      } else {
        for (const auto& e : v->get_array()) {
          if (!e.is_string() || e.get_string().empty() || e.get_string().size() > 200) {
            problem("values", "must be strings of 1 to 200 bytes");
            break;
          }
          f.values.emplace_back(e.get_string());
        }
      }
    } else if (def.contains("values")) {
      problem("values", "applies to enum fields only");
    }
    if (f.type == FieldType::relation) {
      auto v = def.if_contains("collection");
      if (!v || !v->is_string() || !is_identifier(v->get_string())) {
        problem("collection", "must name a collection of this organization");
      } else {
        f.collection = std::string(v->get_string());
      }
    } else if (def.contains("collection")) {
      problem("collection", "applies to relation fields only");
    }
    if (f.indexed) {
      auto slot = index_slot(f.type, taken);
      if (!slot) {
        problem("indexed", slot.error().detail);
      } else {
        f.slot = std::move(*slot);
      }
    }
    if (f.unique) {
      if (!uniqueable(f.type)) {
        problem("unique", "a " + std::string(to_string(f.type)) + " field cannot be unique");
      } else if (auto slot = free_slot(kUniqueSlots, taken)) {
        f.unique_slot = std::move(*slot);
      } else {
        problem("unique", "at most " + std::to_string(std::size(kUniqueSlots)) +
                              " unique fields per collection (slots of removed fields count until "
                              "their records are rewritten)");
      }
    }
    if (auto v = def.if_contains("default")) {
      auto checked = check_value(f, *v);
      if (!checked) {
        problem("default", checked.error().detail);
      } else {
        f.default_value = *checked;
      }
    }
    if (adding && f.required && !f.default_value) {
      problem("required", "a field added to a collection must have a default to be required");
    }
    fields.push_back(std::move(f));
  }
  if (!invalid.fields.empty()) return invalid;
  return Schema(std::move(fields), evolution_);
}

std::set<std::string> Schema::taken_slots() const {
  std::set<std::string> taken(evolution_.draining.begin(), evolution_.draining.end());
  for (const auto& f : fields_) {
    if (!f.slot.empty()) taken.insert(f.slot);
    if (!f.unique_slot.empty()) taken.insert(f.unique_slot);
  }
  return taken;
}

Result<Schema> Schema::changed(const json::object& patch, const SchemaLimits& limits) const {
  Error invalid{Errc::validation_failed, "the change is invalid; nothing was changed", {}};
  auto problem = [&](std::string at, std::string message) {
    invalid.fields.push_back({std::move(at), std::move(message)});
  };
  Schema next = *this;
  auto& fields = next.fields_;
  auto& evolution = next.evolution_;
  const std::int32_t layout = evolution_.layout + 1;
  bool storage_changed = false;  // a change affects how records are stored: starts `layout`
  auto field_named = [&](std::string_view name) {
    return std::find_if(fields.begin(), fields.end(),
                        [&](const Field& f) { return f.name == name; });
  };
  auto drain = [&](std::string& slot) {
    if (slot.empty()) return;
    evolution.draining.push_back(slot);
    slot.clear();
  };

  if (const auto* drop = patch.if_contains("drop")) {
    if (!drop->is_array()) {
      problem("drop", "must be an array of field names");
    } else {
      for (std::size_t i = 0; i < drop->get_array().size(); ++i) {
        const auto& name = drop->get_array()[i];
        auto it = name.is_string() ? field_named(name.get_string()) : fields.end();
        if (it == fields.end()) {
          problem("drop[" + std::to_string(i) + "]", "is not a field of this collection");
          continue;
        }
        drain(it->slot);
        drain(it->unique_slot);
        evolution.steps.push_back({layout, it->name, std::nullopt});
        fields.erase(it);
        storage_changed = true;
      }
    }
  }
  if (const auto* rename = patch.if_contains("rename")) {
    if (!rename->is_object()) {
      problem("rename", "must be an object of {\"old name\": \"new name\"}");
    } else {
      for (const auto& [from, to] : rename->get_object()) {
        std::string at = "rename." + std::string(from);
        auto it = field_named(from);
        if (it == fields.end()) {
          problem(at, "is not a field of this collection");
        } else if (!to.is_string() || !is_identifier(to.get_string())) {
          problem(at, "must be an identifier: a-z, then a-z, 0-9 or _ (at most 63)");
        } else if (std::find(std::begin(kSystemFields), std::end(kSystemFields),
                             std::string_view(to.get_string())) != std::end(kSystemFields)) {
          problem(at, "is a system field");
        } else if (field_named(to.get_string()) != fields.end()) {
          problem(at, "names a field that exists");
        } else {
          evolution.steps.push_back({layout, it->name, std::string(to.get_string())});
          it->name = std::string(to.get_string());
          storage_changed = true;
        }
      }
    }
  }
  // {"field": true | false} members: each entry with its field, or a problem named "member.field".
  auto each_flag = [&](std::string_view member, const auto& apply) {
    const auto* flags = patch.if_contains(member);
    if (flags == nullptr) return;
    if (!flags->is_object()) {
      problem(std::string(member), "must be an object of {\"field\": true | false}");
      return;
    }
    for (const auto& [name, on] : flags->get_object()) {
      std::string at = std::string(member) + "." + std::string(name);
      auto it = field_named(name);
      if (it == fields.end()) {
        problem(at, "is not a field of this collection");
      } else if (!on.is_bool()) {
        problem(at, "must be true or false");
      } else {
        apply(at, *it, on.get_bool());
      }
    }
  };
  auto taken = next.taken_slots();
  each_flag("indexed", [&](const std::string& at, Field& f, bool on) {
    if (on && !f.indexed) {
      auto slot = index_slot(f.type, taken);
      if (!slot) return problem(at, slot.error().detail);
      f.indexed = true;
      f.slot = std::move(*slot);
      f.building = true;
      storage_changed = true;
    } else if (!on && f.indexed) {
      drain(f.slot);
      f.indexed = false;
      f.building = false;
      storage_changed = true;
    }
  });
  each_flag("unique", [&](const std::string& at, Field& f, bool on) {
    if (on && !f.unique) {
      problem(at,
              "an existing field cannot become unique (its records may hold duplicates); add a new "
              "unique field and copy the values into it");
    } else if (!on && f.unique) {
      drain(f.unique_slot);
      f.unique = false;
      storage_changed = true;
    }
  });
  if (storage_changed) evolution.layout = layout;
  if (const auto* add = patch.if_contains("add")) {
    if (invalid.fields.empty()) {
      auto extended = next.extend(*add, limits, "add");
      if (!extended) return extended.error();
      next = std::move(*extended);
    }
  }
  if (!invalid.fields.empty()) return invalid;
  return next;
}

bool Schema::rewriting() const {
  return !evolution_.steps.empty() || !evolution_.draining.empty() ||
         std::any_of(fields_.begin(), fields_.end(), [](const Field& f) { return f.building; });
}

Schema Schema::settled() const {
  Schema out = *this;
  out.evolution_.steps.clear();
  out.evolution_.draining.clear();
  for (auto& f : out.fields_) f.building = false;
  return out;
}

void Schema::upgrade(json::object& data, std::int32_t layout) const {
  for (const auto& step : evolution_.steps) {
    if (step.layout <= layout) continue;
    auto it = data.find(step.from);
    if (it == data.end()) continue;
    if (step.to) {
      json::value value = std::move(it->value());
      data.erase(it);
      data[*step.to] = std::move(value);
    } else {
      data.erase(it);
    }
  }
}

std::vector<std::pair<std::int32_t, std::optional<std::string>>> Schema::stored_keys(
    std::string_view name) const {
  std::vector<std::pair<std::int32_t, std::optional<std::string>>> out;
  std::optional<std::string> key{std::string(name)};
  for (auto it = evolution_.steps.rbegin(); it != evolution_.steps.rend() && key; ++it) {
    if (it->to ? *it->to == *key : it->from == *key) {
      out.emplace_back(it->layout, key);
      key = it->to ? std::optional<std::string>(it->from) : std::nullopt;
    }
  }
  out.emplace_back(0, key);
  return out;
}

json::object Schema::evolution_json() const {
  json::array steps;
  for (const auto& s : evolution_.steps) {
    steps.push_back(json::object{{"layout", s.layout},
                                 {"from", s.from},
                                 {"to", s.to ? json::value(*s.to) : json::value(nullptr)}});
  }
  json::array draining;
  for (const auto& d : evolution_.draining) draining.emplace_back(d);
  return {{"steps", std::move(steps)}, {"draining", std::move(draining)}};
}

json::array Schema::to_json() const {
  json::array out;
  for (const auto& f : fields_) {
    json::object o{{"name", f.name},
                   {"type", to_string(f.type)},
                   {"required", f.required},
                   {"unique", f.unique},
                   {"indexed", f.indexed}};
    if (f.default_value) o["default"] = *f.default_value;
    if (f.type == FieldType::text || f.type == FieldType::text_list) o["max_length"] = f.max_length;
    if (f.type == FieldType::enumeration) {
      json::array values;
      for (const auto& v : f.values) values.emplace_back(v);
      o["values"] = std::move(values);
    }
    if (f.type == FieldType::relation) o["collection"] = f.collection;
    if (!f.slot.empty()) o["slot"] = f.slot;
    if (!f.unique_slot.empty()) o["unique_slot"] = f.unique_slot;
    if (f.building) o["building"] = true;
    out.push_back(std::move(o));
  }
  return out;
}

Schema Schema::from_stored(const json::value& stored, std::int32_t layout,
                           const json::value* evolution) {
  std::vector<Field> fields;
  for (const auto& item : stored.as_array()) {
    const auto& o = item.as_object();
    Field f;
    f.name = std::string(o.at("name").as_string());
    f.type = parse_field_type(o.at("type").as_string()).value_or(FieldType::json);
    f.required = o.at("required").as_bool();
    f.unique = o.at("unique").as_bool();
    f.indexed = o.at("indexed").as_bool();
    if (auto v = o.if_contains("default")) f.default_value = *v;
    if (auto v = o.if_contains("max_length"))
      f.max_length = static_cast<std::size_t>(v->as_int64());
    if (auto v = o.if_contains("values")) {
      for (const auto& e : v->as_array()) f.values.emplace_back(e.as_string());
    }
    if (auto v = o.if_contains("collection")) f.collection = std::string(v->as_string());
    if (auto v = o.if_contains("slot")) f.slot = std::string(v->as_string());
    if (auto v = o.if_contains("unique_slot")) f.unique_slot = std::string(v->as_string());
    if (auto v = o.if_contains("building")) f.building = v->as_bool();
    fields.push_back(std::move(f));
  }
  Evolution ev;
  ev.layout = layout;
  if (evolution != nullptr && evolution->is_object()) {
    if (auto steps = evolution->as_object().if_contains("steps")) {
      for (const auto& item : steps->as_array()) {
        const auto& o = item.as_object();
        LayoutStep step;
        step.layout = static_cast<std::int32_t>(o.at("layout").as_int64());
        step.from = std::string(o.at("from").as_string());
        if (o.at("to").is_string()) step.to = std::string(o.at("to").as_string());
        ev.steps.push_back(std::move(step));
      }
    }
    if (auto draining = evolution->as_object().if_contains("draining")) {
      for (const auto& d : draining->as_array()) ev.draining.emplace_back(d.as_string());
    }
  }
  return Schema(std::move(fields), std::move(ev));
}

const Field* Schema::find(std::string_view name) const {
  for (const auto& f : fields_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

Result<json::object> validate_record(const Schema& schema, const json::object& data) {
  Error invalid{Errc::validation_failed, "the record is invalid", {}};
  json::object out;
  for (const auto& [key, value] : data) {
    const auto* field = schema.find(key);
    if (!field) {
      invalid.fields.push_back({std::string(key), "is not a field of this collection"});
      continue;
    }
    if (value.is_null()) continue;  // null is absent
    auto checked = check_value(*field, value);
    if (!checked) {
      invalid.fields.push_back({std::string(key), checked.error().detail});
    } else {
      out[key] = std::move(*checked);
    }
  }
  for (const auto& f : schema.fields()) {
    if (out.contains(f.name)) continue;
    if (f.default_value) {
      out[f.name] = *f.default_value;
    } else if (f.required && !data.contains(f.name)) {
      invalid.fields.push_back({f.name, "is required"});
    } else if (f.required) {
      invalid.fields.push_back({f.name, "is required (not null)"});
    }
  }
  if (!invalid.fields.empty()) return invalid;
  return out;
}

std::optional<std::string> slot_text(const Field& field, const json::object& record) {
  auto v = record.if_contains(field.name);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_bool()) return v->get_bool() ? "true" : "false";
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  if (v->is_double()) return fmt::format("{}", v->get_double());
  return std::nullopt;
}

}  // namespace liftoff::records
