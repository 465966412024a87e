#pragma once
// Collections and their records: the data API for a product's own business objects. The rules
// here; SQL and rows in store.hpp (and idempotency.hpp), the API's JSON forms in json.hpp; no HTTP
// types. Every mutation runs in one transaction with its audit event.
// Storage: docs/decisions/0003-records-storage.md.
#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "liftoff/audit/audit.hpp"
#include "liftoff/core/byte_rate.hpp"
#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/plans/plans.hpp"
#include "liftoff/records/idempotency.hpp"
#include "liftoff/records/json.hpp"
#include "liftoff/records/list_cache.hpp"
#include "liftoff/records/query.hpp"
#include "liftoff/records/schema.hpp"
#include "liftoff/records/schema_cache.hpp"
#include "liftoff/records/store.hpp"

namespace liftoff::db {
class Database;
class Transaction;
}  // namespace liftoff::db

namespace liftoff::records {

// What a mutation added to an organization's holdings (negative: removed).
struct Stored {
  std::int64_t records = 0;
  std::int64_t bytes = 0;
};

struct RecordsOptions {
  SchemaLimits schema;
  std::size_t max_collections = 100;  // per organization
  FilterLimits filter;
  // Reads of a schema alone (a collection, expand= on one record, an event stream's opening) trust
  // a cached schema this long per process; changes on this process evict at once, on others within
  // the TTL. Lists and record writes check the collection's row version instead, at any age.
  std::chrono::milliseconds schema_cache_ttl{5'000};
  std::size_t schema_cache_entries = 50'000;  // collections per process (see SchemaCache)
  // Called after a record mutation committed, with its org: its audit event waits to be sealed,
  // which is how the event stream learns of it (see audit::Sealer, events.hpp). Thread-safe; must
  // not block.
  std::function<void(const db::Uuid& org_id)> on_written;
  // Called with it: how many records and bytes of record data the mutation added to the org
  // (negative when it removed them), for its usage and quotas. Thread-safe; must not block.
  std::function<void(const db::Uuid& org_id, const Stored& stored)> on_stored;
  // Bytes of list response bodies kept per process (see ListCache); 0: no list cache.
  std::size_t list_cache_bytes = 64 * 1024 * 1024;
  // An audit event keeps a record's before and after up to this many bytes each
  // (audit::bounded_value); a batch's event shares it among the records it lists.
  std::size_t audit_value_limit = 64 * 1024;
  // The most record data (serialized bytes) one request may touch or answer with: a batch that
  // would touch more is refused (413, nothing applied), a page of a list ends early (its cursor
  // continues after its last record), and expansions stop where the budget ends.
  std::size_t request_budget = 32 * 1024 * 1024;
  // The most record data one read answer carries: a page of a list (with its expansions) ends
  // where it would pass it, and one record's expansions stop there (never past request_budget).
  // Small pages keep one request's work in slices short enough that its neighbours on the same
  // worker and database connection do not wait behind it.
  std::size_t page_budget = 1024 * 1024;
  // Record data an organization may read per second on this process (lists, expansions, single
  // reads, and what its batches touch), averaged: a token bucket as deep as request_budget. Past
  // it, those requests get 429 with Retry-After. 0: no limit.
  std::size_t read_rate = 8 * 1024 * 1024;
};

// Brings records written at older layouts up to the schema's (a no-op for current ones).
void upgrade(const Schema& schema, std::vector<Record>& records);

// An update: the record before and after.
struct RecordChange {
  std::optional<Record> previous;
  std::optional<Record> record;
};

enum class CountMode { none, exact, estimate };

// One item of POST .../records:batch.
struct BatchOperation {
  enum class Kind { create, update, remove } kind = Kind::create;
  db::Uuid id;               // update, remove
  boost::json::object data;  // create, update
  bool merge = true;         // update: a merge patch (else the whole record)
  std::optional<std::int64_t> if_match;
};

struct BatchResult {
  int status = 0;  // 201, 200 or 204
  db::Uuid id;
  std::int64_t version = 0;      // create, update: the version written
  std::optional<Record> record;  // create, update, when the batch echoes records
};

inline constexpr std::size_t kMaxBatchOperations = 1000;

struct Page {
  std::vector<Record> records;
  std::optional<std::string> next_cursor;
  std::optional<std::int64_t> count;
};

// What a list of records asks, as the client wrote it: the service parses and checks each part
// against the collection's schema (a bad part is a 400 naming it).
struct ListQuery {
  std::optional<std::string> filter;  // the filter language (filter.hpp)
  std::optional<std::string> sort;    // "priority,-created_at"
  std::optional<std::string> q;       // full-text search
  std::optional<std::string> cursor;
  std::int32_t limit = 20;
  CountMode count = CountMode::none;
  std::vector<std::string> expand;                 // relation fields to expand
  std::optional<std::vector<std::string>> fields;  // a subset of the data fields to answer with
};

// A list's answer and the version that identifies it: the org's committed state with the query and
// the schema's layout. `body` is empty when the caller already holds that version.
struct ListAnswer {
  std::string version;
  std::optional<std::string> body;  // {"records":[…],"next_cursor":…[,"count":N]}
};

class RecordService {
 public:
  // With a registry, the schema and list caches count their lookups and entries.
  RecordService(db::Database& database, RecordsOptions options, core::Registry* metrics = nullptr)
      : db_(database),
        options_(std::move(options)),
        schema_cache_(options_.schema_cache_ttl, options_.schema_cache_entries,
                      metrics ? core::CacheMetrics::in(*metrics, "schema") : core::CacheMetrics{}),
        list_cache_(options_.list_cache_bytes,
                    metrics ? core::CacheMetrics::in(*metrics, "list") : core::CacheMetrics{}),
        store_(database),
        read_rate_(static_cast<double>(options_.read_rate),
                   static_cast<double>(options_.request_budget)) {}

