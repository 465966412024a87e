#include "liftoff/records/service.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <limits>
#include <unordered_map>

#include "liftoff/core/id.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/records/events.hpp"

namespace liftoff::records {
namespace asio = boost::asio;
namespace json = boost::json;
using db::Intent;
using db::Params;
using db::Statement;

namespace {
constexpr Statement kCountCollections{db::Plane::tenant, "records.count_collections",
                                      "SELECT count(*) FROM collections WHERE org_id = $1"};
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
    "SELECT (SELECT last_seq FROM audit_chains WHERE org_id = $1), "
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

#define LIFTOFF_SLOT_VALUES \
  "$5, $6, $7, $8::numeric, $9::numeric, $10::timestamptz, $11::timestamptz, $12, $13"
// Record writes hold their collection (FOR KEY SHARE: a schema change's FOR UPDATE waits for them)
// only while its row is the version the schema was read from ($16 / $4); otherwise they find
// nothing (see RecordService::create_record).
constexpr Statement kInsertRecord{
    db::Plane::tenant, "records.insert",
    "INSERT INTO records (collection_id, id, org_id, data, t1, t2, t3, n1, n2, d1, d2, u1, u2, "
    "search, layout, data_bytes) SELECT $1, $2, $3, $4, " LIFTOFF_SLOT_VALUES
    ", to_tsvector('simple', $14), $15, $17 FROM collections "
    "WHERE id = $1 AND xmin::text::int8 = $16 FOR KEY SHARE "
    "RETURNING version, created_at, updated_at"};
constexpr Statement kUpdateRecord{
    db::Plane::tenant, "records.update",
    "UPDATE records SET data = $4, version = version + 1, updated_at = now(), "
    "(t1, t2, t3, n1, n2, d1, d2, u1, u2) = (" LIFTOFF_SLOT_VALUES
    "), search = to_tsvector('simple', $15), layout = $16, data_bytes = $17 "
    "WHERE collection_id = $1 AND id = $2 AND org_id = $3 AND version = $14 "
    "RETURNING version, created_at, updated_at"};
// A rewrite to the current layout: the stored form changes, the record does not (same version).
constexpr Statement kRewriteRecord{db::Plane::tenant, "records.rewrite",
                                   "UPDATE records SET data = $4, "
                                   "(t1, t2, t3, n1, n2, d1, d2, u1, u2) = (" LIFTOFF_SLOT_VALUES
                                   "), search = to_tsvector('simple', $14), layout = $15, "
                                   "data_bytes = $16 WHERE collection_id = $1 AND id = $2 AND "
                                   "org_id = $3"};
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

// Claims the key (or reclaims one older than 24 h); no row back: the key is taken.
constexpr Statement kClaimIdempotencyKey{
    db::Plane::tenant, "records.claim_idempotency_key",
    "INSERT INTO idempotency_keys (org_id, key, scope, request_hash, status, body) "
    "VALUES ($1, $2, $3, $4, 0, '') ON CONFLICT (org_id, key) DO UPDATE SET "
    "scope = EXCLUDED.scope, request_hash = EXCLUDED.request_hash, status = 0, body = '', "
    "created_at = now() WHERE idempotency_keys.created_at < now() - interval '24 hours' "
    "RETURNING 1"};
constexpr Statement kStoreIdempotentResponse{
    db::Plane::tenant, "records.store_idempotent_response",
    "UPDATE idempotency_keys SET status = $3, body = $4 WHERE org_id = $1 AND key = $2"};
constexpr Statement kIdempotentResponse{
    db::Plane::tenant, "records.idempotent_response",
    "SELECT scope, request_hash, status, body FROM idempotency_keys "
    "WHERE org_id = $1 AND key = $2"};
constexpr Statement kExpireIdempotencyKeys{
    db::Plane::tenant, "records.expire_idempotency_keys",
    "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys "
    "WHERE created_at < now() - interval '24 hours' LIMIT $1)"};
constexpr std::string_view kCreateScope = "POST records";

Error no_collection() {
  return make_error(Errc::not_found, "no such collection");
}
Error no_record() {
  return make_error(Errc::not_found, "no such record");
}

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
void add_slots(Params& params, const Schema& schema, const json::object& data) {
  static constexpr std::string_view kSlots[] = {"t1", "t2", "t3", "n1", "n2",
                                                "d1", "d2", "u1", "u2"};
  for (auto slot : kSlots) {
    std::optional<std::string> value;
    for (const auto& f : schema.fields()) {
      if (f.slot == slot || f.unique_slot == slot) value = slot_text(f, data);
    }
    params.add(value);
  }
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

// A unique-slot violation as a 409 naming the field.
// Single-record writes run first against the collection as this process's schema cache has it,
// without reading it in the transaction: the write's own statement holds the collection only if
// its row is still the version the schema was read from, and finds nothing otherwise (the
// collection changed or went, or, for an update, the record does not exist). The write then runs
// once more against the collection read again under lock, as it does when the cached schema
// rejected the input (a newer schema may accept it), provided nothing failed in the transaction.
template <typename T>
bool retry_locked(const db::Transaction& tx, const Result<std::optional<T>>& written) {
  if (tx.aborted()) return false;
  return written ? !written->has_value() : written.error().code == Errc::validation_failed;
}

Error unique_conflict(const Error& error, const Schema& schema) {
  for (const auto& f : schema.fields()) {
    if (!f.unique_slot.empty() && error.constraint == "records_" + f.unique_slot + "_key") {
      return Error{Errc::conflict,
                   "another record has the same value of a unique field",
                   {{f.name, "must be unique in the collection"}}};
    }
  }
  return error;
}

std::optional<db::Uuid> parse_id(std::string_view text) {
  return db::Uuid::parse(text);
}

json::value merge_patch(json::value target, const json::value& patch) {
  if (!patch.is_object()) return patch;
  if (!target.is_object()) target = json::object{};
  auto& object = target.as_object();
  for (const auto& [key, value] : patch.get_object()) {
    if (value.is_null()) {
      object.erase(key);
    } else {
      auto it = object.find(key);
      object[key] = merge_patch(it == object.end() ? json::value(nullptr) : it->value(), value);
    }
  }
  return target;
}

Error version_moved(std::int64_t version, std::int64_t expected) {
  return make_error(Errc::precondition_failed, "the record changed: it is at version " +
                                                   std::to_string(version) + ", not " +
                                                   std::to_string(expected));
}

// Long CPU work on an event loop, in slices: after every kSlice bytes parsed or written, other
// ready work (other requests on this worker) runs before the next slice, so a request that expands
// megabytes of records delays its neighbours by one slice, not by all of it.
class CpuSlices {
 public:
  asio::awaitable<void> spent(std::size_t bytes) {
    since_yield_ += bytes;
    if (since_yield_ < kSlice) co_return;
    since_yield_ = 0;
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  }

 private:
  static constexpr std::size_t kSlice = 256 * 1024;
  std::size_t since_yield_ = 0;
};

// A collection's key in the schema cache.
std::string schema_key(const db::Uuid& org_id, std::string_view name) {
  return org_id.to_string() + "/" + std::string(name);
}

}  // namespace

json::object collection_json(const Collection& c) {
  return {{"id", c.id.to_string()},
          {"name", c.name},
          {"fields", c.schema.to_json()},
          {"rewriting", c.schema.rewriting()},
          {"created_at", core::format_rfc3339(c.created_at)},
          {"updated_at", core::format_rfc3339(c.updated_at)}};
}

void append_record_json(std::string& out, const Record& r, const std::vector<std::string>* fields) {
  out += R"({"id":")";
  out += r.id.to_string();
  out += R"(","version":)";
  out += std::to_string(r.version);
  out += R"(,"created_at":")";
  out += core::format_rfc3339(r.created_at);
  out += R"(","updated_at":")";
  out += core::format_rfc3339(r.updated_at);
  out += R"(","data":)";
  if (fields) {
    auto all = json::parse(r.data).as_object();
    json::object some;
    for (const auto& f : *fields) {
      if (auto v = all.if_contains(f)) some[f] = *v;
    }
    out += json::serialize(some);
  } else {
    out += r.data;
  }
  out += '}';
}

