#include "liftoff/records/query.hpp"

#include <fmt/format.h>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "liftoff/core/text.hpp"
#include "liftoff/core/time.hpp"

namespace liftoff::records {
namespace json = boost::json;

namespace {

// How a column compares, and the SQL type a text parameter is cast to for it.
enum class Kind { text, numeric, time, uuid, bigint, boolean, list, json, real };

std::string_view cast_for(Kind kind) {
  switch (kind) {
    case Kind::numeric:
      return "::numeric";
    case Kind::time:
      return "::timestamptz";
    case Kind::uuid:
      return "::uuid";
    case Kind::bigint:
      return "::bigint";
    case Kind::real:
      return "::real";
    default:
      return "";
  }
}

struct Column {
  std::string sql;  // an expression over `records`
  Kind kind;
  bool indexed;  // a real column (system or slot): what an index can serve
};

Error filter_error(const std::string& what, std::size_t pos) {
  return make_error(Errc::bad_request, "filter: " + what + " at position " + std::to_string(pos));
}

class Builder {
 public:
  explicit Builder(db::Params& params) : params_(params) {}

  // The search's tsquery, once its text is a parameter (set by where_clause).
  std::string tsquery;
  // Whether everything compiled so far is an equality on a column with an index, joined by AND:
  // that index serves the condition whatever its value.
  bool only_indexed_equalities = true;

  std::string text_param(std::string_view value) {
    params_.add(value);
    return "$" + std::to_string(params_.size());
  }

  // The column for a field, or nullopt for an unknown one.
  std::optional<Column> column(const Schema& schema, std::string_view name) {
    if (name == "id") return Column{"id", Kind::uuid, true};
    if (name == kRankKey && !tsquery.empty())
      return Column{"ts_rank(search, " + tsquery + ")", Kind::real, false};
    if (name == "version") return Column{"version", Kind::bigint, true};
    if (name == "created_at") return Column{"created_at", Kind::time, true};
    if (name == "updated_at") return Column{"updated_at", Kind::time, true};
    const auto* f = schema.find(name);
    if (!f) return std::nullopt;
    Kind kind = Kind::text;
    switch (f->type) {
      case FieldType::integer:
      case FieldType::number:
        kind = Kind::numeric;
        break;
      case FieldType::datetime:
        kind = Kind::time;
        break;
      case FieldType::boolean:
        kind = Kind::boolean;
        break;
      case FieldType::text_list:
        kind = Kind::list;
        break;
      case FieldType::json:
        kind = Kind::json;
        break;
      default:
        kind = Kind::text;
    }
    if (!f->slot.empty() && !f->building) return Column{f->slot, kind, true};
    bool as_json = kind == Kind::list || kind == Kind::json;
    auto expr = stored_value(schema, f->name, as_json ? "->" : "->>");
    if (kind == Kind::numeric || kind == Kind::time)
      expr = "(" + expr + std::string(cast_for(kind)) + ")";
    return Column{expr, kind, false};
  }

  // The field's value in `data` (`op` "->" for JSON, "->>" for text). While records of older
  // layouts may exist, the key depends on the record's layout (a renamed field's old name; nothing
  // for a field dropped and added again).
  std::string stored_value(const Schema& schema, std::string_view name, std::string_view op) {
    auto keys = schema.stored_keys(name);
    auto value = [&](const std::optional<std::string>& key) {
      return key ? "data" + std::string(op) + text_param(*key)
                 : std::string(op == "->" ? "NULL::jsonb" : "NULL::text");
    };
    if (keys.size() == 1) return "(" + value(keys.front().second) + ")";
    std::string out = "(CASE";
    for (std::size_t i = 0; i + 1 < keys.size(); ++i)
      out += " WHEN layout >= " + std::to_string(keys[i].first) + " THEN " + value(keys[i].second);
    return out + " ELSE " + value(keys.back().second) + " END)";
  }

  // A filter value as a parameter of the column's kind.
  Result<std::string> value(const Column& column, const json::value& v, std::size_t pos) {
    switch (column.kind) {
      case Kind::text:
        if (!v.is_string()) return filter_error("expected a string", pos);
        return text_param(v.get_string());
      case Kind::boolean:
        if (!v.is_bool()) return filter_error("expected true or false", pos);
        return text_param(v.get_bool() ? "true" : "false");
      case Kind::numeric:
      case Kind::bigint: {
        std::string text;
        if (v.is_int64()) {
          text = std::to_string(v.get_int64());
        } else if (v.is_double() && column.kind == Kind::numeric) {
          text = fmt::format("{}", v.get_double());
        } else {
          return filter_error(
              column.kind == Kind::bigint ? "expected an integer" : "expected a number", pos);
        }
        return text_param(text) + std::string(cast_for(column.kind));
      }
      case Kind::time: {
        auto t = v.is_string() ? core::parse_rfc3339(v.get_string()) : std::nullopt;
        if (!t) return filter_error("expected an RFC 3339 date-time string", pos);
        return text_param(core::format_rfc3339(*t)) + "::timestamptz";
      }
      case Kind::uuid: {
        auto id = v.is_string() ? db::Uuid::parse(v.get_string()) : std::nullopt;
        if (!id) return filter_error("expected a record id", pos);
        return text_param(id->to_string()) + "::uuid";
      }
      case Kind::list:
      case Kind::json:
      case Kind::real:
        break;
    }
    return filter_error("this field cannot be compared", pos);
  }