  [[nodiscard]] const RecordsOptions& options() const { return options_; }
  [[nodiscard]] db::Database& database() const { return db_; }
  // An organization's reads on this process (record data, audit events, replayed events) draw
  // from one bucket of read_rate bytes a second: admit_read() is too_many_requests (with
  // Retry-After) while the org has read past it; charge_read() spends what a read moved. A long
  // answer (an export, a replay) waits read_wait() between its pages instead: it slows down.
  [[nodiscard]] Result<void> admit_read(const db::Uuid& org_id);
  [[nodiscard]] std::chrono::milliseconds read_wait(const db::Uuid& org_id);
  void charge_read(const db::Uuid& org_id, std::size_t bytes);

  // The record data one read answer may carry (page_budget, within request_budget).
  [[nodiscard]] std::size_t page_budget() const {
    return std::min(options_.page_budget, options_.request_budget);
  }

  // What the scope's org keeps of what its plan counts (collections, records, bytes).
  [[nodiscard]] boost::asio::awaitable<Result<RecordStore::Holdings>> holdings(
      const db::Scope& scope) {
    co_return co_await store_.holdings(scope);
  }

  // A purged org's collections and records (its audit log stays): the collections deleted.
  // Organizations call it through OrgOptions::purge_tenant before the org's row goes.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> purge_org(const db::Scope& scope) {
    co_return co_await store_.purge_org(scope);
  }

  // The org's committed state (audit::committed): what caches of its reads are keyed on.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> org_state(const db::Scope& scope);
  // The org's sealed audit head: where a record event stream starts (audit::head).
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> events_head(const db::Scope& scope);

  // A page of the collection's records. The answer is the same for the same query while the org's
  // state is (an audited change advances it), so it is served from the list cache when made
  // before at that state, and not at all (no body) when the caller holds `known_version`.
  [[nodiscard]] boost::asio::awaitable<Result<ListAnswer>> list(const db::Scope& scope,
                                                                std::string_view collection,
                                                                const ListQuery& query,
                                                                std::string_view known_version);