std::string record_json(const Record& r) {
  std::string out;
  append_record_json(out, r);
  return out;
}

void upgrade(const Schema& schema, std::vector<Record>& records) {
  for (auto& r : records) {
    if (r.layout >= schema.evolution().layout) continue;
    auto data = json::parse(r.data).as_object();
    schema.upgrade(data, r.layout);
    r.data = json::serialize(data);
    r.layout = schema.evolution().layout;
  }
}

asio::awaitable<Result<std::int64_t>> RecordService::org_state(const db::Scope& scope) {
  co_return co_await audit::head(db_, scope);
}

asio::awaitable<Result<Collection>> RecordService::create_collection(const db::Scope& scope,
                                                                     const std::string& name,
                                                                     const json::value& fields) {
  const auto& org_id = scope.org();
  Error invalid{Errc::validation_failed, "the collection is invalid", {}};
  if (!is_identifier(name)) {
    invalid.fields.push_back(
        {"name", "must be an identifier: a-z, then a-z, 0-9 or _ (at most 63)"});
  }
  auto schema = Schema::parse(fields, options_.schema);
  if (!schema) {
    for (auto& f : schema.error().fields) invalid.fields.push_back(f);
  }
  if (!invalid.fields.empty()) co_return invalid;
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  Params org_params(org_id);
  auto count = co_await tx->query(kCountCollections, org_params);
  if (!count) co_return count.error();
  if (static_cast<std::size_t>(count->front().get<std::int64_t>(0)) >= options_.max_collections) {
    co_return make_error(Errc::conflict, "the organization has " +
                                             std::to_string(options_.max_collections) +
                                             " collections, the most it may have");
  }
  Collection c{db::Uuid{core::new_uuid_v7()}, org_id, name, std::move(*schema), {}, {}};
  auto targets = co_await check_relation_targets(*tx, org_id, name, c.schema.fields());
  if (!targets) co_return targets.error();
  Params params(c.id, org_id, name, db::Json{json::serialize(c.schema.to_json())});
  auto inserted = co_await tx->query(kInsertCollection, params);
  if (!inserted) {
    if (inserted.error().code == Errc::conflict)
      co_return make_error(Errc::conflict, "a collection with that name exists");
    co_return inserted.error();
  }
  c.created_at = inserted->front().get<db::Timestamp>(0);
  c.updated_at = inserted->front().get<db::Timestamp>(1);
  audit::Change change{
      "collection.created", "collection", c.id.to_string(), std::nullopt,
      json::serialize(json::object{{"name", name}, {"fields", c.schema.to_json()}})};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  forget(org_id, name);
  co_return c;
}

asio::awaitable<Result<std::vector<Collection>>> RecordService::collections(
    const db::Scope& scope) {
  const auto& org_id = scope.org();
  Params params(org_id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kCollections, params);
  if (!rows) co_return rows.error();
  std::vector<Collection> out;
  for (int i = 0; i < rows->size(); ++i) out.push_back(collection_from((*rows)[i]));
  co_return out;
}

