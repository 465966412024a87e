#pragma once
// A collection's schema: its fields, their types and constraints, and which storage slot an indexed
// or unique field lives in (docs/decisions/0003-records-storage.md). Parsing a schema and
// validating a record against it are pure functions: no database, no HTTP.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "liftoff/core/error.hpp"

namespace liftoff::records {

enum class FieldType {
  text,
  integer,
  number,
  boolean,
  datetime,
  enumeration,
  json,
  relation,
  text_list
};

[[nodiscard]] std::string_view to_string(FieldType type) noexcept;
[[nodiscard]] std::optional<FieldType> parse_field_type(std::string_view text) noexcept;

// The storage slots (columns of `records`) an indexed or unique field can occupy.
inline constexpr std::string_view kTextSlots[] = {"t1", "t2", "t3"};
inline constexpr std::string_view kNumberSlots[] = {"n1", "n2"};
inline constexpr std::string_view kTimeSlots[] = {"d1", "d2"};
inline constexpr std::string_view kUniqueSlots[] = {"u1", "u2"};

struct Field {
  std::string name;
  FieldType type = FieldType::text;
  bool required = false;
  bool unique = false;
  bool indexed = false;
  std::optional<boost::json::value> default_value;
  std::size_t max_length = 10'000;  // text and list items, in characters
  std::vector<std::string> values;  // enumeration
  std::string collection;           // relation: the target collection's name (same org)
  std::string slot;                 // indexed: t1.. n1.. d1..; empty otherwise
  std::string unique_slot;          // unique: u1..; empty otherwise
  // Indexed later: records older than that change have no value in the slot until the rewrite
  // reaches them, so filters read the field from the data meanwhile.
  bool building = false;
};

// A change to how a collection's records are stored (docs/decisions/0006-schema-evolution.md):
// field `from` was renamed to `to`, or dropped (no `to`), by the change that made layout `layout`.
struct LayoutStep {
  std::int32_t layout = 0;
  std::string from;
  std::optional<std::string> to;
};

// The storage history a collection's records may still reflect: records remember the layout they
// were written with; one of an older layout looks current after the steps past its layout.
struct Evolution {
  std::int32_t layout = 0;            // the current layout
  std::vector<LayoutStep> steps;      // since the last completed rewrite, oldest first
  std::vector<std::string> draining;  // slots still holding values of fields no longer there
};

struct SchemaLimits {
  std::size_t max_fields = 64;
};

// System fields every record has; field names may not take them.
inline constexpr std::string_view kSystemFields[] = {"id", "version", "created_at", "updated_at"};

// True for identifiers: a lower-case letter, then up to 62 lower-case letters, digits or '_'.
[[nodiscard]] bool is_identifier(std::string_view name) noexcept;

class Schema {
 public:
  Schema() = default;
  explicit Schema(std::vector<Field> fields, Evolution evolution = {})
      : fields_(std::move(fields)), evolution_(std::move(evolution)) {}

  // From the API's `fields` array; assigns slots. 422 with a field error per problem, named by path
  // ("fields[2].type").
  [[nodiscard]] static Result<Schema> parse(const boost::json::value& fields,
                                            const SchemaLimits& limits);
  // PATCH of a collection: {"drop": [names], "rename": {old: new}, "indexed": {name: bool},
  // "unique": {name: false}, "add": [fields]}, applied in that order. Drops, renames and indexing
  // changes start a new layout (rewriting no records here); errors name their member
  // ("rename.title"). A field cannot become unique later: its records might hold duplicates.
  [[nodiscard]] Result<Schema> changed(const boost::json::object& patch,
                                       const SchemaLimits& limits) const;
  // From what to_json() and evolution_json() stored (trusted: slots included).
  [[nodiscard]] static Schema from_stored(const boost::json::value& stored, std::int32_t layout = 0,
                                          const boost::json::value* evolution = nullptr);
  [[nodiscard]] boost::json::array to_json() const;
  [[nodiscard]] boost::json::object evolution_json() const;

  [[nodiscard]] const Evolution& evolution() const { return evolution_; }
  // True while records of older layouts may exist (or slots wait to be filled or cleared).
  [[nodiscard]] bool rewriting() const;
  // The schema once every record is at the current layout: no steps, nothing building or draining.
  [[nodiscard]] Schema settled() const;
  // Brings the data of a record written at `layout` up to the current layout.
  void upgrade(boost::json::object& data, std::int32_t layout) const;
  // Where a field's value is stored, by layout: (L, key) means records of layout >= L keep it under
  // `key` (nullopt: they do not have it), newest first; the last entry has L = 0.
  [[nodiscard]] std::vector<std::pair<std::int32_t, std::optional<std::string>>> stored_keys(
      std::string_view name) const;

  [[nodiscard]] const Field* find(std::string_view name) const;
  [[nodiscard]] const std::vector<Field>& fields() const { return fields_; }

 private:
  [[nodiscard]] Result<Schema> extend(const boost::json::value& input, const SchemaLimits& limits,
                                      std::string_view path) const;
  // Slots fields hold, and slots still being cleared.
  [[nodiscard]] std::set<std::string> taken_slots() const;
  std::vector<Field> fields_;
  Evolution evolution_;
};

// Checks `data` (a whole record: POST, PUT, or the result of a merge patch) against the schema:
// unknown fields, types, lengths, enum values, required fields; fills defaults. Returns the record
// as stored (datetimes normalized to RFC 3339 UTC), or 422 naming each bad field.
[[nodiscard]] Result<boost::json::object> validate_record(const Schema& schema,
                                                          const boost::json::object& data);

// The value of an indexed or unique field as its slot holds it: text for t/u slots, a decimal
// string for n slots, RFC 3339 for d slots. nullopt for a missing or null value.
[[nodiscard]] std::optional<std::string> slot_text(const Field& field,
                                                   const boost::json::object& record);

}  // namespace liftoff::records