  // 422 for a bad name or schema; 409 when the name is taken or the org has max_collections (the
  // deployment's cap); 402 past what the org's plan allows (`allowance`).
  [[nodiscard]] boost::asio::awaitable<Result<Collection>> create_collection(
      const db::Scope& scope, const std::string& name, const boost::json::value& fields,
      const plans::Allowance& allowance);
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Collection>>> collections(
      const db::Scope& scope);
  // From the schema cache when fresh (see RecordsOptions::schema_cache_ttl), or at any age
  // (Age::any) for a record write, whose statement checks it against the row.
  enum class Age { fresh, any };
  [[nodiscard]] boost::asio::awaitable<Result<std::shared_ptr<const Collection>>> collection(
      const db::Scope& scope, std::string_view name, Age age = Age::fresh);
  // Changes a collection's schema (Schema::changed: add, rename, drop, indexing). A metadata
  // change: it holds the collection's row for a moment (record writes wait that long); records
  // written before look current on every read at once, and rewrite_some() brings the stored rows up
  // to date.
  [[nodiscard]] boost::asio::awaitable<Result<Collection>> change_schema(
      const db::Scope& scope, std::string_view name, const boost::json::object& patch);
  // One step of the background rewrite: up to `limit` records of one collection whose schema
  // changed are rewritten to its current layout (slots and search included; versions unchanged),
  // in one short transaction; the last step settles the schema. Returns how many were rewritten
  // (0: nothing to do). Any number of processes may call it: each collection has one rewriter.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> rewrite_some(const db::Scope& scope,
                                                                          std::int32_t limit);
  [[nodiscard]] boost::asio::awaitable<Result<void>> delete_collection(const db::Scope& scope,
                                                                       std::string_view name);

  // `within_plan`: whether the org's plan lets it store one more record (the API's check against
  // its quotas); refused, the create answers that error, but a replay of an earlier create with
  // the same Idempotency-Key still answers what that create answered.
  [[nodiscard]] boost::asio::awaitable<Result<StoredResponse>> create_record(
      const db::Scope& scope, std::string_view collection, const boost::json::object& data,
      const std::optional<Idempotency>& idempotency, const Result<void>& within_plan = {});
  // One query (no schema needed to read a record), and one per `expand` field.
  [[nodiscard]] boost::asio::awaitable<Result<Record>> record(
      const db::Scope& scope, std::string_view collection, std::string_view id,
      const std::vector<std::string>& expand = {});
  // `merge`: data is a JSON merge patch (RFC 7396), else the whole new record. `if_match`: the
  // version the client last saw (412 when it moved on).
  [[nodiscard]] boost::asio::awaitable<Result<Record>> update_record(
      const db::Scope& scope, std::string_view collection, std::string_view id,
      const boost::json::object& data, bool merge, std::optional<std::int64_t> if_match);
  [[nodiscard]] boost::asio::awaitable<Result<void>> delete_record(
      const db::Scope& scope, std::string_view collection, std::string_view id,
      std::optional<std::int64_t> if_match);