  Result<std::string> compile(const Schema& schema, const FilterNode& node) {
    if (const auto* logical = std::get_if<Logical>(&node.node)) {
      if (logical->kind != Logical::Kind::all) only_indexed_equalities = false;
      if (logical->kind == Logical::Kind::negate) {
        auto inner = compile(schema, logical->children.front());
        if (!inner) return inner;
        return "NOT (" + *inner + ")";
      }
      std::string joiner = logical->kind == Logical::Kind::all ? " AND " : " OR ";
      std::string out = "(";
      for (std::size_t i = 0; i < logical->children.size(); ++i) {
        auto part = compile(schema, logical->children[i]);
        if (!part) return part;
        if (i) out += joiner;
        out += *part;
      }
      return out + ")";
    }
    const auto& c = std::get<Comparison>(node.node);
    auto col = column(schema, c.field);
    if (!col) return filter_error("unknown field '" + c.field + "'", c.position);
    // Of the system fields only id has an index (the primary key); a field's slot has its own.
    bool has_index = col->indexed && (c.field == "id" || schema.find(c.field) != nullptr);
    if (c.op != CompareOp::eq || !has_index) only_indexed_equalities = false;
    switch (c.op) {
      case CompareOp::is_null:
      case CompareOp::is_not_null: {
        bool want_null = c.op == CompareOp::is_null;
        const auto* field = schema.find(c.field);
        if (col->indexed || col->kind == Kind::list || col->kind == Kind::json || !field ||
            schema.stored_keys(c.field).size() > 1) {
          return col->sql + (want_null ? " IS NULL" : " IS NOT NULL");
        }
        // Absent and null are the same in a record (null is never stored).
        return std::string(want_null ? "NOT " : "") + "(data ? " + text_param(c.field) + ")";
      }
      case CompareOp::contains: {
        if (col->kind == Kind::list) {
          if (!c.values[0].is_string()) return filter_error("expected a string", c.value_position);
          return "(" + col->sql + " ? " + text_param(c.values[0].get_string()) + ")";
        }
        if (col->kind != Kind::text)
          return filter_error("contains needs a text or list field", c.position);
        auto v = value(*col, c.values[0], c.value_position);
        if (!v) return v;
        return "(strpos(lower(" + col->sql + "), lower(" + *v + ")) > 0)";
      }
      case CompareOp::prefix: {
        if (col->kind != Kind::text) return filter_error("prefix needs a text field", c.position);
        auto v = value(*col, c.values[0], c.value_position);
        if (!v) return v;
        return "starts_with(" + col->sql + ", " + *v + ")";
      }
      case CompareOp::in: {
        std::string out = col->sql + " IN (";
        for (std::size_t i = 0; i < c.values.size(); ++i) {
          auto v = value(*col, c.values[i], c.value_position);
          if (!v) return v;
          out += (i ? ", " : "") + *v;
        }
        return out + ")";
      }
      default:
        break;
    }
    if (col->kind == Kind::list || col->kind == Kind::json)
      return filter_error("this field supports only contains and is null", c.position);
    if (col->kind == Kind::boolean && c.op != CompareOp::eq && c.op != CompareOp::ne)
      return filter_error("booleans compare only with = and !=", c.position);
    auto v = value(*col, c.values[0], c.value_position);
    if (!v) return v;
    switch (c.op) {
      case CompareOp::eq:
        return col->sql + " = " + *v;
      case CompareOp::ne:
        return col->sql + " IS DISTINCT FROM " + *v;
      case CompareOp::lt:
        return col->sql + " < " + *v;
      case CompareOp::le:
        return col->sql + " <= " + *v;
      case CompareOp::gt:
        return col->sql + " > " + *v;
      default:
        return col->sql + " >= " + *v;
    }
  }