asio::awaitable<Result<std::shared_ptr<const Collection>>> RecordService::collection(
    const db::Scope& scope, std::string_view name, Age age) {
  const auto& org_id = scope.org();
  if (!is_identifier(name)) co_return no_collection();
  auto key = schema_key(org_id, name);
  auto now = SchemaCache::Clock::now();
  auto cached = age == Age::any ? schema_cache_.find(key) : schema_cache_.find(key, now);
  if (cached) co_return cached;
  Params params(org_id, name);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kCollection, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return no_collection();
  auto found = std::make_shared<const Collection>(collection_from(rows->front()));
  schema_cache_.store(key, found, now);
  co_return found;
}

asio::awaitable<Result<RecordService::CollectionState>> RecordService::collection_state(
    const db::Scope& scope, std::string_view name) {
  const auto& org_id = scope.org();
  if (!is_identifier(name)) co_return no_collection();
  Params params(org_id, name);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kCollectionState, params);
  if (!rows) co_return rows.error();
  auto org_state = rows->front().get<std::optional<std::int64_t>>(0);
  auto version = rows->front().get<std::optional<std::int64_t>>(1);
  if (!org_state) co_return make_error(Errc::not_found, "no such organization");
  if (!version) co_return no_collection();
  auto cached = co_await collection(scope, name, Age::any);
  if (!cached) co_return cached.error();
  if ((*cached)->row_version != *version) {  // changed since this process read it
    forget(org_id, name);
    cached = co_await collection(scope, name);
    if (!cached) co_return cached.error();
  }
  co_return CollectionState{std::move(*cached), *org_state};
}

void RecordService::forget(const db::Uuid& org_id, std::string_view name) {
  schema_cache_.forget(schema_key(org_id, name));
}