  // All operations in one transaction, in order: all or nothing. A failure names its item
  // ("operations[3]...") and nothing is applied. Each record gets its audit event, as a single
  // write's; a batch of creates is inserted in one statement.
  // `echo`: each result carries the record written (else only its id and version). A batch whose
  // records (read and written) exceed request_budget is refused with payload_too_large.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<BatchResult>>> batch(
      const db::Scope& scope, std::string_view collection,
      const std::vector<BatchOperation>& operations, bool echo);

  // Forgets Idempotency-Keys older than 24 h (at most `limit`); returns how many.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> expire_idempotency_keys(
      const db::Scope& scope, std::int64_t limit);

 private:
  // Replaces, in each record's data, the value of each relation field in `fields` by the related
  // record (null when it no longer exists). One query per field, for all records at once; only
  // records of the same org are ever read. Related records are read only while what they bring
  // stays within `budget` bytes; returns how many of `records`, from the first, were expanded
  // whole (at least one: the first record's related records are always read). Callers end their
  // answer there.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> expand(
      const db::Scope& scope, const Schema& schema, const std::vector<std::string>& fields,
      std::vector<Record>& records, std::size_t budget);

  // A collection and its org's state, read in one statement: the state, and the collection's row
  // version, which says whether the schema cache's entry (of any age) is current; when it is not,
  // the collection is read again. What a list needs: the schema it is made with is never behind.
  struct CollectionState {
    std::shared_ptr<const Collection> collection;
    std::int64_t org_state = 0;
  };
  [[nodiscard]] boost::asio::awaitable<Result<CollectionState>> collection_state(
      const db::Scope& scope, std::string_view name);
  // A page of records with `expand` fields expanded. The page ends early (its next_cursor
  // continuing after its last record) where its records and their expansions would pass
  // page_budget(); it always holds at least one record when any matches.
  [[nodiscard]] boost::asio::awaitable<Result<Page>> list_records(
      const db::Scope& scope, const Collection& collection, const ListRequest& request,
      CountMode count, const std::vector<std::string>& expand = {});

  // The org's collection, locked in `tx` (see RecordStore::Lock); not_found when there is none.
  [[nodiscard]] boost::asio::awaitable<Result<Collection>> collection_in(
      db::Transaction& tx, const db::Uuid& org_id, std::string_view name,
      RecordStore::Lock lock = RecordStore::Lock::share);
  // For a write whose cached collection was not current (retry_locked() in service.cpp): forgets
  // the cache's entry and reads the collection again, FOR SHARE in `tx`.
  [[nodiscard]] boost::asio::awaitable<Result<std::shared_ptr<const Collection>>> read_locked(
      db::Transaction& tx, const db::Uuid& org_id, std::string_view name);
  // 422 naming each relation field (of `fields`) whose target collection does not exist.
  [[nodiscard]] boost::asio::awaitable<Result<void>> check_relation_targets(
      db::Transaction& tx, const db::Uuid& org_id, std::string_view self,
      const std::vector<Field>& fields);
  // 422 naming each relation field whose target is not a record of the org's target collection.
  [[nodiscard]] boost::asio::awaitable<Result<void>> check_relations(
      db::Transaction& tx, const db::Uuid& org_id, const Schema& schema,
      const boost::json::object& data);

  // The single-record operations, inside a caller's transaction. Insert and update find nothing
  // (nullopt) when the collection's row is no longer `collection.row_version` (see
  // retry_locked() in service.cpp), and an update also when the record does not exist.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Record>>> insert_in(
      db::Transaction& tx, const Collection& collection, const boost::json::object& data);
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<RecordChange>>> update_in(
      db::Transaction& tx, const Collection& collection, const db::Uuid& id,
      const boost::json::object& data, bool merge, std::optional<std::int64_t> if_match);
  // The deleted record, as it was.
  [[nodiscard]] boost::asio::awaitable<Result<Record>> delete_in(
      db::Transaction& tx, const Collection& collection, const db::Uuid& id,
      std::optional<std::int64_t> if_match);
  // Records read with a collection at `layout`: those written before it are upgraded with the
  // collection's schema (from the cache unless it predates `layout`).
  [[nodiscard]] boost::asio::awaitable<Result<void>> bring_current(const db::Scope& scope,
                                                                   std::string_view name,
                                                                   std::vector<Record>& records,
                                                                   std::int32_t layout);
  void forget(const db::Uuid& org_id, std::string_view name);
  void written(const db::Uuid& org_id, Stored stored);
  // The audit change of a record: created (no `before`), updated, or deleted (no `after`).
  [[nodiscard]] audit::Change record_change(const std::string& collection, const Record* before,
                                            const Record* after) const;
  // batch() in one transaction: `bulk` inserts its creates (every operation) in one statement.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<BatchResult>>> apply_batch(
      const db::Scope& scope, std::string_view collection,
      const std::vector<BatchOperation>& operations, bool echo, bool bulk);

  db::Database& db_;
  RecordsOptions options_;
  SchemaCache schema_cache_;
  ListCache list_cache_;
  RecordStore store_;
  core::ByteRate read_rate_;
};

}  // namespace liftoff::records