 private:
  db::Params& params_;
};

std::string sort_spec(const std::vector<SortKey>& sort) {
  std::string out;
  for (const auto& k : sort) {
    if (!out.empty()) out += ',';
    out += (k.descending ? "-" : "") + k.field;
  }
  return out;
}

Error bad_cursor() {
  return Error{Errc::bad_request,
               "invalid query parameter",
               {{"cursor", "is not a cursor this listing returned (or the sort changed)"}}};
}

// WHERE fragment shared by list and count.
Result<std::string> where_clause(Builder& b, db::Params& params, const Schema& schema,
                                 const db::Uuid& collection_id, const db::Uuid& org_id,
                                 const std::optional<FilterNode>& filter,
                                 const std::optional<std::string>& q) {
  params.add(collection_id).add(org_id);
  std::string where = "collection_id = $1 AND org_id = $2";
  if (q) {
    b.tsquery = "websearch_to_tsquery('simple', " + b.text_param(*q) + ")";
    where += " AND search @@ " + b.tsquery;
  }
  if (filter) {
    auto compiled = b.compile(schema, *filter);
    if (!compiled) return compiled;
    where += " AND " + *compiled;
  }
  return where;
}

}  // namespace

Result<std::vector<SortKey>> parse_sort(std::string_view text, const Schema& schema, bool ranked) {
  std::vector<SortKey> keys;
  auto bad = [](const std::string& message) {
    return Error{Errc::bad_request, "invalid query parameter", {{"sort", message}}};
  };
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto comma = text.find(',', pos);
    auto item = text.substr(pos, comma == std::string_view::npos ? text.npos : comma - pos);
    pos = comma == std::string_view::npos ? text.size() : comma + 1;
    SortKey key;
    if (!item.empty() && (item[0] == '-' || item[0] == '+')) {
      key.descending = item[0] == '-';
      item.remove_prefix(1);
    }
    key.field = std::string(item);
    bool system = key.field == "id" || key.field == "created_at" || key.field == "updated_at" ||
                  key.field == "version";
    const auto* f = schema.find(key.field);
    if (!system && !f) return bad("'" + key.field + "' is not a field of this collection");
    if (f && (!f->required || f->type == FieldType::json || f->type == FieldType::text_list)) {
      return bad("'" + key.field +
                 "' is not sortable: sort by id, created_at, updated_at, version or a required "
                 "scalar field");
    }
    for (const auto& k : keys) {
      if (k.field == key.field) return bad("'" + key.field + "' is repeated");
    }
    keys.push_back(std::move(key));
    if (keys.size() > 4) return bad("at most 4 sort fields");
  }
  if (keys.empty()) {
    if (ranked) keys.push_back({std::string(kRankKey), true});
    keys.push_back({"id", true});
  }
  if (keys.back().field != "id" &&
      std::none_of(keys.begin(), keys.end(), [](const SortKey& k) { return k.field == "id"; })) {
    keys.push_back({"id", keys.back().descending});
  }
  return keys;
}

