#pragma once
// A list request (filter, sort, cursor, limit) compiled against a collection's schema into one
// parameterized SQL statement. User text never reaches the SQL: field names resolve to slot columns
// or to `data->>$n` with the name as a parameter, and every value is a parameter.
//
// Sorting: by system fields (id, created_at, updated_at, version) or required scalar fields, with
// `id` as the final tiebreaker. Cursors are opaque (base64url of the sort spec and the last row's
// sort values) and the next page starts strictly after that row (keyset, never OFFSET).
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/records/filter.hpp"
#include "liftoff/records/schema.hpp"

namespace liftoff::records {

struct SortKey {
  std::string field;
  bool descending = false;
};

// "priority,-created_at" -> keys; 400 for unknown or unsortable fields. Empty text: newest first
// ("-id"), or with a search (`ranked`) the best matches first. `id` is appended as the tiebreaker
// unless present.
[[nodiscard]] Result<std::vector<SortKey>> parse_sort(std::string_view text, const Schema& schema,
                                                      bool ranked = false);

// The pseudo sort key of a full-text search: relevance (ts_rank), best first.
inline constexpr std::string_view kRankKey = "_rank";

struct ListRequest {
  std::optional<FilterNode> filter;
  std::optional<std::string> q;  // full-text search (websearch syntax) over the text fields
  std::vector<SortKey> sort;
  std::optional<std::string> cursor;
  std::int32_t limit = 20;
};

struct CompiledQuery {
  std::string sql;
  db::Params params;
  std::size_t sort_columns = 0;  // extra result columns after the record's (for the next cursor)
  // A last column, after the sort columns: the running size of the page's record data (int8).
  bool budget_column = false;
  // The best plan is the same whatever the values (db::Statement::generic_plan).
  bool generic_plan = false;
  // The statement may read far more rows than it returns (db::Statement::scans): every list but
  // the index-served shape above, and every exact count.
  bool scans = true;
};

// Columns: id, version, created_at, updated_at, data, layout, then one text column per sort key. It
// asks for limit + 1 rows, so the caller knows whether there is a next page. With `page_bytes`, the
// rows end where their record data (records.data_bytes, in order) passes it, the first row always
// included; a last column holds that running size, and one more row past the budget, its data
// null, says that the page goes on.
[[nodiscard]] Result<CompiledQuery> compile_list(const Schema& schema,
                                                 const db::Uuid& collection_id,
                                                 const db::Uuid& org_id, const ListRequest& request,
                                                 std::size_t page_bytes = 0);

// The same filter as a count: SELECT count(*) ... (no sort, cursor or limit).
[[nodiscard]] Result<CompiledQuery> compile_count(const Schema& schema,
                                                  const db::Uuid& collection_id,
                                                  const db::Uuid& org_id,
                                                  const std::optional<FilterNode>& filter,
                                                  const std::optional<std::string>& q);

// The filter evaluated in memory against a record in its API form ({id, version, created_at,
// updated_at, data}), for the event stream. It agrees with the compiled SQL, three-valued logic
// included: a comparison with an absent field is unknown, `not unknown` is unknown, and only a true
// filter matches; `!=` is IS DISTINCT FROM. Text compares by code point (the database's C.UTF-8
// collation); `contains` folds ASCII case only. The filter must have compiled against `schema`
// (compile_count), which checked its fields and value types.
[[nodiscard]] bool matches(const Schema& schema, const FilterNode& filter,
                           const boost::json::object& record);

// The cursor that continues after a row whose sort columns hold `values`.
[[nodiscard]] std::string make_cursor(const std::vector<SortKey>& sort,
                                      const std::vector<std::optional<std::string>>& values);

}  // namespace liftoff::records
