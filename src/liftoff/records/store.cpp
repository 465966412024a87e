#include "liftoff/records/store.hpp"

#include <array>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <unordered_map>

#include "liftoff/audit/audit.hpp"
#include "liftoff/db/database.hpp"

namespace liftoff::records {
namespace asio = boost::asio;
namespace json = boost::json;
using db::Intent;
using db::Params;
using db::Statement;

namespace {
constexpr Statement kCountCollections{db::Plane::tenant, "records.count_collections",
                                      "SELECT count(*) FROM collections WHERE org_id = $1"};
constexpr Statement kHoldings{
    db::Plane::tenant,
    "records.holdings",
    "SELECT (SELECT count(*) FROM collections WHERE org_id = $1), count(*), "
    "COALESCE(sum(COALESCE(data_bytes, pg_column_size(data))), 0)::bigint "
    "FROM records WHERE org_id = $1",
    true,
    false,
    true};  // scans: every record of the org
constexpr Statement kInsertCollection{
    db::Plane::tenant, "records.insert_collection",
    "INSERT INTO collections (id, org_id, name, fields) VALUES ($1, $2, $3, $4) "
    "RETURNING created_at, updated_at"};
// xmin::text::int8 is the row's version: every update of the collection changes it.
#define LIFTOFF_COLLECTION_COLUMNS \
  "id, org_id, name, fields, created_at, updated_at, layout, evolution, xmin::text::int8"
constexpr Statement kCollections{db::Plane::tenant, "records.collections",
                                 "SELECT " LIFTOFF_COLLECTION_COLUMNS
                                 " FROM collections "
                                 "WHERE org_id = $1 ORDER BY name LIMIT 1000"};
constexpr Statement kCollection{db::Plane::tenant, "records.collection",
                                "SELECT " LIFTOFF_COLLECTION_COLUMNS
                                " FROM collections WHERE org_id = $1 AND name = $2"};
constexpr Statement kCollectionState{
    db::Plane::tenant, "records.collection_state",
    "SELECT " LIFTOFF_AUDIT_COMMITTED_OF_ORG_1
    ", "
    "(SELECT xmin::text::int8 FROM collections WHERE org_id = $1 AND name = $2)"};
constexpr Statement kCollectionForShare{db::Plane::tenant, "records.collection_for_share",
                                        "SELECT " LIFTOFF_COLLECTION_COLUMNS
                                        " FROM collections "
                                        "WHERE org_id = $1 AND name = $2 FOR SHARE"};
constexpr Statement kCollectionForUpdate{db::Plane::tenant, "records.collection_for_update",
                                         "SELECT " LIFTOFF_COLLECTION_COLUMNS
                                         " FROM collections "
                                         "WHERE org_id = $1 AND name = $2 FOR UPDATE"};
constexpr Statement kCollectionById{db::Plane::tenant, "records.collection_by_id",
                                    "SELECT " LIFTOFF_COLLECTION_COLUMNS
                                    " FROM collections WHERE id = $1"};
constexpr Statement kCollectionByIdForUpdate{
    db::Plane::tenant, "records.collection_by_id_for_update",
    "SELECT " LIFTOFF_COLLECTION_COLUMNS " FROM collections WHERE id = $1 FOR UPDATE"};
#undef LIFTOFF_COLLECTION_COLUMNS
constexpr Statement kUpdateSchema{
    db::Plane::tenant, "records.update_schema",
    "UPDATE collections SET fields = $2, layout = $3, evolution = $4, "
    "updated_at = now() WHERE id = $1 RETURNING updated_at"};
// Rewrites of collections' records to their current layout (see rewrite_some()).
constexpr Statement kScheduleRewrite{
    db::Plane::tenant, "records.schedule_rewrite",
    "INSERT INTO collection_rewrites (collection_id, layout) VALUES ($1, $2) "
    "ON CONFLICT (collection_id) DO UPDATE SET layout = EXCLUDED.layout, after_id = NULL"};
constexpr Statement kClaimRewrite{db::Plane::tenant, "records.claim_rewrite",
                                  "SELECT collection_id, layout, after_id FROM collection_rewrites "
                                  "ORDER BY started_at LIMIT 1 FOR UPDATE SKIP LOCKED"};
constexpr Statement kAdvanceRewrite{
    db::Plane::tenant, "records.advance_rewrite",
    "UPDATE collection_rewrites SET layout = $2, after_id = $3 WHERE collection_id = $1"};
constexpr Statement kFinishRewrite{db::Plane::tenant, "records.finish_rewrite",
                                   "DELETE FROM collection_rewrites WHERE collection_id = $1"};
constexpr Statement kOutdatedRecords{
    db::Plane::tenant, "records.outdated",
    "SELECT id, version, created_at, updated_at, data, layout FROM records "
    "WHERE collection_id = $1 AND layout < $2 AND ($3::uuid IS NULL OR id > $3) "
    "ORDER BY id LIMIT $4 FOR UPDATE"};
constexpr Statement kDeleteCollection{
    db::Plane::tenant, "records.delete_collection",
    "DELETE FROM collections WHERE org_id = $1 AND name = $2 RETURNING id"};
// One of a purged org's collections, with its records and rewrite (ON DELETE CASCADE).
constexpr Statement kPurgeCollection{
    db::Plane::tenant, "records.purge_collection",
    "DELETE FROM collections WHERE id = (SELECT id FROM collections WHERE org_id = $1 LIMIT 1) "
    "RETURNING id"};

// A record's stored form, $1..$16 of every record write (see stored_form()): the collection, id
// and org ($1-$3), the data ($4), its slots ($5-$13), search words ($14), layout ($15) and size
// ($16).
#define LIFTOFF_SLOT_VALUES \
  "$5, $6, $7, $8::numeric, $9::numeric, $10::timestamptz, $11::timestamptz, $12, $13"
#define LIFTOFF_STORED_FORM                                                 \
  "data = $4, (t1, t2, t3, n1, n2, d1, d2, u1, u2) = (" LIFTOFF_SLOT_VALUES \
  "), search = to_tsvector('simple', $14), layout = $15, data_bytes = $16"
// Record writes hold their collection (FOR KEY SHARE: a schema change's FOR UPDATE waits for them)
// only while its row is the version the schema was read from ($17 / $4); otherwise they find
// nothing (see RecordService::create_record).
constexpr Statement kInsertRecord{
    db::Plane::tenant, "records.insert",
    "INSERT INTO records (collection_id, id, org_id, data, t1, t2, t3, n1, n2, d1, d2, u1, u2, "
    "search, layout, data_bytes) SELECT $1, $2, $3, $4, " LIFTOFF_SLOT_VALUES
    ", to_tsvector('simple', $14), $15, $16 FROM collections "
    "WHERE id = $1 AND xmin::text::int8 = $17 FOR KEY SHARE "
    "RETURNING version, created_at, updated_at"};
// kInsertRecord for many records: $3 is a JSON array of their ids, data, slots, search words and
// sizes; $4 their layout, $5 the collection's version.
constexpr Statement kInsertRecords{
    db::Plane::tenant, "records.insert_many",
    "INSERT INTO records (collection_id, id, org_id, data, t1, t2, t3, n1, n2, d1, d2, u1, u2, "
    "search, layout, data_bytes) SELECT $1, r.id, $2, r.data, r.t1, r.t2, r.t3, r.n1, r.n2, r.d1, "
    "r.d2, r.u1, r.u2, to_tsvector('simple', r.search), $4, r.data_bytes FROM collections c, "
    "jsonb_to_recordset($3) AS r(id uuid, data jsonb, t1 text, t2 text, t3 text, n1 numeric, "
    "n2 numeric, d1 timestamptz, d2 timestamptz, u1 text, u2 text, search text, data_bytes int) "
    "WHERE c.id = $1 AND c.xmin::text::int8 = $5 FOR KEY SHARE OF c "
    "RETURNING id, version, created_at, updated_at"};
// $17: the version the write replaces.
constexpr Statement kUpdateRecord{
    db::Plane::tenant, "records.update",
    "UPDATE records SET " LIFTOFF_STORED_FORM
    ", version = version + 1, updated_at = now() "
    "WHERE collection_id = $1 AND id = $2 AND org_id = $3 AND version = $17 "
    "RETURNING version, created_at, updated_at"};
// A rewrite to the current layout: the stored form changes, the record does not (same version).
constexpr Statement kRewriteRecord{db::Plane::tenant, "records.rewrite",
                                   "UPDATE records SET " LIFTOFF_STORED_FORM
                                   " WHERE collection_id = $1 AND id = $2 AND org_id = $3"};
#undef LIFTOFF_STORED_FORM
#undef LIFTOFF_SLOT_VALUES
constexpr Statement kGetRecord{
    db::Plane::tenant, "records.get",
    "SELECT r.id, r.version, r.created_at, r.updated_at, r.data, r.layout, c.layout "
    "FROM records r JOIN collections c ON c.id = r.collection_id "
    "WHERE c.org_id = $1 AND c.name = $2 AND r.id = $3 AND r.org_id = $1"};
constexpr Statement kLockRecord{
    db::Plane::tenant, "records.lock",
    "SELECT r.id, r.version, r.created_at, r.updated_at, r.data, r.layout "
    "FROM records r JOIN collections c ON c.id = r.collection_id "
    "WHERE r.collection_id = $1 AND r.id = $2 AND r.org_id = $3 AND c.xmin::text::int8 = $4 "
    "FOR UPDATE OF r FOR KEY SHARE OF c"};
constexpr Statement kDeleteRecord{
    db::Plane::tenant, "records.delete",
    "DELETE FROM records WHERE collection_id = $1 AND id = $2 AND org_id = $3 "
    "RETURNING id, version, created_at, updated_at, data, layout"};
// The size of the records a batch's updates and deletes name, once per mention ($3 is a JSON array
// of ids): what the batch reads before it writes anything. From data_bytes, written with each
// record (one index lookup, nothing detoasted); rows older than that column count their stored
// size.
constexpr Statement kBatchReads{
    db::Plane::tenant, "records.batch_reads",
    "SELECT coalesce(sum(coalesce(r.data_bytes, pg_column_size(r.data))::int8 * m.n), 0)::int8 "
    "FROM (SELECT id::uuid AS id, count(*) AS n FROM jsonb_array_elements_text($3) AS o(id) "
    "GROUP BY id) m "
    "JOIN records r ON r.id = m.id AND r.org_id = $1 "
    "JOIN collections c ON c.id = r.collection_id AND c.org_id = $1 AND c.name = $2"};
constexpr Statement kRelationExists{
    db::Plane::tenant, "records.relation_exists",
    "SELECT 1 FROM records r JOIN collections c ON c.id = r.collection_id "
    "WHERE c.org_id = $1 AND c.name = $2 AND r.id = $3 AND r.org_id = $1"};

Collection collection_from(const db::Row& row) {
  auto fields = json::parse(row.get<db::Json>(3).text);
  auto evolution = json::parse(row.get<db::Json>(7).text);
  return {
      row.get<db::Uuid>(0),      row.get<db::Uuid>(1),
      row.get<std::string>(2),   Schema::from_stored(fields, row.get<std::int32_t>(6), &evolution),
      row.get<db::Timestamp>(4), row.get<db::Timestamp>(5),
      row.get<std::int64_t>(8)};
}

// Columns: id, version, created_at, updated_at, data, layout.
Record record_from(const db::Row& row) {
  return {row.get<db::Uuid>(0),      row.get<std::int64_t>(1),  row.get<db::Timestamp>(2),
          row.get<db::Timestamp>(3), row.get<db::Json>(4).text, row.get<std::int32_t>(5)};
}

// The slot parameters ($5..$13) for a validated record.
constexpr std::array<std::string_view, 9> kSlots = {"t1", "t2", "t3", "n1", "n2",
                                                    "d1", "d2", "u1", "u2"};

// The value of each slot (kSlots' order) for a record's data: its field's value as text.
std::array<std::optional<std::string>, kSlots.size()> slot_values(const Schema& schema,
                                                                  const json::object& data) {
  std::array<std::optional<std::string>, kSlots.size()> values;
  for (std::size_t i = 0; i < kSlots.size(); ++i) {
    for (const auto& f : schema.fields()) {
      if (f.slot == kSlots[i] || f.unique_slot == kSlots[i]) values[i] = slot_text(f, data);
    }
  }
  return values;
}

void add_slots(Params& params, const Schema& schema, const json::object& data) {
  for (auto& value : slot_values(schema, data)) params.add(value);
}

// A record's search vector (tsvector) holds at most 1 MB, and for text of short distinct words it
// takes about three times the text's size (SQLSTATE 54000 beyond): only the first 128 KiB of a
// record's text is searchable.
constexpr std::size_t kMaxSearchTextBytes = 128 * 1024;

// Cuts `text` to at most `limit` bytes at a character boundary.
void cut_utf8(std::string& text, std::size_t limit) {
  if (text.size() <= limit) return;
  auto end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
}

// The words full-text search finds a record by: its text, enum and list-of-text values (the first
// kMaxSearchTextBytes of them).
std::string search_text(const Schema& schema, const json::object& data) {
  std::string out;
  for (const auto& f : schema.fields()) {
    auto v = data.if_contains(f.name);
    if (!v) continue;
    if (v->is_string() && (f.type == FieldType::text || f.type == FieldType::enumeration)) {
      out.append(v->get_string()).push_back(' ');
    } else if (v->is_array() && f.type == FieldType::text_list) {
      for (const auto& item : v->get_array()) {
        if (item.is_string()) out.append(item.get_string()).push_back(' ');
      }
    }
  }
  cut_utf8(out, kMaxSearchTextBytes);
  return out;
}

// $1..$16 of a record write (LIFTOFF_STORED_FORM): `record` with its valid `data` at the layout it
// names.
Params stored_form(const Collection& collection, const Record& record, const json::object& data) {
  Params params(collection.id, record.id, collection.org_id, db::Json{record.data});
  add_slots(params, collection.schema, data);
  params.add(search_text(collection.schema, data));
  params.add(record.layout);
  params.add(static_cast<std::int32_t>(record.data.size()));
  return params;
}

}  // namespace

asio::awaitable<Result<std::int64_t>> RecordStore::count_collections(db::Transaction& tx,
                                                                     const db::Uuid& org_id) {
  Params params(org_id);
  auto rows = co_await tx.query(kCountCollections, params);
  if (!rows) co_return rows.error();
  co_return rows->front().get<std::int64_t>(0);
}

asio::awaitable<Result<RecordStore::Holdings>> RecordStore::holdings(const db::Scope& scope) {
  Params params(scope.org());
  auto rows = co_await db_.query(db::Intent::latest, scope, kHoldings, params);
  if (!rows) co_return rows.error();
  const auto& row = rows->front();
  co_return Holdings{row.get<std::int64_t>(0), row.get<std::int64_t>(1), row.get<std::int64_t>(2)};
}

asio::awaitable<Result<std::int64_t>> RecordStore::purge_org(const db::Scope& scope) {
  Params params(scope.org());
  std::int64_t purged = 0;
  for (;;) {
    auto rows = co_await db_.query(db::Intent::write, scope, kPurgeCollection, params);
    if (!rows) co_return rows.error();
    if (rows->empty()) co_return purged;
    ++purged;
  }
}

asio::awaitable<Result<void>> RecordStore::insert_collection(db::Transaction& tx,
                                                             Collection& collection) {
  Params params(collection.id, collection.org_id, collection.name,
                db::Json{json::serialize(collection.schema.to_json())});
  auto rows = co_await tx.query(kInsertCollection, params);
  if (!rows) co_return rows.error();
  collection.created_at = rows->front().get<db::Timestamp>(0);
  collection.updated_at = rows->front().get<db::Timestamp>(1);
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<Collection>>> RecordStore::collections(const db::Scope& scope) {
  Params params(scope.org());
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kCollections, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, collection_from);
}

asio::awaitable<Result<std::optional<Collection>>> RecordStore::collection(const db::Scope& scope,
                                                                           std::string_view name) {
  Params params(scope.org(), name);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kCollection, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<Collection>{};
  co_return collection_from(rows->front());
}

asio::awaitable<Result<std::optional<Collection>>> RecordStore::collection(db::Transaction& tx,
                                                                           const db::Uuid& org_id,
                                                                           std::string_view name,
                                                                           Lock lock) {
  Params params(org_id, name);
  const auto& statement = lock == Lock::none    ? kCollection
                          : lock == Lock::share ? kCollectionForShare
                                                : kCollectionForUpdate;
  auto rows = co_await tx.query(statement, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<Collection>{};
  co_return collection_from(rows->front());
}

asio::awaitable<Result<std::optional<Collection>>> RecordStore::collection_by_id(
    db::Transaction& tx, const db::Uuid& id, Lock lock) {
  Params params(id);
  auto rows =
      co_await tx.query(lock == Lock::none ? kCollectionById : kCollectionByIdForUpdate, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<Collection>{};
  co_return collection_from(rows->front());
}

asio::awaitable<Result<RecordStore::State>> RecordStore::collection_state(const db::Scope& scope,
                                                                          std::string_view name) {
  Params params(scope.org(), name);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kCollectionState, params);
  if (!rows) co_return rows.error();
  co_return State{rows->front().get<std::optional<std::int64_t>>(0),
                  rows->front().get<std::optional<std::int64_t>>(1)};
}

asio::awaitable<Result<void>> RecordStore::store_schema(db::Transaction& tx,
                                                        Collection& collection) {
  Params update(collection.id, db::Json{json::serialize(collection.schema.to_json())},
                collection.schema.evolution().layout,
                db::Json{json::serialize(collection.schema.evolution_json())});
  auto updated = co_await tx.query(kUpdateSchema, update);
  if (!updated) co_return updated.error();
  collection.updated_at = updated->front().get<db::Timestamp>(0);
  co_return Result<void>{};
}

asio::awaitable<Result<std::optional<db::Uuid>>> RecordStore::delete_collection(
    db::Transaction& tx, const db::Uuid& org_id, std::string_view name) {
  Params params(org_id, name);
  auto deleted = co_await tx.query(kDeleteCollection, params);
  if (!deleted) co_return deleted.error();
  if (deleted->empty()) co_return std::optional<db::Uuid>{};
  co_return deleted->front().get<db::Uuid>(0);
}

asio::awaitable<Result<void>> RecordStore::schedule_rewrite(db::Transaction& tx,
                                                            const Collection& collection) {
  Params params(collection.id, collection.schema.evolution().layout);
  co_return co_await tx.execute(kScheduleRewrite, params);
}

asio::awaitable<Result<std::optional<RecordStore::RewriteClaim>>> RecordStore::claim_rewrite(
    db::Transaction& tx) {
  auto claimed = co_await tx.query(kClaimRewrite, Params::none());
  if (!claimed) co_return claimed.error();
  if (claimed->empty()) co_return std::optional<RewriteClaim>{};
  auto row = claimed->front();
  co_return RewriteClaim{row.get<db::Uuid>(0), row.get<std::int32_t>(1),
                         row.get<std::optional<db::Uuid>>(2)};
}

asio::awaitable<Result<void>> RecordStore::advance_rewrite(db::Transaction& tx,
                                                           const db::Uuid& collection_id,
                                                           std::int32_t layout,
                                                           const std::optional<db::Uuid>& after) {
  Params params(collection_id, layout, after);
  co_return co_await tx.execute(kAdvanceRewrite, params);
}

asio::awaitable<Result<void>> RecordStore::finish_rewrite(db::Transaction& tx,
                                                          const db::Uuid& collection_id) {
  Params params(collection_id);
  co_return co_await tx.execute(kFinishRewrite, params);
}

asio::awaitable<Result<std::vector<Record>>> RecordStore::outdated_records(
    db::Transaction& tx, const db::Uuid& collection_id, std::int32_t layout,
    const std::optional<db::Uuid>& after, std::int32_t limit) {
  Params page(collection_id, layout, after, limit);
  auto rows = co_await tx.query(kOutdatedRecords, page);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, record_from);
}

asio::awaitable<Result<bool>> RecordStore::insert_record(db::Transaction& tx,
                                                         const Collection& collection,
                                                         Record& record, const json::object& data) {
  auto params = stored_form(collection, record, data);
  params.add(collection.row_version);
  auto inserted = co_await tx.query(kInsertRecord, params);
  if (!inserted) co_return inserted.error();
  if (inserted->empty()) co_return false;
  record.version = inserted->front().get<std::int64_t>(0);
  record.created_at = inserted->front().get<db::Timestamp>(1);
  record.updated_at = inserted->front().get<db::Timestamp>(2);
  co_return true;
}

asio::awaitable<Result<bool>> RecordStore::insert_records(db::Transaction& tx,
                                                          const Collection& collection,
                                                          std::vector<Record>& records,
                                                          const std::vector<json::object>& data) {
  json::array rows;
  rows.reserve(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    json::object row{{"id", r.id.to_string()},
                     {"data", data[i]},
                     {"search", search_text(collection.schema, data[i])},
                     {"data_bytes", r.data.size()}};
    auto slots = slot_values(collection.schema, data[i]);
    for (std::size_t s = 0; s < kSlots.size(); ++s) {
      if (slots[s]) row[kSlots[s]] = *slots[s];
    }
    rows.push_back(std::move(row));
  }
  Params params(collection.id, collection.org_id, db::Json{json::serialize(rows)},
                collection.schema.evolution().layout, collection.row_version);
  auto inserted = co_await tx.query(kInsertRecords, params);
  if (!inserted) co_return inserted.error();
  if (inserted->empty()) co_return false;
  std::unordered_map<std::string, int> row_of;  // by id
  for (int i = 0; i < inserted->size(); ++i)
    row_of.emplace((*inserted)[i].get<db::Uuid>(0).to_string(), i);
  for (auto& r : records) {
    auto found = row_of.find(r.id.to_string());
    if (found == row_of.end()) co_return make_error(Errc::internal, "a record was not inserted");
    auto row = (*inserted)[found->second];
    r.version = row.get<std::int64_t>(1);
    r.created_at = row.get<db::Timestamp>(2);
    r.updated_at = row.get<db::Timestamp>(3);
  }
  co_return true;
}

asio::awaitable<Result<bool>> RecordStore::update_record(db::Transaction& tx,
                                                         const Collection& collection,
                                                         Record& record, const json::object& data) {
  auto params = stored_form(collection, record, data);
  params.add(record.version);
  auto updated = co_await tx.query(kUpdateRecord, params);
  if (!updated) co_return updated.error();
  if (updated->empty()) co_return false;
  record.version = updated->front().get<std::int64_t>(0);
  record.updated_at = updated->front().get<db::Timestamp>(2);
  co_return true;
}

asio::awaitable<Result<void>> RecordStore::rewrite_record(db::Transaction& tx,
                                                          const Collection& collection,
                                                          const Record& record,
                                                          const json::object& data) {
  co_return co_await tx.execute(kRewriteRecord, stored_form(collection, record, data));
}

asio::awaitable<Result<std::optional<Record>>> RecordStore::lock_record(
    db::Transaction& tx, const Collection& collection, const db::Uuid& id) {
  Params key(collection.id, id, collection.org_id, collection.row_version);
  auto rows = co_await tx.query(kLockRecord, key);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<Record>{};
  co_return record_from(rows->front());
}

asio::awaitable<Result<std::optional<Record>>> RecordStore::delete_record(
    db::Transaction& tx, const Collection& collection, const db::Uuid& id) {
  Params key(collection.id, id, collection.org_id);
  auto rows = co_await tx.query(kDeleteRecord, key);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<Record>{};
  co_return record_from(rows->front());
}

asio::awaitable<Result<std::optional<RecordStore::Found>>> RecordStore::record(
    const db::Scope& scope, std::string_view collection, const db::Uuid& id) {
  Params params(scope.org(), collection, id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kGetRecord, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<Found>{};
  co_return Found{record_from(rows->front()), rows->front().get<std::int32_t>(6)};
}

asio::awaitable<Result<bool>> RecordStore::record_exists(db::Transaction& tx,
                                                         const db::Uuid& org_id,
                                                         std::string_view collection,
                                                         const db::Uuid& id) {
  Params params(org_id, collection, id);
  auto rows = co_await tx.query(kRelationExists, params);
  if (!rows) co_return rows.error();
  co_return !rows->empty();
}

asio::awaitable<Result<std::int64_t>> RecordStore::stored_bytes(const db::Scope& scope,
                                                                std::string_view collection,
                                                                const std::vector<db::Uuid>& ids) {
  json::array mentioned;
  for (const auto& id : ids) mentioned.emplace_back(id.to_string());
  Params params(scope.org(), collection, db::Json{json::serialize(mentioned)});
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kBatchReads, params);
  if (!rows) co_return rows.error();
  co_return rows->front().get<std::int64_t>(0);
}

asio::awaitable<Result<RecordStore::Related>> RecordStore::related(const db::Scope& scope,
                                                                   std::string_view collection,
                                                                   const std::vector<db::Uuid>& ids,
                                                                   std::size_t budget) {
  Related out;
  if (ids.empty()) co_return out;
  Params params(scope.org(), collection, static_cast<std::int64_t>(budget));
  std::string list;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    params.add(ids[i]);
    list += (i ? ", $" : "$") + std::to_string(params.size());
  }
  std::string position = "array_position(ARRAY[" + list + "]::uuid[], r.id)";
  std::string sql =
      "SELECT id, version, created_at, updated_at, data, layout, collection_layout, position, "
      "total, running FROM (SELECT r.id, r.version, r.created_at, r.updated_at, r.data, "
      "r.layout, c.layout AS collection_layout, " +
      position +
      " AS position, count(*) OVER () AS total, sum(coalesce(r.data_bytes, "
      "pg_column_size(r.data))) OVER (ORDER BY " +
      position +
      ") AS running FROM records r JOIN collections c ON c.id = r.collection_id "
      "WHERE c.org_id = $1 AND c.name = $2 AND r.org_id = $1 AND r.id IN (" +
      list + ")) s WHERE running <= $3 OR position = 1 ORDER BY position";
  Statement statement{db::Plane::tenant, "records.expand", sql, false};
  auto rows = co_await db_.query(Intent::read_your_writes, scope, statement, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return out;
  out.records = db::decode_all(*rows, record_from);
  out.collection_layout = rows->front().get<std::int32_t>(6);
  auto last = (*rows)[rows->size() - 1];
  out.bytes = static_cast<std::size_t>(last.get<std::int64_t>(9));
  out.cut = last.get<std::int64_t>(8) > rows->size();
  out.read_up_to = static_cast<std::size_t>(last.get<std::int32_t>(7));
  co_return out;
}

asio::awaitable<Result<RecordStore::Listed>> RecordStore::list(const db::Scope& scope,
                                                               const CompiledQuery& compiled,
                                                               std::int32_t limit,
                                                               std::size_t budget) {
  Statement statement{db::Plane::tenant,     "records.list", compiled.sql, false,
                      compiled.generic_plan, compiled.scans};
  auto rows = co_await db_.query(Intent::read_your_writes, scope, statement, compiled.params);
  if (!rows) co_return rows.error();
  // The page ends where its records pass the budget (the first always fits): the database sent
  // the records within it and, past it, one row without data.
  Listed out;
  const auto sort_columns = static_cast<int>(compiled.sort_columns);
  const int running_column = 6 + sort_columns;
  int n = std::min(rows->size(), limit);
  for (int i = 0; i < n; ++i) {
    auto row = (*rows)[i];
    auto running = static_cast<std::size_t>(row.get<std::int64_t>(running_column));
    if (i > 0 && running > budget) break;
    out.records.push_back(record_from(row));
    out.bytes += out.records.back().data.size();
    std::vector<std::optional<std::string>> values;
    values.reserve(compiled.sort_columns);
    for (int c = 0; c < sort_columns; ++c)
      values.push_back(row.get<std::optional<std::string>>(6 + c));
    out.sort_values.push_back(std::move(values));
  }
  out.more = rows->size() > static_cast<int>(out.records.size());
  co_return out;
}

asio::awaitable<Result<std::int64_t>> RecordStore::count(const db::Scope& scope,
                                                         CompiledQuery compiled, bool estimate) {
  if (estimate) compiled.sql = "EXPLAIN (FORMAT JSON) " + compiled.sql;
  // An estimate reads no rows (the plan's estimate); an exact count reads every match.
  Statement statement{db::Plane::tenant,          "records.count", compiled.sql, false, false,
                      !estimate && compiled.scans};
  auto counted = co_await db_.query(Intent::read_your_writes, scope, statement, compiled.params);
  if (!counted) co_return counted.error();
  if (!estimate) co_return counted->front().get<std::int64_t>(0);
  // The planner's row estimate of the scan under the aggregate: no rows are read.
  auto plan = json::parse(counted->front().get<std::string>(0));
  const auto& top = plan.as_array().at(0).at("Plan");
  const auto& scan = top.as_object().contains("Plans") ? top.at("Plans").as_array().at(0) : top;
  co_return static_cast<std::int64_t>(scan.at("Plan Rows").to_number<double>());
}

}  // namespace liftoff::records