Result<CompiledQuery> compile_list(const Schema& schema, const db::Uuid& collection_id,
                                   const db::Uuid& org_id, const ListRequest& request,
                                   std::size_t page_bytes) {
  CompiledQuery out;
  Builder b(out.params);
  auto where =
      where_clause(b, out.params, schema, collection_id, org_id, request.filter, request.q);
  if (!where) return where.error();

  std::vector<Column> columns;
  for (const auto& key : request.sort) {
    auto col = b.column(schema, key.field);
    if (!col) return make_error(Errc::internal, "sort key not in schema");
    // Slot indexes hold only filled slots (migrations/control/0007). A sort key is a required
    // field, so every record's slot is filled once the slot is ready: saying so changes no
    // result and lets PostgreSQL walk the index instead of sorting the collection.
    if (col->indexed && schema.find(key.field)) *where += " AND " + col->sql + " IS NOT NULL";
    columns.push_back(*col);
  }
  if (request.cursor) {
    auto decoded = core::from_base64url(*request.cursor);
    if (!decoded) return bad_cursor();
    boost::system::error_code ec;
    auto parsed = json::parse(*decoded, ec);
    if (ec || !parsed.is_object()) return bad_cursor();
    const auto& o = parsed.get_object();
    auto spec = o.if_contains("s");
    auto values = o.if_contains("v");
    if (!spec || !spec->is_string() || spec->get_string() != sort_spec(request.sort) || !values ||
        !values->is_array() || values->get_array().size() != columns.size()) {
      return bad_cursor();
    }
    const auto& v = values->get_array();
    // Validate each value by its kind before it reaches SQL (a cast error would be a 400 anyway,
    // but this one names the cursor).
    std::vector<std::string> params;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (!v[i].is_string()) return bad_cursor();
      std::string_view text = v[i].get_string();
      bool valid = true;
      switch (columns[i].kind) {
        case Kind::uuid:
          valid = db::Uuid::parse(text).has_value();
          break;
        case Kind::time:
          valid = core::parse_rfc3339(text).has_value() ||
                  text.find_first_not_of("0123456789-:+. ") == std::string_view::npos;
          break;
        case Kind::numeric:
        case Kind::bigint:
        case Kind::real:
          valid =
              !text.empty() && text.find_first_not_of("0123456789-+.eE") == std::string_view::npos;
          break;
        default:
          break;
      }
      if (!valid) return bad_cursor();
      params.push_back(b.text_param(text) + std::string(cast_for(columns[i].kind)));
    }
    bool same_direction = std::all_of(
        request.sort.begin(), request.sort.end(),
        [&](const SortKey& k) { return k.descending == request.sort.front().descending; });
    std::string after;
    if (same_direction) {
      std::string lhs, rhs;
      for (std::size_t i = 0; i < columns.size(); ++i) {
        lhs += (i ? ", " : "") + columns[i].sql;
        rhs += (i ? ", " : "") + params[i];
      }
      after = "(" + lhs + ") " + (request.sort.front().descending ? "<" : ">") + " (" + rhs + ")";
    } else {
      for (std::size_t i = 0; i < columns.size(); ++i) {
        std::string term;
        for (std::size_t j = 0; j < i; ++j) term += columns[j].sql + " = " + params[j] + " AND ";
        term += columns[i].sql + (request.sort[i].descending ? " < " : " > ") + params[i];
        after += (i ? " OR (" : "(") + term + ")";
      }
      after = "(" + after + ")";
    }
    *where += " AND " + after;
  }

  std::string sorts;
  std::string order;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    sorts += ", (" + columns[i].sql + ")::text AS sort_" + std::to_string(i);
    order += (i ? ", " : "") + columns[i].sql + (request.sort[i].descending ? " DESC" : "");
  }
  out.params.add(static_cast<std::int64_t>(request.limit) + 1);
  std::string limit = "$" + std::to_string(out.params.size());
  out.sort_columns = columns.size();
  if (page_bytes == 0) {
    out.sql = "SELECT id, version, created_at, updated_at, data, layout" + sorts +
              " FROM records WHERE " + *where + " ORDER BY " + order + " LIMIT " + limit;
  } else {
    // The running size of the page in its order (a window over the same order, so the rows still
    // come from the index or one sort, and the LIMIT still stops the scan). Rows past the budget
    // never leave the database; the first row past it comes without its data, to say that the
    // page goes on. Values are detoasted only for the rows that are sent.
    out.params.add(static_cast<std::int64_t>(page_bytes));
    std::string budget = "$" + std::to_string(out.params.size());
    std::string sort_names;
    for (std::size_t i = 0; i < columns.size(); ++i) sort_names += ", sort_" + std::to_string(i);
    out.sql = "SELECT id, version, created_at, updated_at, CASE WHEN running <= " + budget +
              " OR n = 1 THEN data END, layout" + sort_names +
              ", running FROM (SELECT id, version, created_at, updated_at, data, layout" + sorts +
              ", sum(coalesce(data_bytes, pg_column_size(data))) OVER w AS running, "
              "coalesce(data_bytes, pg_column_size(data)) AS bytes, row_number() OVER w AS n "
              "FROM records WHERE " +
              *where + " WINDOW w AS (ORDER BY " + order + " ROWS UNBOUNDED PRECEDING) ORDER BY " +
              order + " LIMIT " + limit + ") page WHERE running - bytes <= " + budget +
              " OR n = 1 ORDER BY n";
    out.budget_column = true;
  }
  // Newest or oldest first, filtered by indexed equalities only: the index of a filtered field
  // (collection_id, slot, id), or the primary key without a filter, yields the rows in order
  // whatever the values, so the plan does not depend on them. Any other shape keeps a plan made
  // for its values: the best one for a range, a search or another order depends on how many rows
  // match, and one collection may hold millions of records and the next ten.
  out.generic_plan = !request.q && b.only_indexed_equalities && request.sort.size() == 1 &&
                     request.sort.front().field == "id";
  // That shape is also the one whose work the LIMIT bounds whatever the data: every other may
  // read much of the collection (a range, a search, `contains`, an order no index serves).
  out.scans = !out.generic_plan;
  return out;
}

Result<CompiledQuery> compile_count(const Schema& schema, const db::Uuid& collection_id,
                                    const db::Uuid& org_id, const std::optional<FilterNode>& filter,
                                    const std::optional<std::string>& q) {
  CompiledQuery out;
  Builder b(out.params);
  auto where = where_clause(b, out.params, schema, collection_id, org_id, filter, q);
  if (!where) return where.error();
  out.sql = "SELECT count(*) FROM records WHERE " + *where;
  return out;
}

std::string make_cursor(const std::vector<SortKey>& sort,
                        const std::vector<std::optional<std::string>>& values) {
  json::array v;
  for (const auto& value : values)
    v.emplace_back(value ? json::value(*value) : json::value(nullptr));
  return core::base64url(
      json::serialize(json::object{{"s", sort_spec(sort)}, {"v", std::move(v)}}));
}

}  // namespace liftoff::records
