#pragma once
// The SQL of collections, records and their background rewrites, and the decoding of their rows:
// what RecordService's rules run on. Statements that belong to a write run in the caller's
// transaction; single reads go through the Database with the caller's scope. Nothing here decides
// what is allowed or valid. Storage: docs/decisions/0003-records-storage.md.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/records/query.hpp"
#include "liftoff/records/schema.hpp"

namespace boost::json {
class object;
}

namespace liftoff::db {
class Database;
class Transaction;
}  // namespace liftoff::db

namespace liftoff::records {

struct Collection {
  db::Uuid id;
  db::Uuid org_id;
  std::string name;
  Schema schema;
  db::Timestamp created_at;
  db::Timestamp updated_at;
  std::int64_t row_version = 0;  // of the collections row read (xmin): any update changes it
};

struct Record {
  db::Uuid id;
  std::int64_t version = 0;
  db::Timestamp created_at;
  db::Timestamp updated_at;
  std::string data;  // the fields as a serialized JSON object, as stored (reads pass it through)
  std::int32_t layout = 0;  // the collection's layout it was written with (see Schema::upgrade)
};

class RecordStore {
 public:
  explicit RecordStore(db::Database& database) : db_(database) {}

  // What the scope's org keeps: its collections, records and bytes of record data (every record's
  // size is read: a big tenant's take a while).
  struct Holdings {
    std::int64_t collections = 0;
    std::int64_t records = 0;
    std::int64_t bytes = 0;
  };
  [[nodiscard]] boost::asio::awaitable<Result<Holdings>> holdings(const db::Scope& scope);
  // Deletes every collection of the scope's org with its records, one collection per statement
  // (its own transaction: a big collection's statement may take long, see
  // Scope::statement_timeout); the number deleted. Idempotent.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> purge_org(const db::Scope& scope);

  // --- Collections ---
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> count_collections(
      db::Transaction& tx, const db::Uuid& org_id);
  // Fills created_at and updated_at. Errc::conflict when the org has a collection of that name.
  [[nodiscard]] boost::asio::awaitable<Result<void>> insert_collection(db::Transaction& tx,
                                                                       Collection& collection);
  // The scope's org's collections by name (at most 1000).
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Collection>>> collections(
      const db::Scope& scope);
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Collection>>> collection(
      const db::Scope& scope, std::string_view name);
  // In `tx`: as it is, or locked FOR SHARE (record writes: a schema change waits for them) or FOR
  // UPDATE (a schema change: record writes wait for it).
  enum class Lock { none, share, update };
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Collection>>> collection(
      db::Transaction& tx, const db::Uuid& org_id, std::string_view name, Lock lock);
  // By id, as it is or FOR UPDATE.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Collection>>> collection_by_id(
      db::Transaction& tx, const db::Uuid& id, Lock lock);
  // In one statement (one snapshot): the scope's org's state (audit::committed) and the
  // collection's row version; each nullopt when the org or the collection does not exist.
  struct State {
    std::optional<std::int64_t> org_state;
    std::optional<std::int64_t> row_version;
  };
  [[nodiscard]] boost::asio::awaitable<Result<State>> collection_state(const db::Scope& scope,
                                                                       std::string_view name);
  // Stores the collection's schema (fields, layout, evolution); fills updated_at.
  [[nodiscard]] boost::asio::awaitable<Result<void>> store_schema(db::Transaction& tx,
                                                                  Collection& collection);
  // The deleted collection's id; nullopt when there was none (its records go with it).
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<db::Uuid>>> delete_collection(
      db::Transaction& tx, const db::Uuid& org_id, std::string_view name);