asio::awaitable<Result<Collection>> RecordService::collection_in(db::Transaction& tx,
                                                                 const db::Uuid& org_id,
                                                                 std::string_view name, Lock lock) {
  if (!is_identifier(name)) co_return no_collection();
  Params params(org_id, name);
  const auto& statement = lock == Lock::share ? kCollectionForShare : kCollectionForUpdate;
  auto rows = co_await tx.query(statement, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return no_collection();
  co_return collection_from(rows->front());
}

asio::awaitable<Result<std::shared_ptr<const Collection>>> RecordService::read_locked(
    db::Transaction& tx, const db::Uuid& org_id, std::string_view name) {
  forget(org_id, name);
  auto locked = co_await collection_in(tx, org_id, name);
  if (!locked) co_return locked.error();
  co_return std::make_shared<const Collection>(std::move(*locked));
}

asio::awaitable<Result<void>> RecordService::check_relation_targets(
    db::Transaction& tx, const db::Uuid& org_id, std::string_view self,
    const std::vector<Field>& fields) {
  Error invalid{Errc::validation_failed, "the collection is invalid", {}};
  for (const auto& f : fields) {
    if (f.type != FieldType::relation || f.collection == self) continue;
    Params target(org_id, f.collection);
    auto found = co_await tx.query(kCollection, target);
    if (!found) co_return found.error();
    if (found->empty())
      invalid.fields.push_back({f.name, "relates to '" + f.collection + "', which does not exist"});
  }
  if (!invalid.fields.empty()) co_return invalid;
  co_return Result<void>{};
}

asio::awaitable<Result<Collection>> RecordService::change_schema(const db::Scope& scope,
                                                                 std::string_view name,
                                                                 const json::object& patch) {
  const auto& org_id = scope.org();
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  auto locked = co_await collection_in(*tx, org_id, name, Lock::update);
  if (!locked) co_return locked.error();
  auto& collection = *locked;
  auto schema = collection.schema.changed(patch, options_.schema);
  if (!schema) co_return schema.error();
  std::vector<Field> added;
  for (const auto& f : schema->fields()) {
    if (!collection.schema.find(f.name) && f.type == FieldType::relation) added.push_back(f);
  }
  auto targets = co_await check_relation_targets(*tx, org_id, name, added);
  if (!targets) co_return targets.error();
  auto before = collection.schema.to_json();
  collection.schema = std::move(*schema);
  auto updated = co_await store_schema(*tx, collection);
  if (!updated) co_return updated.error();
  if (collection.schema.rewriting()) {
    Params schedule(collection.id, collection.schema.evolution().layout);
    auto scheduled = co_await tx->query(kScheduleRewrite, schedule);
    if (!scheduled) co_return scheduled.error();
  }
  audit::Change change{
      "collection.schema_changed", "collection", collection.id.to_string(),
      json::serialize(json::object{{"fields", std::move(before)}}),
      json::serialize(json::object{{"change", patch}, {"fields", collection.schema.to_json()}})};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  forget(org_id, name);
  co_return collection;
}

asio::awaitable<Result<void>> RecordService::store_schema(db::Transaction& tx,
                                                          Collection& collection) {
  Params update(collection.id, db::Json{json::serialize(collection.schema.to_json())},
                collection.schema.evolution().layout,
                db::Json{json::serialize(collection.schema.evolution_json())});
  auto updated = co_await tx.query(kUpdateSchema, update);
  if (!updated) co_return updated.error();
  collection.updated_at = updated->front().get<db::Timestamp>(0);
  co_return Result<void>{};
}

asio::awaitable<Result<std::int64_t>> RecordService::rewrite_some(const db::Scope& scope,
                                                                  std::int32_t limit) {
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  // The claim's row lock makes this process the collection's only rewriter until commit.
  auto claimed = co_await tx->query(kClaimRewrite, Params::none());
  if (!claimed) co_return claimed.error();
  if (claimed->empty()) co_return std::int64_t{0};
  auto collection_id = claimed->front().get<db::Uuid>(0);
  auto layout = claimed->front().get<std::int32_t>(1);
  auto after = claimed->front().get<std::optional<db::Uuid>>(2);
  Params id(collection_id);
  auto rows = co_await tx->query(kCollectionById, id);
  if (!rows) co_return rows.error();
  if (rows->empty()) {  // deleted meanwhile (the cascade removed the claim too)
    auto done = co_await tx->commit();
    if (!done) co_return done.error();
    co_return std::int64_t{0};
  }
  auto collection = collection_from(rows->front());
  const auto& schema = collection.schema;
  if (layout != schema.evolution().layout) after.reset();  // changed again: start over
  Params page(collection_id, schema.evolution().layout, after, limit);
  auto outdated = co_await tx->query(kOutdatedRecords, page);
  if (!outdated) co_return outdated.error();
  std::vector<Record> records;
  for (int i = 0; i < outdated->size(); ++i) records.push_back(record_from((*outdated)[i]));
  for (const auto& r : records) {
    // Every record here is older than the layout: upgrade it, parsing it once.
    auto data = json::parse(r.data).as_object();
    schema.upgrade(data, r.layout);
    auto text = json::serialize(data);
    auto bytes = static_cast<std::int32_t>(text.size());
    Params params(collection_id, r.id, collection.org_id, db::Json{std::move(text)});
    add_slots(params, schema, data);
    params.add(search_text(schema, data));
    params.add(schema.evolution().layout);
    params.add(bytes);
    auto rewritten = co_await tx->query(kRewriteRecord, params);
    if (!rewritten) co_return rewritten.error();
  }
  if (static_cast<std::int32_t>(records.size()) == limit) {
    Params advance(collection_id, schema.evolution().layout, records.back().id);
    auto advanced = co_await tx->query(kAdvanceRewrite, advance);
    if (!advanced) co_return advanced.error();
  } else {
    // The pass is complete: every record is at the current layout (writers since the change
    // wrote it). Settle the schema, holding the collection for a moment.
    auto locked = co_await tx->query(kCollectionByIdForUpdate, id);
    if (!locked) co_return locked.error();
    auto current = collection_from(locked->front());
    if (current.schema.evolution().layout != schema.evolution().layout) {
      Params restart(collection_id, current.schema.evolution().layout, std::optional<db::Uuid>{});
      auto restarted = co_await tx->query(kAdvanceRewrite, restart);
      if (!restarted) co_return restarted.error();
    } else {
      current.schema = current.schema.settled();
      auto stored = co_await store_schema(*tx, current);
      if (!stored) co_return stored.error();
      auto finished = co_await tx->query(kFinishRewrite, id);
      if (!finished) co_return finished.error();
    }
  }
  auto committed = co_await tx->commit();
  if (!committed) co_return committed.error();
  forget(collection.org_id, collection.name);
  co_return static_cast<std::int64_t>(records.size());
}

asio::awaitable<Result<void>> RecordService::delete_collection(const db::Scope& scope,
                                                               std::string_view name) {
  const auto& org_id = scope.org();
  if (!is_identifier(name)) co_return no_collection();
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  Params params(org_id, name);
  auto deleted = co_await tx->query(kDeleteCollection, params);
  if (!deleted) co_return deleted.error();
  if (deleted->empty()) co_return no_collection();
  audit::Change change{"collection.deleted", "collection",
                       deleted->front().get<db::Uuid>(0).to_string(),
                       json::serialize(json::object{{"name", name}}), std::nullopt};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  forget(org_id, name);
  co_return Result<void>{};
}

asio::awaitable<Result<void>> RecordService::check_relations(db::Transaction& tx,
                                                             const db::Uuid& org_id,
                                                             const Schema& schema,
                                                             const json::object& data) {
  Error invalid{Errc::validation_failed, "the record is invalid", {}};
  for (const auto& f : schema.fields()) {
    if (f.type != FieldType::relation) continue;
    auto v = data.if_contains(f.name);
    if (!v || !v->is_string()) continue;
    auto target = parse_id(v->get_string());
    bool exists = false;
    if (target) {
      Params params(org_id, f.collection, *target);
      auto rows = co_await tx.query(kRelationExists, params);
      if (!rows) co_return rows.error();
      exists = !rows->empty();
    }
    if (!exists)
      invalid.fields.push_back({f.name, "is not a record of collection '" + f.collection + "'"});
  }
  if (!invalid.fields.empty()) co_return invalid;
  co_return Result<void>{};
}

asio::awaitable<Result<StoredResponse>> RecordService::create_record(
    const db::Scope& scope, std::string_view collection_name, const json::object& data,
    const std::optional<Idempotency>& idempotency) {
  const auto& org_id = scope.org();
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  if (idempotency) {
    Params claim(org_id, idempotency->key, kCreateScope, db::Bytes{idempotency->request_hash});
    auto claimed = co_await tx->query(kClaimIdempotencyKey, claim);
    if (!claimed) co_return claimed.error();
    if (claimed->empty()) {
      // Used within 24 h (its transaction committed: the insert waited for it): replay.
      auto rolled_back = co_await tx->rollback();
      if (!rolled_back) co_return rolled_back.error();
      Params lookup(org_id, idempotency->key);
      auto rows = co_await db_.query(Intent::write, scope, kIdempotentResponse, lookup);
      if (!rows) co_return rows.error();
      if (rows->empty()) co_return make_error(Errc::retryable, "the idempotency key is in flux");
      auto row = rows->front();
      if (row.get<std::string>(0) != kCreateScope ||
          row.get<db::Bytes>(1).data != idempotency->request_hash) {
        co_return Error{
            Errc::validation_failed,
            "the Idempotency-Key was used with a different request",
            {{"Idempotency-Key", "was used with a different request in the last 24 h"}}};
      }
      co_return StoredResponse{row.get<std::int32_t>(2), row.get<std::string>(3), true};
    }
  }
  // The write goes out against the collection as this process last read it, in the round trip
  // that begins the transaction; see retry_locked() for when it runs again.
  auto collection = co_await this->collection(scope, collection_name, Age::any);
  if (!collection) co_return collection.error();
  auto inserted = co_await insert_in(*tx, **collection, data);
  if (retry_locked(*tx, inserted)) {
    collection = co_await read_locked(*tx, org_id, collection_name);
    if (!collection) co_return collection.error();
    inserted = co_await insert_in(*tx, **collection, data);
  }
  if (!inserted) co_return inserted.error();
  if (!*inserted) co_return make_error(Errc::internal, "the collection changed while locked");
  auto& record = **inserted;
  StoredResponse response{201, record_json(record), false};
  audit::Change change{"record.created", (*collection)->name, record.id.to_string(), std::nullopt,
                       audit::bounded_value(response.body, options_.audit_value_limit)};
  if (idempotency) {
    Params store(org_id, idempotency->key, static_cast<std::int32_t>(response.status),
                 response.body);
    auto stored = co_await tx->query(kStoreIdempotentResponse, store);
    if (!stored) co_return stored.error();
  }
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  published(org_id, event->seq);
  co_return response;
}

asio::awaitable<Result<Record>> RecordService::record(const db::Scope& scope,
                                                      std::string_view collection,
                                                      std::string_view id_text) {
  const auto& org_id = scope.org();
  auto id = parse_id(id_text);
  if (!id || !is_identifier(collection)) co_return no_record();
  if (auto within = admit_read(org_id); !within) co_return within.error();
  Params params(org_id, collection, *id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kGetRecord, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return no_record();
  std::vector<Record> one{record_from(rows->front())};
  charge_read(org_id, one.front().data.size());
  auto current = co_await bring_current(scope, collection, one, rows->front().get<std::int32_t>(6));
  if (!current) co_return current.error();
  co_return std::move(one.front());
}

asio::awaitable<Result<void>> RecordService::bring_current(const db::Scope& scope,
                                                           std::string_view name,
                                                           std::vector<Record>& records,
                                                           std::int32_t layout) {
  const auto& org_id = scope.org();
  bool outdated = std::any_of(records.begin(), records.end(),
                              [&](const Record& r) { return r.layout < layout; });
  if (!outdated) co_return Result<void>{};
  auto collection = co_await this->collection(scope, name);
  if (collection && (*collection)->schema.evolution().layout < layout) {
    forget(org_id, name);  // the cache predates the change these records are older than
    collection = co_await this->collection(scope, name);
  }
  if (!collection) co_return collection.error();
  upgrade((*collection)->schema, records);
  co_return Result<void>{};
}

asio::awaitable<Result<std::optional<Record>>> RecordService::insert_in(
    db::Transaction& tx, const Collection& collection, const json::object& data) {
  auto valid = validate_record(collection.schema, data);
  if (!valid) co_return valid.error();
  auto related = co_await check_relations(tx, collection.org_id, collection.schema, *valid);
  if (!related) co_return related.error();
  Record record{db::Uuid{core::new_uuid_v7()}, 1, {}, {}, json::serialize(*valid)};
  record.layout = collection.schema.evolution().layout;
  Params params(collection.id, record.id, collection.org_id, db::Json{record.data});
  add_slots(params, collection.schema, *valid);
  params.add(search_text(collection.schema, *valid));
  params.add(record.layout);
  params.add(collection.row_version);
  params.add(static_cast<std::int32_t>(record.data.size()));
  auto inserted = co_await tx.query(kInsertRecord, params);
  if (!inserted) {
    if (inserted.error().code == Errc::conflict)
      co_return unique_conflict(inserted.error(), collection.schema);
    co_return inserted.error();
  }
  if (inserted->empty()) co_return std::optional<Record>{};  // the collection is not as read
  record.version = inserted->front().get<std::int64_t>(0);
  record.created_at = inserted->front().get<db::Timestamp>(1);
  record.updated_at = inserted->front().get<db::Timestamp>(2);
  co_return record;
}

asio::awaitable<Result<std::optional<RecordChange>>> RecordService::update_in(
    db::Transaction& tx, const Collection& collection, const db::Uuid& id, const json::object& data,
    bool merge, std::optional<std::int64_t> if_match) {
  Params key(collection.id, id, collection.org_id, collection.row_version);
  auto current = co_await tx.query(kLockRecord, key);
  if (!current) co_return current.error();
  if (current->empty()) co_return std::optional<RecordChange>{};
  std::vector<Record> previous{record_from(current->front())};
  upgrade(collection.schema, previous);
  RecordChange change{previous.front(), std::nullopt};
  auto record = *change.previous;
  if (if_match && *if_match != record.version) co_return version_moved(record.version, *if_match);
  json::object next = merge ? merge_patch(json::parse(record.data), data).as_object() : data;
  auto valid = validate_record(collection.schema, next);
  if (!valid) co_return valid.error();
  auto related = co_await check_relations(tx, collection.org_id, collection.schema, *valid);
  if (!related) co_return related.error();
  record.data = json::serialize(*valid);
  record.layout = collection.schema.evolution().layout;
  Params params(collection.id, id, collection.org_id, db::Json{record.data});
  add_slots(params, collection.schema, *valid);
  params.add(record.version);
  params.add(search_text(collection.schema, *valid));
  params.add(record.layout);
  params.add(static_cast<std::int32_t>(record.data.size()));
  auto updated = co_await tx.query(kUpdateRecord, params);
  if (!updated) {
    if (updated.error().code == Errc::conflict)
      co_return unique_conflict(updated.error(), collection.schema);
    co_return updated.error();
  }
  if (updated->empty()) co_return no_record();  // cannot happen: the row is locked
  record.version = updated->front().get<std::int64_t>(0);
  record.updated_at = updated->front().get<db::Timestamp>(2);
  change.record = std::move(record);
  co_return std::optional<RecordChange>{std::move(change)};
}

asio::awaitable<Result<Record>> RecordService::delete_in(db::Transaction& tx,
                                                         const Collection& collection,
                                                         const db::Uuid& id,
                                                         std::optional<std::int64_t> if_match) {
  Params key(collection.id, id, collection.org_id);
  if (if_match) {
    Params locking(collection.id, id, collection.org_id, collection.row_version);
    auto current = co_await tx.query(kLockRecord, locking);
    if (!current) co_return current.error();
    if (current->empty()) co_return no_record();
    auto version = current->front().get<std::int64_t>(1);
    if (version != *if_match) co_return version_moved(version, *if_match);
  }
  auto deleted = co_await tx.query(kDeleteRecord, key);
  if (!deleted) co_return deleted.error();
  if (deleted->empty()) co_return no_record();
  std::vector<Record> previous{record_from(deleted->front())};
  upgrade(collection.schema, previous);
  co_return std::move(previous.front());
}

asio::awaitable<Result<Record>> RecordService::update_record(const db::Scope& scope,
                                                             std::string_view collection_name,
                                                             std::string_view id_text,
                                                             const json::object& data, bool merge,
                                                             std::optional<std::int64_t> if_match) {
  const auto& org_id = scope.org();
  auto id = parse_id(id_text);
  if (!id) co_return no_record();
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  // As create_record: against the collection as last read, again under lock when retry_locked().
  auto collection = co_await this->collection(scope, collection_name, Age::any);
  if (!collection) co_return collection.error();
  auto updated = co_await update_in(*tx, **collection, *id, data, merge, if_match);
  if (retry_locked(*tx, updated)) {
    collection = co_await read_locked(*tx, org_id, collection_name);
    if (!collection) co_return collection.error();
    updated = co_await update_in(*tx, **collection, *id, data, merge, if_match);
  }
  if (!updated) co_return updated.error();
  if (!*updated) co_return no_record();
  auto& done = **updated;
  audit::Change change{
      "record.updated", (*collection)->name, id->to_string(),
      audit::bounded_value(record_json(*done.previous), options_.audit_value_limit),
      audit::bounded_value(record_json(*done.record), options_.audit_value_limit)};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  published(org_id, event->seq);
  co_return std::move(*done.record);
}

asio::awaitable<Result<void>> RecordService::delete_record(const db::Scope& scope,
                                                           std::string_view collection_name,
                                                           std::string_view id_text,
                                                           std::optional<std::int64_t> if_match) {
  const auto& org_id = scope.org();
  auto id = parse_id(id_text);
  if (!id) co_return no_record();
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  auto collection = co_await collection_in(*tx, org_id, collection_name);
  if (!collection) co_return collection.error();
  auto previous = co_await delete_in(*tx, *collection, *id, if_match);
  if (!previous) co_return previous.error();
  audit::Change change{"record.deleted", collection->name, id->to_string(),
                       audit::bounded_value(record_json(*previous), options_.audit_value_limit),
                       std::nullopt};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  published(org_id, event->seq);
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<BatchResult>>> RecordService::batch(
    const db::Scope& scope, std::string_view collection_name,
    const std::vector<BatchOperation>& operations, bool echo) {
  const auto& org_id = scope.org();
  auto failed_at = [](std::size_t index, const Error& error) {
    Error out{
        error.code == Errc::validation_failed ? Errc::validation_failed : error.code,
        "operation " + std::to_string(index) + " failed; nothing was applied: " + error.detail,
        {}};
    for (const auto& f : error.fields)
      out.fields.push_back({"operations[" + std::to_string(index) + "]." + f.field, f.message});
    if (out.fields.empty())
      out.fields.push_back({"operations[" + std::to_string(index) + "]", error.detail});
    return out;
  };
  // Past request_budget: 413 naming `operations`, nothing applied.
  auto too_large = [](std::string detail, std::string hint) {
    return Error{Errc::payload_too_large, std::move(detail), {{"operations", std::move(hint)}}};
  };
  if (auto within = admit_read(org_id); !within) co_return within.error();
  // Refused up front when what it would read and write is already past the budget: the records
  // its updates and deletes name (a merge patch writes about as much again) and what its creates
  // and replacements bring.
  std::size_t expected = 0;
  json::array mentioned;
  for (const auto& op : operations) {
    if (op.kind != BatchOperation::Kind::remove) expected += json::serialize(op.data).size();
    if (op.kind == BatchOperation::Kind::create) continue;
    mentioned.emplace_back(op.id.to_string());  // read (and, for a merge patch, written again)
    if (op.kind == BatchOperation::Kind::update && op.merge)
      mentioned.emplace_back(op.id.to_string());
  }
  if (!mentioned.empty()) {
    Params params(org_id, collection_name, db::Json{json::serialize(mentioned)});
    auto reads = co_await db_.query(Intent::read_your_writes, scope, kBatchReads, params);
    if (!reads) co_return reads.error();
    expected += static_cast<std::size_t>(reads->front().get<std::int64_t>(0));
  }
  if (expected > options_.request_budget) {
    charge_read(org_id, options_.request_budget);  // a refusal costs what the largest batch may
    co_return too_large("the batch would read and write about " + std::to_string(expected) +
                            " bytes of record data, more than request_budget (" +
                            std::to_string(options_.request_budget) + "); nothing was applied",
                        "split the batch into smaller ones");
  }
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  auto collection = co_await collection_in(*tx, org_id, collection_name);
  if (!collection) co_return collection.error();
  // What can be checked without the database is checked for every operation first, so one answer
  // names every invalid item.
  Error invalid{Errc::validation_failed, "the batch is invalid; nothing was applied", {}};
  for (std::size_t i = 0; i < operations.size(); ++i) {
    const auto& op = operations[i];
    if (op.kind == BatchOperation::Kind::update && op.merge) continue;  // needs the stored record
    if (op.kind == BatchOperation::Kind::remove) continue;
    auto valid = validate_record(collection->schema, op.data);
    if (!valid) {
      for (const auto& f : failed_at(i, valid.error()).fields) invalid.fields.push_back(f);
    }
  }
  if (!invalid.fields.empty()) co_return invalid;

  // The record data the batch reads and writes counts against the request budget, so one batch
  // over a few large records cannot hold the process's memory or the database for long: beyond
  // it the transaction rolls back.
  std::size_t touched = 0;
  // The audit event lists every change in order, as the single-record events describe theirs; the
  // event's bound is shared among the records it lists.
  const std::size_t share = options_.audit_value_limit / (2 * operations.size());
  std::vector<BatchResult> results;
  results.reserve(operations.size());
  std::string changes = R"({"changes":[)";
  auto add_change = [&](std::string_view op, const Record* previous, const Record* record) {
    if (changes.back() != '[') changes += ',';
    changes += R"({"op":")";
    changes += op;
    changes += '"';
    if (previous)
      changes += R"(,"previous":)" + audit::bounded_value(record_json(*previous), share);
    if (record) changes += R"(,"record":)" + audit::bounded_value(record_json(*record), share);
    changes += '}';
  };
  for (std::size_t i = 0; i < operations.size(); ++i) {
    const auto& op = operations[i];
    BatchResult result;
    std::string_view kind;
    std::optional<Record> before;  // updates and deletes
    std::optional<Record> after;   // creates and updates
    if (op.kind == BatchOperation::Kind::create) {
      auto record = co_await insert_in(*tx, *collection, op.data);
      if (!record) co_return failed_at(i, record.error());
      if (!*record) co_return make_error(Errc::internal, "the collection changed while locked");
      after = std::move(**record);
      result.status = 201;
      kind = kCreated;
    } else if (op.kind == BatchOperation::Kind::update) {
      auto change = co_await update_in(*tx, *collection, op.id, op.data, op.merge, op.if_match);
      if (!change) co_return failed_at(i, change.error());
      if (!*change) co_return failed_at(i, no_record());
      before = std::move((*change)->previous);
      after = std::move((*change)->record);
      result.status = 200;
      kind = kUpdated;
    } else {
      auto removed = co_await delete_in(*tx, *collection, op.id, op.if_match);
      if (!removed) co_return failed_at(i, removed.error());
      before = std::move(*removed);
      result.status = 204;
      result.id = before->id;
      kind = kDeleted;
    }
    touched += (before ? before->data.size() : 0) + (after ? after->data.size() : 0);
    if (touched > options_.request_budget) {
      charge_read(org_id, touched);
      co_return too_large(
          "the batch reads and writes more than " + std::to_string(options_.request_budget) +
              " bytes of record data (request_budget); nothing was applied",
          "split the batch: operations before [" + std::to_string(i) + "] fit in one request");
    }
    add_change(kind, before ? &*before : nullptr, after ? &*after : nullptr);
    if (after) {
      result.id = after->id;
      result.version = after->version;
      if (echo) result.record = std::move(after);
    }
    results.push_back(std::move(result));
  }
  changes += "]}";
  charge_read(org_id, touched);
  audit::Change change{"records.batch", collection->name, collection->id.to_string(), std::nullopt,
                       std::move(changes)};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  published(org_id, event->seq);
  co_return results;
}

std::chrono::milliseconds RecordService::read_wait(const db::Uuid& org_id) {
  return read_rate_.wait(org_id.to_string());
}

Result<void> RecordService::admit_read(const db::Uuid& org_id) {
  auto wait = read_wait(org_id);
  if (wait.count() == 0) return {};
  auto error = make_error(Errc::too_many_requests,
                          "this organization has read more data than org_read_rate allows on this "
                          "server; retry after the Retry-After seconds");
  error.retry_after = std::chrono::ceil<std::chrono::seconds>(wait);
  return error;
}

void RecordService::charge_read(const db::Uuid& org_id, std::size_t bytes) {
  read_rate_.spend(org_id.to_string(), bytes);
}

void RecordService::published(const db::Uuid& org_id, std::int64_t seq) {
  if (options_.on_published) options_.on_published(org_id, seq);
}

asio::awaitable<Result<std::int64_t>> RecordService::expire_idempotency_keys(const db::Scope& scope,
                                                                             std::int64_t limit) {
  Params params(limit);
  auto rows = co_await db_.query(Intent::write, scope, kExpireIdempotencyKeys, params);
  if (!rows) co_return rows.error();
  co_return rows->affected();
}

asio::awaitable<Result<std::size_t>> RecordService::expand(const db::Scope& scope,
                                                           const Schema& schema,
                                                           const std::vector<std::string>& fields,
                                                           std::vector<Record>& records,
                                                           std::size_t budget) {
  const auto& org_id = scope.org();
  if (records.empty() || fields.empty()) co_return records.size();
  CpuSlices slices;
  std::vector<json::object> parsed;
  parsed.reserve(records.size());
  for (const auto& r : records) {
    parsed.push_back(json::parse(r.data).as_object());
    co_await slices.spent(r.data.size());
  }
  std::size_t fit = records.size();  // records whose every related record was read
  for (const auto& name : fields) {
    const auto* field = schema.find(name);
    if (!field || field->type != FieldType::relation) {
      co_return Error{Errc::bad_request,
                      "invalid query parameter",
                      {{"expand", "'" + name + "' is not a relation field"}}};
    }
    // The related ids in the order the records first name them.
    std::vector<db::Uuid> ids;
    std::vector<std::size_t> id_of_record(fit, std::numeric_limits<std::size_t>::max());
    for (std::size_t i = 0; i < fit; ++i) {
      auto v = parsed[i].if_contains(name);
      auto id = v && v->is_string() ? parse_id(v->get_string()) : std::nullopt;
      if (!id) continue;
      auto at = std::find(ids.begin(), ids.end(), *id);
      id_of_record[i] = static_cast<std::size_t>(at - ids.begin());
      if (at == ids.end()) ids.push_back(*id);
    }
    std::unordered_map<std::string, json::value> related;
    if (!ids.empty()) {
      // Related records in that order while their running size stays within the budget (the
      // first always): nothing past the budget leaves the database.
      Params params(org_id, field->collection, static_cast<std::int64_t>(budget));
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
      std::vector<Record> found;
      for (int i = 0; i < rows->size(); ++i) found.push_back(record_from((*rows)[i]));
      if (!found.empty()) {
        auto current = co_await bring_current(scope, field->collection, found,
                                              rows->front().get<std::int32_t>(6));
        if (!current) co_return current.error();
        auto last = (*rows)[rows->size() - 1];
        auto spent = static_cast<std::size_t>(last.get<std::int64_t>(9));
        charge_read(org_id, spent);
        budget = spent < budget ? budget - spent : 0;
        if (last.get<std::int64_t>(8) > rows->size()) {
          // Cut short: records naming an id past the last one read end the answer.
          auto read_up_to = static_cast<std::size_t>(last.get<std::int32_t>(7));  // 1-based
          for (std::size_t i = 0; i < fit; ++i) {
            if (id_of_record[i] != std::numeric_limits<std::size_t>::max() &&
                id_of_record[i] >= read_up_to) {
              fit = std::max<std::size_t>(i, 1);
              break;
            }
          }
        }
      }
      for (const auto& r : found) {
        related.emplace(r.id.to_string(), json::parse(record_json(r)));
        co_await slices.spent(r.data.size());
      }
    }
    for (std::size_t i = 0; i < fit; ++i) {
      auto v = parsed[i].if_contains(name);
      if (!v || !v->is_string()) continue;
      auto it = related.find(std::string(v->get_string()));
      *v = it == related.end() ? json::value(nullptr) : it->second;
    }
  }
  records.resize(fit);
  for (std::size_t i = 0; i < fit; ++i) {
    records[i].data = json::serialize(parsed[i]);
    co_await slices.spent(records[i].data.size());
  }
  co_return fit;
}

asio::awaitable<Result<Page>> RecordService::list_records(const db::Scope& scope,
                                                          const Collection& collection,
                                                          const ListRequest& request,
                                                          CountMode count,
                                                          const std::vector<std::string>& expand) {
  if (auto within = admit_read(collection.org_id); !within) co_return within.error();
  auto budget = page_budget();
  auto compiled =
      compile_list(collection.schema, collection.id, collection.org_id, request, budget);
  if (!compiled) co_return compiled.error();
  Statement statement{db::Plane::tenant, "records.list", compiled->sql, false,
                      compiled->generic_plan};
  auto rows = co_await db_.query(Intent::read_your_writes, scope, statement, compiled->params);
  if (!rows) co_return rows.error();
  Page page;
  // The page ends where its records pass the budget (the first always fits): the database sent
  // the records within it and, past it, one row without data.
  auto running_column = static_cast<int>(6 + compiled->sort_columns);
  std::size_t bytes = 0;
  int n = std::min(rows->size(), request.limit);
  for (int i = 0; i < n; ++i) {
    auto row = (*rows)[i];
    auto running = static_cast<std::size_t>(row.get<std::int64_t>(running_column));
    if (i > 0 && running > budget) break;
    page.records.push_back(record_from(row));
    bytes += page.records.back().data.size();
  }
  upgrade(collection.schema, page.records);
  charge_read(collection.org_id, bytes);
  if (!expand.empty()) {
    auto left = bytes < budget ? budget - bytes : 0;
    auto fit = co_await this->expand(scope, collection.schema, expand, page.records, left);
    if (!fit) co_return fit.error();
  }
  auto kept = static_cast<int>(page.records.size());
  if (rows->size() > kept && kept > 0) {
    std::vector<std::optional<std::string>> values;
    auto last = (*rows)[kept - 1];
    for (std::size_t c = 0; c < compiled->sort_columns; ++c)
      values.push_back(last.get<std::optional<std::string>>(static_cast<int>(6 + c)));
    page.next_cursor = make_cursor(request.sort, values);
  }
  if (count != CountMode::none) {
    auto counting = compile_count(collection.schema, collection.id, collection.org_id,
                                  request.filter, request.q);
    if (!counting) co_return counting.error();
    if (count == CountMode::estimate) counting->sql = "EXPLAIN (FORMAT JSON) " + counting->sql;
    Statement count_statement{db::Plane::tenant, "records.count", counting->sql, false};
    auto counted = co_await db_.query(Intent::read, scope, count_statement, counting->params);
    if (!counted) co_return counted.error();
    if (count == CountMode::exact) {
      page.count = counted->front().get<std::int64_t>(0);
    } else {
      // The planner's row estimate of the scan under the aggregate: no rows are read.
      auto plan = json::parse(counted->front().get<std::string>(0));
      const auto& top = plan.as_array().at(0).at("Plan");
      const auto& scan = top.as_object().contains("Plans") ? top.at("Plans").as_array().at(0) : top;
      page.count = static_cast<std::int64_t>(scan.at("Plan Rows").to_number<double>());
    }
  }
  co_return page;
}

}  // namespace liftoff::records
