#include "liftoff/records/service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <limits>
#include <unordered_map>

#include "liftoff/core/id.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/records/events.hpp"
#include "liftoff/trace/span.hpp"

namespace liftoff::records {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {
Error no_collection() {
  return make_error(Errc::not_found, "no such collection");
}
Error no_record() {
  return make_error(Errc::not_found, "no such record");
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

// Operation `index` of a batch failed: the error with its fields under operations[index].
Error batch_failed_at(std::size_t index, const Error& error) {
  Error out{error.code,
            "operation " + std::to_string(index) + " failed; nothing was applied: " + error.detail,
            {}};
  for (const auto& f : error.fields)
    out.fields.push_back({"operations[" + std::to_string(index) + "]." + f.field, f.message});
  if (out.fields.empty())
    out.fields.push_back({"operations[" + std::to_string(index) + "]", error.detail});
  return out;
}

// A record about to be created in `collection` with (valid) `data`.
Record new_record(const Collection& collection, const json::object& data) {
  Record record{db::Uuid{core::new_uuid_v7()}, 1, {}, {}, json::serialize(data)};
  record.layout = collection.schema.evolution().layout;
  return record;
}

}  // namespace

audit::Change RecordService::record_change(const std::string& collection, const Record* before,
                                           const Record* after) const {
  auto bounded = [&](const Record* r) -> std::optional<std::string> {
    if (!r) return std::nullopt;
    return audit::bounded_value(record_json(*r), options_.audit_value_limit);
  };
  std::string action = !before ? "record.created" : after ? "record.updated" : "record.deleted";
  return audit::Change{std::move(action), collection, (after ? after : before)->id.to_string(),
                       bounded(before), bounded(after)};
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
  co_return co_await audit::committed(db_, scope);
}

asio::awaitable<Result<std::int64_t>> RecordService::events_head(const db::Scope& scope) {
  co_return co_await audit::head(db_, scope);
}

asio::awaitable<Result<Collection>> RecordService::create_collection(
    const db::Scope& scope, const std::string& name, const json::value& fields,
    const plans::Allowance& allowance) {
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
  auto count = co_await store_.count_collections(*tx, org_id);
  if (!count) co_return count.error();
  if (*count >= allowance.value) {
    co_return allowance.reached("the organization has " + std::to_string(*count) +
                                " collections, what its plan allows");
  }
  if (static_cast<std::size_t>(*count) >= options_.max_collections) {
    co_return make_error(Errc::conflict, "the organization has " +
                                             std::to_string(options_.max_collections) +
                                             " collections, the most it may have");
  }
  Collection c{db::Uuid{core::new_uuid_v7()}, org_id, name, std::move(*schema), {}, {}};
  auto targets = co_await check_relation_targets(*tx, org_id, name, c.schema.fields());
  if (!targets) co_return targets.error();
  auto inserted = co_await store_.insert_collection(*tx, c);
  if (!inserted) {
    if (inserted.error().code == Errc::conflict)
      co_return make_error(Errc::conflict, "a collection with that name exists");
    co_return inserted.error();
  }
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
  co_return co_await store_.collections(scope);
}

asio::awaitable<Result<std::shared_ptr<const Collection>>> RecordService::collection(
    const db::Scope& scope, std::string_view name, Age age) {
  const auto& org_id = scope.org();
  if (!is_identifier(name)) co_return no_collection();
  auto key = schema_key(org_id, name);
  auto now = SchemaCache::Clock::now();
  auto cached = age == Age::any ? schema_cache_.find(key) : schema_cache_.find(key, now);
  if (cached) co_return cached;
  auto read = co_await store_.collection(scope, name);
  if (!read) co_return read.error();
  if (!*read) co_return no_collection();
  auto found = std::make_shared<const Collection>(std::move(**read));
  schema_cache_.store(key, found, now);
  co_return found;
}

asio::awaitable<Result<RecordService::CollectionState>> RecordService::collection_state(
    const db::Scope& scope, std::string_view name) {
  const auto& org_id = scope.org();
  if (!is_identifier(name)) co_return no_collection();
  auto state = co_await store_.collection_state(scope, name);
  if (!state) co_return state.error();
  if (!state->org_state) co_return make_error(Errc::not_found, "no such organization");
  if (!state->row_version) co_return no_collection();
  auto cached = co_await collection(scope, name, Age::any);
  if (!cached) co_return cached.error();
  if ((*cached)->row_version != *state->row_version) {  // changed since this process read it
    forget(org_id, name);
    cached = co_await collection(scope, name);
    if (!cached) co_return cached.error();
  }
  co_return CollectionState{std::move(*cached), *state->org_state};
}

void RecordService::forget(const db::Uuid& org_id, std::string_view name) {
  schema_cache_.forget(schema_key(org_id, name));
}

asio::awaitable<Result<Collection>> RecordService::collection_in(db::Transaction& tx,
                                                                 const db::Uuid& org_id,
                                                                 std::string_view name,
                                                                 RecordStore::Lock lock) {
  if (!is_identifier(name)) co_return no_collection();
  auto found = co_await store_.collection(tx, org_id, name, lock);
  if (!found) co_return found.error();
  if (!*found) co_return no_collection();
  co_return std::move(**found);
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
    auto found = co_await store_.collection(tx, org_id, f.collection, RecordStore::Lock::none);
    if (!found) co_return found.error();
    if (!*found)
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
  auto locked = co_await collection_in(*tx, org_id, name, RecordStore::Lock::update);
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
  auto updated = co_await store_.store_schema(*tx, collection);
  if (!updated) co_return updated.error();
  if (collection.schema.rewriting()) {
    auto scheduled = co_await store_.schedule_rewrite(*tx, collection);
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

asio::awaitable<Result<void>> RecordService::delete_collection(const db::Scope& scope,
                                                               std::string_view name) {
  const auto& org_id = scope.org();
  if (!is_identifier(name)) co_return no_collection();
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  auto deleted = co_await store_.delete_collection(*tx, org_id, name);
  if (!deleted) co_return deleted.error();
  if (!*deleted) co_return no_collection();
  audit::Change change{"collection.deleted", "collection", (*deleted)->to_string(),
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
      auto found = co_await store_.record_exists(tx, org_id, f.collection, *target);
      if (!found) co_return found.error();
      exists = *found;
    }
    if (!exists)
      invalid.fields.push_back({f.name, "is not a record of collection '" + f.collection + "'"});
  }
  if (!invalid.fields.empty()) co_return invalid;
  co_return Result<void>{};
}

asio::awaitable<Result<StoredResponse>> RecordService::create_record(
    const db::Scope& scope, std::string_view collection_name, const json::object& data,
    const std::optional<Idempotency>& idempotency, const Result<void>& within_plan) {
  const auto& org_id = scope.org();
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  if (idempotency) {
    auto used = co_await claim_idempotency_key(db_, *tx, scope, *idempotency);
    if (!used) co_return used.error();
    if (*used) co_return std::move(**used);
  }
  if (!within_plan) co_return within_plan.error();
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
  auto change = record_change((*collection)->name, nullptr, &record);
  if (idempotency) {
    auto stored = co_await store_idempotent_response(*tx, org_id, *idempotency, response);
    if (!stored) co_return stored.error();
  }
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  written(org_id, {1, static_cast<std::int64_t>(record.data.size())});
  co_return response;
}

asio::awaitable<Result<Record>> RecordService::record(const db::Scope& scope,
                                                      std::string_view collection,
                                                      std::string_view id_text,
                                                      const std::vector<std::string>& expand) {
  const auto& org_id = scope.org();
  auto id = parse_id(id_text);
  if (!id || !is_identifier(collection)) co_return no_record();
  if (auto within = admit_read(org_id); !within) co_return within.error();
  auto found = co_await store_.record(scope, collection, *id);
  if (!found) co_return found.error();
  if (!*found) co_return no_record();
  std::vector<Record> one{std::move((*found)->record)};
  charge_read(org_id, one.front().data.size());
  auto current = co_await bring_current(scope, collection, one, (*found)->collection_layout);
  if (!current) co_return current.error();
  if (!expand.empty()) {
    auto schema = co_await this->collection(scope, collection);
    if (!schema) co_return schema.error();
    auto budget = page_budget();
    auto expanded = co_await this->expand(scope, (*schema)->schema, expand, one,
                                          budget - std::min(budget, one.front().data.size()));
    if (!expanded) co_return expanded.error();
  }
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
  auto record = new_record(collection, *valid);
  auto inserted = co_await store_.insert_record(tx, collection, record, *valid);
  if (!inserted) {
    if (inserted.error().code == Errc::conflict)
      co_return unique_conflict(inserted.error(), collection.schema);
    co_return inserted.error();
  }
  if (!*inserted) co_return std::optional<Record>{};  // the collection is not as read
  co_return record;
}

asio::awaitable<Result<std::optional<RecordChange>>> RecordService::update_in(
    db::Transaction& tx, const Collection& collection, const db::Uuid& id, const json::object& data,
    bool merge, std::optional<std::int64_t> if_match) {
  auto current = co_await store_.lock_record(tx, collection, id);
  if (!current) co_return current.error();
  if (!*current) co_return std::optional<RecordChange>{};
  std::vector<Record> previous{std::move(**current)};
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
  auto updated = co_await store_.update_record(tx, collection, record, *valid);
  if (!updated) {
    if (updated.error().code == Errc::conflict)
      co_return unique_conflict(updated.error(), collection.schema);
    co_return updated.error();
  }
  if (!*updated) co_return no_record();  // cannot happen: the row is locked
  change.record = std::move(record);
  co_return std::optional<RecordChange>{std::move(change)};
}

asio::awaitable<Result<Record>> RecordService::delete_in(db::Transaction& tx,
                                                         const Collection& collection,
                                                         const db::Uuid& id,
                                                         std::optional<std::int64_t> if_match) {
  if (if_match) {
    auto current = co_await store_.lock_record(tx, collection, id);
    if (!current) co_return current.error();
    if (!*current) co_return no_record();
    auto version = (*current)->version;
    if (version != *if_match) co_return version_moved(version, *if_match);
  }
  auto deleted = co_await store_.delete_record(tx, collection, id);
  if (!deleted) co_return deleted.error();
  if (!*deleted) co_return no_record();
  std::vector<Record> previous{std::move(**deleted)};
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
  auto change = record_change((*collection)->name, &*done.previous, &*done.record);
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  written(org_id, {0, static_cast<std::int64_t>(done.record->data.size()) -
                          static_cast<std::int64_t>(done.previous->data.size())});
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
  auto change = record_change(collection->name, &*previous, nullptr);
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  written(org_id, {-1, -static_cast<std::int64_t>(previous->data.size())});
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<BatchResult>>> RecordService::batch(
    const db::Scope& scope, std::string_view collection_name,
    const std::vector<BatchOperation>& operations, bool echo) {
  const auto& org_id = scope.org();
  if (auto within = admit_read(org_id); !within) co_return within.error();
  // Refused up front when what it would read and write is already past the budget: the records
  // its updates and deletes name (a merge patch writes about as much again) and what its creates
  // and replacements bring.
  std::size_t expected = 0;
  std::vector<db::Uuid> mentioned;
  for (const auto& op : operations) {
    if (op.kind != BatchOperation::Kind::remove) expected += json::serialize(op.data).size();
    if (op.kind == BatchOperation::Kind::create) continue;
    mentioned.push_back(op.id);  // read (and, for a merge patch, written again)
    if (op.kind == BatchOperation::Kind::update && op.merge) mentioned.push_back(op.id);
  }
  if (!mentioned.empty()) {
    auto reads = co_await store_.stored_bytes(scope, collection_name, mentioned);
    if (!reads) co_return reads.error();
    expected += static_cast<std::size_t>(*reads);
  }
  if (expected > options_.request_budget) {
    charge_read(org_id, options_.request_budget);  // a refusal costs what the largest batch may
    co_return Error{Errc::payload_too_large,
                    "the batch would read and write about " + std::to_string(expected) +
                        " bytes of record data, more than request_budget (" +
                        std::to_string(options_.request_budget) + "); nothing was applied",
                    {{"operations", "split the batch into smaller ones"}}};
  }
  // A batch of creates is inserted in one statement; if one of its unique values is taken, it is
  // applied again one operation at a time (nothing was applied), so the answer names the operation.
  bool creates_only = std::all_of(operations.begin(), operations.end(), [](const auto& op) {
    return op.kind == BatchOperation::Kind::create;
  });
  if (creates_only) {
    auto applied = co_await apply_batch(scope, collection_name, operations, echo, true);
    if (applied || applied.error().code != Errc::conflict) co_return applied;
  }
  co_return co_await apply_batch(scope, collection_name, operations, echo, false);
}

asio::awaitable<Result<std::vector<BatchResult>>> RecordService::apply_batch(
    const db::Scope& scope, std::string_view collection_name,
    const std::vector<BatchOperation>& operations, bool echo, bool bulk) {
  const auto& org_id = scope.org();
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  auto collection = co_await collection_in(*tx, org_id, collection_name);
  if (!collection) co_return collection.error();
  // What can be checked without the database is checked for every operation first, so one answer
  // names every invalid item.
  Error invalid{Errc::validation_failed, "the batch is invalid; nothing was applied", {}};
  std::vector<json::object> valid_data(operations.size());
  for (std::size_t i = 0; i < operations.size(); ++i) {
    const auto& op = operations[i];
    if (op.kind == BatchOperation::Kind::update && op.merge) continue;  // needs the stored record
    if (op.kind == BatchOperation::Kind::remove) continue;
    auto valid = validate_record(collection->schema, op.data);
    if (!valid) {
      for (const auto& f : batch_failed_at(i, valid.error()).fields) invalid.fields.push_back(f);
    } else {
      valid_data[i] = std::move(*valid);
    }
  }
  if (!invalid.fields.empty()) co_return invalid;

  // The record data the batch reads and writes counts against the request budget, so one batch
  // over a few large records cannot hold the process's memory or the database for long: beyond
  // it the transaction rolls back.
  std::size_t touched = 0;
  Stored stored;                       // what the batch adds to the org's holdings
  std::vector<audit::Change> changes;  // one event per record, in order
  changes.reserve(operations.size());
  std::vector<BatchResult> results;
  results.reserve(operations.size());
  // Accounts for operation i, which changed `before` into `after`; an error past the budget.
  auto applied = [&](std::size_t i, std::optional<Record> before,
                     std::optional<Record> after) -> Result<void> {
    touched += (before ? before->data.size() : 0) + (after ? after->data.size() : 0);
    stored.records += (after ? 1 : 0) - (before ? 1 : 0);
    stored.bytes += static_cast<std::int64_t>(after ? after->data.size() : 0) -
                    static_cast<std::int64_t>(before ? before->data.size() : 0);
    if (touched > options_.request_budget) {
      charge_read(org_id, touched);
      return Error{
          Errc::payload_too_large,
          "the batch reads and writes more than " + std::to_string(options_.request_budget) +
              " bytes of record data (request_budget); nothing was applied",
          {{"operations",
            "split the batch: operations before [" + std::to_string(i) + "] fit in one request"}}};
    }
    changes.push_back(
        record_change(collection->name, before ? &*before : nullptr, after ? &*after : nullptr));
    BatchResult result;
    result.status = !before ? 201 : after ? 200 : 204;
    result.id = after ? after->id : before->id;
    if (after) {
      result.version = after->version;
      if (echo) result.record = std::move(after);
    }
    results.push_back(std::move(result));
    return {};
  };
  if (bulk) {
    std::vector<Record> records;
    records.reserve(operations.size());
    for (std::size_t i = 0; i < operations.size(); ++i) {
      auto related = co_await check_relations(*tx, org_id, collection->schema, valid_data[i]);
      if (!related) co_return batch_failed_at(i, related.error());
      records.push_back(new_record(*collection, valid_data[i]));
    }
    auto inserted = co_await store_.insert_records(*tx, *collection, records, valid_data);
    if (!inserted) co_return inserted.error();  // a unique value taken: applied one by one
    if (!*inserted) co_return make_error(Errc::internal, "the collection changed while locked");
    for (std::size_t i = 0; i < records.size(); ++i) {
      auto done = applied(i, std::nullopt, std::move(records[i]));
      if (!done) co_return done.error();
    }
  } else {
    for (std::size_t i = 0; i < operations.size(); ++i) {
      const auto& op = operations[i];
      std::optional<Record> before;  // updates and deletes
      std::optional<Record> after;   // creates and updates
      if (op.kind == BatchOperation::Kind::create) {
        auto record = co_await insert_in(*tx, *collection, op.data);
        if (!record) co_return batch_failed_at(i, record.error());
        if (!*record) co_return make_error(Errc::internal, "the collection changed while locked");
        after = std::move(**record);
      } else if (op.kind == BatchOperation::Kind::update) {
        auto change = co_await update_in(*tx, *collection, op.id, op.data, op.merge, op.if_match);
        if (!change) co_return batch_failed_at(i, change.error());
        if (!*change) co_return batch_failed_at(i, no_record());
        before = std::move((*change)->previous);
        after = std::move((*change)->record);
      } else {
        auto removed = co_await delete_in(*tx, *collection, op.id, op.if_match);
        if (!removed) co_return batch_failed_at(i, removed.error());
        before = std::move(*removed);
      }
      auto done = applied(i, std::move(before), std::move(after));
      if (!done) co_return done.error();
    }
  }
  charge_read(org_id, touched);
  auto event = co_await audit::append_and_commit(*tx, scope, changes);
  if (!event) co_return event.error();
  written(org_id, stored);
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

void RecordService::written(const db::Uuid& org_id, Stored stored) {
  if (options_.on_written) options_.on_written(org_id);
  if (options_.on_stored && (stored.records != 0 || stored.bytes != 0))
    options_.on_stored(org_id, stored);
}

asio::awaitable<Result<std::int64_t>> RecordService::expire_idempotency_keys(const db::Scope& scope,
                                                                             std::int64_t limit) {
  co_return co_await records::expire_idempotency_keys(db_, scope, limit);
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
      auto read = co_await store_.related(scope, field->collection, ids, budget);
      if (!read) co_return read.error();
      auto& found = read->records;
      if (!found.empty()) {
        auto current =
            co_await bring_current(scope, field->collection, found, read->collection_layout);
        if (!current) co_return current.error();
        charge_read(org_id, read->bytes);
        budget = read->bytes < budget ? budget - read->bytes : 0;
        if (read->cut) {
          // Cut short: records naming an id past the last one read end the answer.
          for (std::size_t i = 0; i < fit; ++i) {
            if (id_of_record[i] != std::numeric_limits<std::size_t>::max() &&
                id_of_record[i] >= read->read_up_to) {
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

asio::awaitable<Result<ListAnswer>> RecordService::list(const db::Scope& scope,
                                                        std::string_view name,
                                                        const ListQuery& query,
                                                        std::string_view known_version) {
  const auto& org_id = scope.org();
  // The org's committed state identifies the answer: a list made at that state is still true.
  auto state = co_await collection_state(scope, name);
  if (!state) co_return state.error();
  const auto& collection = *state->collection;
  const auto& schema = collection.schema;
  ListRequest request;
  request.limit = query.limit;
  if (query.filter) {
    auto filter = parse_filter(*query.filter, options_.filter);
    if (!filter) co_return filter.error();
    request.filter = std::move(*filter);
  }
  if (query.q) {
    if (query.q->empty() || query.q->size() > 500)
      co_return Error{
          Errc::bad_request, "invalid query parameter", {{"q", "must be 1 to 500 characters"}}};
    request.q = query.q;
  }
  auto sort = parse_sort(query.sort.value_or(""), schema, request.q.has_value());
  if (!sort) co_return sort.error();
  request.sort = std::move(*sort);
  request.cursor = query.cursor;
  for (const auto& f : query.fields.value_or(std::vector<std::string>{})) {
    if (!schema.find(f)) {
      co_return Error{Errc::bad_request,
                      "invalid query parameter",
                      {{"fields", "'" + f + "' is not a field of this collection"}}};
    }
  }
  // The key names the query and the schema's layout (an answer made with another layout is
  // another one); JSON keeps its parts apart.
  auto key = org_id.to_string() + '/' + collection.name + '/' +
             std::to_string(schema.evolution().layout) + '?' +
             json::serialize(json::value_from(
                 std::forward_as_tuple(query.filter, query.sort, query.q, query.cursor, query.limit,
                                       static_cast<int>(query.count), query.expand, query.fields)));
  ListAnswer answer{fmt::format("{}-{:016x}", state->org_state, std::hash<std::string>{}(key)),
                    std::nullopt};
  if (answer.version == known_version) co_return answer;
  // A cached answer costs no query, but it is data the org reads all the same.
  if (auto within = admit_read(org_id); !within) co_return within.error();
  trace::CacheLookup lookup(scope.trace, "record list");
  auto cached = list_cache_.find(key, state->org_state);
  lookup.hit(cached.has_value());
  if (cached) {
    charge_read(org_id, cached->size());
    answer.body = std::move(*cached);
    co_return answer;
  }
  auto page = co_await list_records(scope, collection, request, query.count, query.expand);
  if (!page) co_return page.error();
  std::string body = R"({"records":[)";
  for (std::size_t i = 0; i < page->records.size(); ++i) {
    if (i) body += ',';
    append_record_json(body, page->records[i], query.fields ? &*query.fields : nullptr);
  }
  body += R"(],"next_cursor":)";
  body += page->next_cursor ? json::serialize(json::value(*page->next_cursor)) : "null";
  if (page->count) body += R"(,"count":)" + std::to_string(*page->count);
  body += '}';
  list_cache_.store(key, state->org_state, body);
  answer.body = std::move(body);
  co_return answer;
}

asio::awaitable<Result<Page>> RecordService::list_records(const db::Scope& scope,
                                                          const Collection& collection,
                                                          const ListRequest& request,
                                                          CountMode count,
                                                          const std::vector<std::string>& expand) {
  auto budget = page_budget();
  auto compiled =
      compile_list(collection.schema, collection.id, collection.org_id, request, budget);
  if (!compiled) co_return compiled.error();
  auto listed = co_await store_.list(scope, *compiled, request.limit, budget);
  if (!listed) co_return listed.error();
  Page page;
  page.records = std::move(listed->records);
  upgrade(collection.schema, page.records);
  charge_read(collection.org_id, listed->bytes);
  if (!expand.empty()) {
    auto left = listed->bytes < budget ? budget - listed->bytes : 0;
    auto fit = co_await this->expand(scope, collection.schema, expand, page.records, left);
    if (!fit) co_return fit.error();
  }
  // More rows than the page keeps (past the limit, the budget, or the expansions' budget): the
  // cursor continues after the last record kept.
  auto kept = page.records.size();
  if (kept > 0 && (listed->more || kept < listed->sort_values.size()))
    page.next_cursor = make_cursor(request.sort, listed->sort_values[kept - 1]);
  if (count != CountMode::none) {
    auto counting = compile_count(collection.schema, collection.id, collection.org_id,
                                  request.filter, request.q);
    if (!counting) co_return counting.error();
    auto counted = co_await store_.count(scope, std::move(*counting), count == CountMode::estimate);
    if (!counted) co_return counted.error();
    page.count = *counted;
  }
  co_return page;
}

}  // namespace liftoff::records