  // --- Background rewrites to a collection's current layout ---
  // (Re)starts the rewrite of the collection's records to its current layout.
  [[nodiscard]] boost::asio::awaitable<Result<void>> schedule_rewrite(db::Transaction& tx,
                                                                      const Collection& collection);
  struct RewriteClaim {
    db::Uuid collection_id;
    std::int32_t layout = 0;        // the layout the rewrite was scheduled for
    std::optional<db::Uuid> after;  // records up to this id are done
  };
  // The oldest rewrite no other transaction holds, locked until `tx` ends; nullopt when none.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<RewriteClaim>>> claim_rewrite(
      db::Transaction& tx);
  [[nodiscard]] boost::asio::awaitable<Result<void>> advance_rewrite(
      db::Transaction& tx, const db::Uuid& collection_id, std::int32_t layout,
      const std::optional<db::Uuid>& after);
  [[nodiscard]] boost::asio::awaitable<Result<void>> finish_rewrite(db::Transaction& tx,
                                                                    const db::Uuid& collection_id);
  // Up to `limit` records of the collection stored at a layout below `layout`, after `after` by
  // id, locked FOR UPDATE.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Record>>> outdated_records(
      db::Transaction& tx, const db::Uuid& collection_id, std::int32_t layout,
      const std::optional<db::Uuid>& after, std::int32_t limit);

  // --- Records ---
  // `data` is the record's valid data (record.data its serialized text), stored with its slots
  // and search words at the schema's layout. Inserts and updates hold the collection (FOR KEY
  // SHARE: a schema change waits for them) only while its row is still `collection.row_version`,
  // and find nothing (false) otherwise. Errc::conflict (with the constraint) on a unique field.
  // Fills version, created_at and updated_at.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> insert_record(db::Transaction& tx,
                                                                   const Collection& collection,
                                                                   Record& record,
                                                                   const boost::json::object& data);
  // insert_record() of every record in one statement (a batch of creates): the same stored form,
  // the same hold on the collection. data[i] is records[i]'s.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> insert_records(
      db::Transaction& tx, const Collection& collection, std::vector<Record>& records,
      const std::vector<boost::json::object>& data);
  // Replaces the record at `record.version` by `data`: fills the new version and updated_at. False
  // when the record is not (or no longer) at that version.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> update_record(db::Transaction& tx,
                                                                   const Collection& collection,
                                                                   Record& record,
                                                                   const boost::json::object& data);
  // The stored form brought to the schema's layout; the record (and its version) unchanged.
  [[nodiscard]] boost::asio::awaitable<Result<void>> rewrite_record(
      db::Transaction& tx, const Collection& collection, const Record& record,
      const boost::json::object& data);
  // The record FOR UPDATE, while the collection's row is `collection.row_version` (FOR KEY SHARE);
  // nullopt when either is not so.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Record>>> lock_record(
      db::Transaction& tx, const Collection& collection, const db::Uuid& id);
  // The deleted record as it was; nullopt when there was none.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Record>>> delete_record(
      db::Transaction& tx, const Collection& collection, const db::Uuid& id);
  // A record of the scope's org by its collection's name, and the collection's layout.
  struct Found {
    Record record;
    std::int32_t collection_layout = 0;
  };
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Found>>> record(
      const db::Scope& scope, std::string_view collection, const db::Uuid& id);
  // Whether the org's collection `collection` holds a record `id`.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> record_exists(db::Transaction& tx,
                                                                   const db::Uuid& org_id,
                                                                   std::string_view collection,
                                                                   const db::Uuid& id);
  // The stored size of the records `ids` names in the collection, once per mention.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> stored_bytes(
      const db::Scope& scope, std::string_view collection, const std::vector<db::Uuid>& ids);

  // Records of the org's collection `collection` among `ids`, in that order, while their running
  // stored size stays within `budget` (the first always).
  struct Related {
    std::vector<Record> records;
    std::int32_t collection_layout = 0;
    std::size_t bytes = 0;       // the running size up to the last record read
    bool cut = false;            // some of `ids` exist past the budget
    std::size_t read_up_to = 0;  // 1-based position in `ids` of the last record read
  };
  [[nodiscard]] boost::asio::awaitable<Result<Related>> related(const db::Scope& scope,
                                                                std::string_view collection,
                                                                const std::vector<db::Uuid>& ids,
                                                                std::size_t budget);

  // The rows of a compiled list (compile_list with a page budget), up to `limit` and, after the
  // first, while the running size stays within `budget`; with each record, its sort values (for
  // the cursor), and whether more rows follow.
  struct Listed {
    std::vector<Record> records;
    std::vector<std::vector<std::optional<std::string>>> sort_values;  // per record
    std::size_t bytes = 0;
    bool more = false;
  };
  [[nodiscard]] boost::asio::awaitable<Result<Listed>> list(const db::Scope& scope,
                                                            const CompiledQuery& compiled,
                                                            std::int32_t limit, std::size_t budget);
  // A compiled count (compile_count), exact or the planner's estimate (no rows read).
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> count(const db::Scope& scope,
                                                                   CompiledQuery compiled,
                                                                   bool estimate);

 private:
  db::Database& db_;
};

}  // namespace liftoff::records
