// Fuzz target: bytes -> the filter language (parse_filter) -> its SQL compiler (compile_count,
// compile_list with a sort and a cursor) against a collection with a field of every type -> the
// in-memory evaluator (matches) on a record. Built with libFuzzer under the `fuzz` preset; in every
// other build it replays the checked-in corpus as a unit test. Besides not crashing, each input
// must keep two promises of records/query.hpp:
// - bounded work: the SQL and its parameters grow at most linearly with the filter's text;
// - no value reaches SQL: the SQL holds no string literal but the search configuration's, so every
//   value the text carried is a parameter.
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "liftoff/db/value.hpp"
#include "liftoff/records/filter.hpp"
#include "liftoff/records/query.hpp"
#include "liftoff/records/schema.hpp"

namespace {
using namespace liftoff;
namespace json = boost::json;

const records::Schema& schema() {
  static const records::Schema s = [] {
    auto fields = json::parse(R"([
      {"name": "title", "type": "text", "required": true},
      {"name": "status", "type": "enum", "values": ["open", "closed"], "indexed": true},
      {"name": "priority", "type": "integer", "indexed": true},
      {"name": "score", "type": "number"},
      {"name": "due", "type": "datetime"},
      {"name": "urgent", "type": "boolean"},
      {"name": "tags", "type": "list_of_text"},
      {"name": "meta", "type": "json"},
      {"name": "code", "type": "text", "unique": true}
    ])");
    auto parsed = records::Schema::parse(fields, records::SchemaLimits{});
    if (!parsed) std::abort();
    return *parsed;
  }();
  return s;
}

const json::object& record() {
  static const json::object r = json::parse(R"({
    "id": "0190a3c4-0000-7000-8000-000000000001", "version": 3,
    "created_at": "2026-12-02T10:00:00Z", "updated_at": "2026-12-02T10:00:01Z",
    "data": {"title": "Printer jam", "status": "open", "priority": 2, "score": 1.5,
             "due": "2026-12-24T00:00:00Z", "urgent": false, "tags": ["office", "printer"],
             "meta": {"floor": 3}}})")
                                    .as_object();
  return r;
}

// A broken promise: says which, with the SQL at fault, and aborts (the fuzzer keeps the input).
void require(bool ok, const std::string& sql = {}) {
  if (ok) return;
  std::fprintf(stderr, "filter_fuzz: a promise broke for SQL: %s\n", sql.c_str());
  std::abort();
}

// The SQL holds no quote but those of 'simple' (the full-text configuration, a constant).
void require_no_literals(const std::string& sql) {
  auto rest = sql;
  for (auto at = rest.find("'simple'"); at != std::string::npos; at = rest.find("'simple'"))
    rest.erase(at, 8);
  require(rest.find('\'') == std::string::npos, sql);
  require(rest.find('"') == std::string::npos, sql);
  require(rest.find("$$") == std::string::npos, sql);  // no dollar quoting either
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  records::FilterLimits limits;
  auto filter = records::parse_filter(text, limits);
  if (!filter) return 0;
  db::Uuid collection{};
  db::Uuid org{};
  auto count = records::compile_count(schema(), collection, org, *filter, std::nullopt);
  if (!count) return 0;
  // Linear in the text: a comparison costs at most a few hundred bytes of SQL (an `in` list one
  // parameter per value).
  require(count->sql.size() <= 2048 + 256 * size, count->sql);
  require(static_cast<std::size_t>(count->params.size()) <= 8 + 2 * size, count->sql);
  require_no_literals(count->sql);

  records::ListRequest request;
  request.filter = *filter;
  auto sort = records::parse_sort("title,-created_at", schema(), false);
  require(static_cast<bool>(sort), "(the sort)");
  request.sort = *sort;
  auto list = records::compile_list(schema(), collection, org, request);
  require(static_cast<bool>(list), "(the list)");  // what compiles as a count compiles as a list
  require(list->sql.size() <= 4096 + 256 * size, list->sql);
  require_no_literals(list->sql);

  (void)records::matches(schema(), *filter, record());
  return 0;
}
