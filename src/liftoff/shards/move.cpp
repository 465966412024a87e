#include "liftoff/shards/move.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "liftoff/db/connection.hpp"
#include "liftoff/identity/shard_directory.hpp"

namespace liftoff::shards {
namespace {
namespace asio = boost::asio;
using db::Connection;
using db::Params;
using db::Rows;
using Millis = std::chrono::milliseconds;

// The budget of one statement of the mover (a batch, a count over one org's table).
constexpr auto kStatementBudget = std::chrono::minutes(5);
db::Deadline statement_deadline() {
  return db::deadline_after(kStatementBudget);
}

// The moves begun and not finished (control plane).
constexpr db::Statement kMoveOf{db::Plane::control, "shard_moves.of",
                                "SELECT source, target, phase FROM shard_moves WHERE org_id = $1"};
constexpr db::Statement kStartMove{
    db::Plane::control, "shard_moves.start",
    "INSERT INTO shard_moves (org_id, source, target, phase) VALUES ($1, $2, $3, 'copying') "
    "ON CONFLICT (org_id) DO NOTHING"};
constexpr db::Statement kMovePhase{
    db::Plane::control, "shard_moves.phase",
    "UPDATE shard_moves SET phase = $2, updated_at = now() WHERE org_id = $1"};
constexpr db::Statement kEndMove{db::Plane::control, "shard_moves.end",
                                 "DELETE FROM shard_moves WHERE org_id = $1"};

// The marks and the captured changes (tenant plane, on the source).
constexpr db::Statement kMarkOf{db::Plane::tenant, "shard_move_marks.of",
                                "SELECT phase FROM shard_move_marks WHERE org_id = $1"};
constexpr db::Statement kCapture{
    db::Plane::tenant, "shard_move_marks.capture",
    "INSERT INTO shard_move_marks (org_id, phase) VALUES ($1, 'capturing') "
    "ON CONFLICT (org_id) DO UPDATE SET phase = 'capturing', fenced_until = NULL"};
constexpr db::Statement kFence{
    db::Plane::tenant, "shard_move_marks.fence",
    "UPDATE shard_move_marks SET phase = 'fenced', "
    "fenced_until = clock_timestamp() + $2 * interval '1 millisecond' WHERE org_id = $1"};
// Only while the fence still holds: then no write of the org's got through since it began.
constexpr db::Statement kMoved{
    db::Plane::tenant, "shard_move_marks.moved",
    "UPDATE shard_move_marks SET phase = 'moved', fenced_until = NULL "
    "WHERE org_id = $1 AND phase = 'fenced' AND fenced_until > clock_timestamp() RETURNING org_id"};
constexpr db::Statement kArriving{
    db::Plane::tenant, "shard_move_marks.arriving",
    "INSERT INTO shard_move_marks (org_id, phase) VALUES ($1, 'arriving') "
    "ON CONFLICT (org_id) DO UPDATE SET phase = 'arriving', fenced_until = NULL"};
constexpr db::Statement kUnmark{db::Plane::tenant, "shard_move_marks.unmark",
                                "DELETE FROM shard_move_marks WHERE org_id = $1"};
constexpr db::Statement kChanges{
    db::Plane::tenant, "shard_move_changes.next",
    "SELECT seq, table_name, key::text FROM shard_move_changes WHERE org_id = $1 "
    "ORDER BY seq LIMIT $2"};
constexpr db::Statement kChangesApplied{db::Plane::tenant, "shard_move_changes.applied",
                                        "DELETE FROM shard_move_changes WHERE seq IN "
                                        "(SELECT jsonb_array_elements_text($1::jsonb)::bigint)"};
constexpr db::Statement kForgetChanges{db::Plane::tenant, "shard_move_changes.forget",
                                       "DELETE FROM shard_move_changes WHERE org_id = $1"};

// Statements of no table: transactions, the mover's session, waiting for transactions.
constexpr db::Statement kMoverSession{db::Plane::any, "move.session",
                                      "SELECT set_config('liftoff.mover', 'on', false)"};
constexpr db::Statement kBeginSnapshot{db::Plane::any, "move.begin_snapshot",
                                       "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"};
constexpr db::Statement kBegin{db::Plane::any, "move.begin", "BEGIN"};
constexpr db::Statement kCommit{db::Plane::any, "move.commit", "COMMIT"};
constexpr db::Statement kRollback{db::Plane::any, "move.rollback", "ROLLBACK"};
constexpr db::Statement kNow{db::Plane::any, "move.now", "SELECT clock_timestamp()::text"};
// The other sessions' transactions of this database that began before $1. Transactions, not
// transaction ids: one that has only read so far (in repeatable read, on a snapshot from before a
// mark) may still write.
constexpr db::Statement kStillRunning{
    db::Plane::any, "move.still_running",
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
    "AND xact_start < $1::timestamptz"};
constexpr db::Statement kColumns{
    db::Plane::any, "move.columns",
    "SELECT a.attname::text, coalesce((SELECT k.n::int FROM unnest(i.indkey) WITH ORDINALITY "
    "AS k(attnum, n) WHERE k.attnum = a.attnum), 0), a.attidentity = 'a' "
    "FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
    "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped "
    "AND a.attgenerated = '' ORDER BY a.attnum"};

// How the mover copies a table.
enum class Copy {
  captured,  // before the fence, then its captured changes (its guard records their keys)
  in_fence,  // whole, inside the fence: small, or without a key
};

// Each table that holds an org's rows, parents before children. `org_rows`: the org's rows
// ({org}: the org's id). `settled`: of a captured table, the rows copied before the fence (the
// others are copied inside it); `order`: a table without a key, inserted on the target in this
// order (it gets new keys there).
struct TableSpec {
  const char* name;
  Copy copy;
  const char* org_rows = "org_id = {org}";
  const char* settled = nullptr;
  const char* order = nullptr;
};
// An array rather than IN (subquery): an index on collection_id then serves the org's rows in key
// order (the copy's batches).
constexpr const char* kOfOrgsCollections =
    "collection_id = ANY (ARRAY(SELECT id FROM collections WHERE org_id = {org}))";
const std::array kTables{
    TableSpec{"collections", Copy::captured},
    TableSpec{"records", Copy::captured, kOfOrgsCollections},
    TableSpec{"collection_rewrites", Copy::in_fence, kOfOrgsCollections},
    TableSpec{"idempotency_keys", Copy::captured},
    TableSpec{"audit_chains", Copy::captured},
    TableSpec{"audit_events", Copy::captured},
    // Pending events are taken in pending_id order by the sealer; the target numbers them anew.
    TableSpec{"audit_pending", Copy::in_fence, "org_id = {org}", nullptr, "pending_id"},
    // A job that may still run is copied only inside the fence, so that the target's workers
    // never run a copy while the source's run the original.
    TableSpec{"jobs", Copy::captured, "org_id = {org}",
              "state IN ('completed', 'discarded', 'cancelled')"},
    TableSpec{"job_unique_keys", Copy::captured},
    TableSpec{"usage_hourly", Copy::captured},
    TableSpec{"webhook_endpoints", Copy::captured},
    TableSpec{"webhook_deliveries", Copy::captured},
    TableSpec{"shard_inbox", Copy::in_fence},
};

std::string quoted(const std::string& name) {
  return "\"" + name + "\"";
}

std::string joined(const std::vector<std::string>& names, std::string_view prefix = "") {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += std::string(prefix) + quoted(n);
  }
  return out;
}

// JSON texts as one JSON array.
template <class Texts>
std::string json_array(const Texts& texts) {
  std::string out = "[";
  for (const auto& text : texts) {
    if (out.size() > 1) out += ",";
    out += text;
  }
  return out + "]";
}
// The JSON texts of `rows`' first column.
std::vector<std::string> texts_of(const Rows& rows) {
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(rows.size()));
  for (int r = 0; r < rows.size(); ++r) out.push_back(rows[r].get<std::string>(0));
  return out;
}

// A table as the mover handles it: its spec, and its columns and key from the catalog.
struct Table {
  const TableSpec* spec = nullptr;
  std::vector<std::string> columns;  // copied columns (not generated, not identity)
  std::vector<std::string> key;      // primary key columns; empty: none
  std::string org_rows;              // the org's rows, with its id inlined

  [[nodiscard]] std::string name() const { return spec->name; }
  [[nodiscard]] std::string all_rows() const { return org_rows; }
  [[nodiscard]] std::string settled_rows() const {
    return spec->settled ? "(" + org_rows + ") AND (" + spec->settled + ")" : org_rows;
  }
  // The rows of `where`, each as one JSON object.
  [[nodiscard]] std::string select_json(const std::string& where) const {
    return fmt::format("SELECT to_json(r)::text FROM (SELECT {} FROM {} WHERE {}{}) AS r",
                       joined(columns), name(), where,
                       spec->order ? std::string(" ORDER BY ") + spec->order : std::string());
  }
  // The first `limit` rows of `where` in key order; with `after`, those whose key comes after the
  // key of the row in the JSON $1 (a comparison of the key's columns that the key's index serves).
  [[nodiscard]] std::string select_json_in_key_order(const std::string& where, bool after,
                                                     std::int64_t limit) const {
    std::string rows = where;
    if (after) {
      std::vector<std::string> last;
      for (const auto& k : key)
        last.push_back(fmt::format("(SELECT {} FROM json_populate_record(NULL::{}, $1::json))",
                                   quoted(k), name()));
      rows = fmt::format("({}) AND ({}) > ({})", where, joined(key), fmt::join(last, ", "));
    }
    return fmt::format(
        "SELECT to_json(r)::text FROM (SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {}) AS r",
        joined(columns), name(), rows, joined(key), limit);
  }
  // $1: a JSON array of rows; each replaces the target's row of its key.
  [[nodiscard]] std::string upsert() const {
    auto insert = fmt::format(
        "INSERT INTO {0} ({1}) SELECT {1} FROM json_populate_recordset(NULL::{0}, $1::json)",
        name(), joined(columns));
    if (key.empty()) return insert;
    std::vector<std::string> rest;
    for (const auto& c : columns)
      if (std::find(key.begin(), key.end(), c) == key.end()) rest.push_back(c);
    if (rest.empty()) return insert + fmt::format(" ON CONFLICT ({}) DO NOTHING", joined(key));
    return insert + fmt::format(" ON CONFLICT ({}) DO UPDATE SET ({}) = ROW({})", joined(key),
                                joined(rest), joined(rest, "excluded."));
  }
  // The keys in the JSON array $n, as a subquery.
  [[nodiscard]] std::string keys_in(int n) const {
    return fmt::format("SELECT {} FROM json_populate_recordset(NULL::{}, ${}::json)", joined(key),
                       name(), n);
  }
};

// One mover run: its connections and what it has learnt.
class Run {
 public:
  Run(const MoveOptions& options, const db::Uuid& org) : options(options), org(org) {}

  const MoveOptions& options;
  db::Uuid org;
  std::unique_ptr<Connection> control, source, target;
  std::vector<Table> tables;
  MoveReport report;

  void progress(std::string step, std::string table, std::int64_t done, std::int64_t total) const {
    if (options.progress) options.progress({std::move(step), std::move(table), done, total});
  }

  static asio::awaitable<Result<std::unique_ptr<Connection>>> connect(const ClusterAddress& at) {
    auto executor = co_await asio::this_coro::executor;
    db::ConnectOptions options{at.conninfo, {}, "liftoff-mover"};
    auto conn = co_await Connection::connect(executor, options,
                                             db::deadline_after(std::chrono::seconds(10)));
    if (!conn) {
      auto error = conn.error();
      error.detail = "shard " + at.name + ": " + error.detail;
      co_return error;
    }
    auto session = co_await (*conn)->query(kMoverSession, Params::none(), statement_deadline());
    if (!session) co_return session.error();
    co_return std::move(*conn);
  }

  static asio::awaitable<Result<Rows>> run(Connection& conn, std::string_view name,
                                           const std::string& sql, const Params& params) {
    db::Statement statement{db::Plane::any, name, sql, false};
    co_return co_await conn.query(statement, params, statement_deadline());
  }
  static asio::awaitable<Result<std::int64_t>> count(Connection& conn, const std::string& table,
                                                     const std::string& where) {
    auto rows =
        co_await run(conn, "move.count",
                     fmt::format("SELECT count(*) FROM {} WHERE {}", table, where), Params::none());
    if (!rows) co_return rows.error();
    co_return rows->front().get<std::int64_t>(0);
  }

  // Connects to the move's source and target, and learns the tables.
  asio::awaitable<Result<void>> open(const ClusterAddress& from, const ClusterAddress& to) {
    auto source_conn = co_await connect(from);
    if (!source_conn) co_return source_conn.error();
    source = std::move(*source_conn);
    auto target_conn = co_await connect(to);
    if (!target_conn) co_return target_conn.error();
    target = std::move(*target_conn);
    co_return co_await learn_tables();
  }

  // Reads every table's columns and key (the target's schema is the same: both are migrated).
  asio::awaitable<Result<void>> learn_tables() {
    const auto org_literal = "'" + org.to_string() + "'::uuid";
    for (const auto& spec : kTables) {
      Table table{&spec};
      Params params(std::string(spec.name));
      auto rows = co_await source->query(kColumns, params, statement_deadline());
      if (!rows) co_return rows.error();
      std::map<std::int32_t, std::string> key_at;  // the key's columns by their place in it
      for (int r = 0; r < rows->size(); ++r) {
        auto row = (*rows)[r];
        if (row.get<bool>(2)) continue;  // numbered anew on the target
        table.columns.push_back(row.get<std::string>(0));
        if (auto at = row.get<std::int32_t>(1); at > 0) key_at[at] = row.get<std::string>(0);
      }
      for (auto& [at, column] : key_at) table.key.push_back(std::move(column));
      if (spec.copy == Copy::captured && table.key.empty())
        co_return make_error(Errc::internal,
                             fmt::format("{}: a table the move captures needs a key", spec.name));
      table.org_rows =
          fmt::format(fmt::runtime(std::string(spec.org_rows)), fmt::arg("org", org_literal));
      tables.push_back(std::move(table));
    }
    co_return Result<void>{};
  }

  // Waits until every transaction that was running on `conn`'s database at `since` (its clock) has
  // ended: it may have changed the org's rows before a mark it could not see.
  asio::awaitable<Result<void>> wait_for_transactions(Connection& conn, const std::string& since,
                                                      Millis limit) {
    auto until = db::deadline_after(limit);
    asio::steady_timer pause(co_await asio::this_coro::executor);
    for (;;) {
      Params params(since);
      auto rows = co_await conn.query(kStillRunning, params, statement_deadline());
      if (!rows) co_return rows.error();
      if (rows->front().get<std::int64_t>(0) == 0) co_return Result<void>{};
      if (db::Clock::now() >= until)
        co_return make_error(Errc::timeout,
                             "transactions that began before the mark are still running");
      pause.expires_after(Millis(10));
      co_await pause.async_wait(asio::use_awaitable);
    }
  }
  asio::awaitable<Result<std::string>> now(Connection& conn) {
    auto rows = co_await conn.query(kNow, Params::none(), statement_deadline());
    if (!rows) co_return rows.error();
    co_return rows->front().get<std::string>(0);
  }

  // Runs `work` in one read-only snapshot of the source, ended whatever `work` answers.
  template <class T>
  asio::awaitable<Result<T>> in_snapshot(std::function<asio::awaitable<Result<T>>()> work) {
    auto begun = co_await source->query(kBeginSnapshot, Params::none(), statement_deadline());
    if (!begun) co_return begun.error();
    auto result = co_await work();
    auto ended = co_await source->query(kRollback, Params::none(), statement_deadline());
    if (!result) co_return result.error();
    if (!ended) co_return ended.error();
    co_return result;
  }

  // Keeps a loop of batches to its share of the time (MoveOptions::work_share).
  class Pacer {
   public:
    explicit Pacer(double work_share) : work_share_(work_share) {}
    // Call after each batch: pauses for it.
    asio::awaitable<void> batch_done() {
      auto now = std::chrono::steady_clock::now();
      auto pause = pause_after(now - started_, work_share_);
      if (pause > std::chrono::nanoseconds::zero()) {
        asio::steady_timer timer(co_await asio::this_coro::executor, pause);
        co_await timer.async_wait(asio::use_awaitable);
      }
      started_ = std::chrono::steady_clock::now();
    }

   private:
    double work_share_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  };

  // Reads a copy's next batch of rows (their JSON texts), after the last row copied (its JSON;
  // empty before the first batch).
  using ReadBatch = std::function<asio::awaitable<Result<Rows>>(const std::string& last)>;

  // Copies the rows of `where` of `table` to the target: each batch `read` gives is upserted there,
  // then the loop pauses to keep to `work_share` of the time; the count of rows copied.
  asio::awaitable<Result<std::int64_t>> copy_batches(const Table& table, const std::string& where,
                                                     const std::string& step, double work_share,
                                                     const ReadBatch& read) {
    auto total = co_await count(*source, table.name(), where);
    if (!total) co_return total.error();
    const auto upsert = table.upsert();
    std::int64_t done = 0;
    std::string last;
    progress(step, table.name(), 0, *total);
    Pacer pacer(work_share);
    for (;;) {
      auto batch = co_await read(last);
      if (!batch) co_return batch.error();
      if (batch->empty()) break;
      auto rows = texts_of(*batch);
      last = rows.back();
      Params params(json_array(rows));
      auto written = co_await run(*target, "move.upsert", upsert, params);
      if (!written) co_return written.error();
      done += batch->size();
      progress(step, table.name(), done, std::max(done, *total));
      co_await pacer.batch_done();
    }
    co_return done;
  }

  // Copies the rows of `where` of `table` (with a key) to the target, in batches in key order,
  // each read by a statement of its own and paced (MoveOptions::work_share). No snapshot is held
  // for the whole copy, so that the source's vacuum keeps up with the rows the serving load
  // updates: the source captures every change from before the copy begins, and a row changed
  // after its batch was read is copied again by the catch-up.
  asio::awaitable<Result<std::int64_t>> copy_by_key(const Table& table, const std::string& where) {
    const auto first = table.select_json_in_key_order(where, false, options.batch_rows);
    const auto next = table.select_json_in_key_order(where, true, options.batch_rows);
    co_return co_await copy_batches(table, where, "copy", options.work_share,
                                    [&](const std::string& last) -> asio::awaitable<Result<Rows>> {
                                      // Named, not a conditional of two co_awaits (GCC 12
                                      // miscompiles those).
                                      Params after = last.empty() ? Params::none() : Params(last);
                                      co_return co_await run(*source, "move.batch",
                                                             last.empty() ? first : next, after);
                                    });
  }

  // Copies the rows of `where` of `table` to the target, in batches, from one snapshot through a
  // cursor, unpaced (inside the fence: tables without a key, and rows that must be copied as they
  // are at one moment).
  asio::awaitable<Result<std::int64_t>> copy_rows(const Table& table, const std::string& where,
                                                  const std::string& step) {
    co_return co_await in_snapshot<std::int64_t>(
        [&]() { return copy_in_snapshot(table, where, step); });
  }
  asio::awaitable<Result<std::int64_t>> copy_in_snapshot(const Table& table,
                                                         const std::string& where,
                                                         const std::string& step) {
    auto declared = co_await run(
        *source, "move.declare",
        "DECLARE liftoff_move NO SCROLL CURSOR FOR " + table.select_json(where), Params::none());
    if (!declared) co_return declared.error();
    const auto fetch = fmt::format("FETCH {} FROM liftoff_move", options.batch_rows);
    co_return co_await copy_batches(
        table, where, step, 1.0, [&](const std::string&) -> asio::awaitable<Result<Rows>> {
          co_return co_await run(*source, "move.fetch", fetch, Params::none());
        });
  }

  // Deletes the org's rows of every table on `conn`, children first, in batches.
  asio::awaitable<Result<void>> delete_org(Connection& conn, const std::string& step) {
    for (auto table = tables.rbegin(); table != tables.rend(); ++table) {
      auto total = co_await count(conn, table->name(), table->all_rows());
      if (!total) co_return total.error();
      const auto sql = fmt::format(
          "WITH gone AS (DELETE FROM {0} WHERE ctid = ANY (ARRAY(SELECT ctid FROM {0} WHERE {1} "
          "LIMIT {2})) RETURNING 1) SELECT count(*) FROM gone",
          table->name(), table->all_rows(), options.batch_rows);
      std::int64_t done = 0;
      progress(step, table->name(), 0, *total);
      Pacer pacer(options.work_share);
      for (;;) {
        auto deleted = co_await run(conn, "move.delete", sql, Params::none());
        if (!deleted) co_return deleted.error();
        auto batch = deleted->front().get<std::int64_t>(0);
        if (batch == 0) break;
        done += batch;
        progress(step, table->name(), done, std::max(done, *total));
        co_await pacer.batch_done();
      }
    }
    co_return Result<void>{};
  }

  // A round of captured changes: the keys of each changed table and the rows the source has for
  // them now, read in one snapshot.
  struct Applied {
    const Table* table;
    std::string keys, rows;  // JSON arrays
  };
  struct Round {
    std::int64_t changes = 0;
    std::string seqs;  // the changes' seq, a JSON array
    std::vector<Applied> applied;
  };
  asio::awaitable<Result<Round>> read_round(std::int64_t limit, bool fenced) {
    Params next(org, limit);
    auto changes = co_await source->query(kChanges, next, statement_deadline());
    if (!changes) co_return changes.error();
    std::map<std::string, std::set<std::string>> keys;  // table -> keys (JSON objects)
    std::vector<std::string> seqs;
    for (int r = 0; r < changes->size(); ++r) {
      auto row = (*changes)[r];
      seqs.push_back(std::to_string(row.get<std::int64_t>(0)));
      keys[row.get<std::string>(1)].insert(row.get<std::string>(2));
    }
    Round round{changes->size(), json_array(seqs), {}};
    for (const auto& table : tables) {
      auto of_table = keys.find(table.name());
      if (of_table == keys.end()) continue;
      auto key_array = json_array(of_table->second);
      auto where = fmt::format("({}) IN ({})", joined(table.key), table.keys_in(1));
      if (table.spec->settled && !fenced) where += fmt::format(" AND ({})", table.spec->settled);
      Params params(key_array);
      auto rows = co_await run(*source, "move.changed_rows", table.select_json(where), params);
      if (!rows) co_return rows.error();
      round.applied.push_back({&table, std::move(key_array), json_array(texts_of(*rows))});
    }
    co_return round;
  }

  // Applies up to `limit` captured changes to the target; returns how many it read.
  asio::awaitable<Result<std::int64_t>> catch_up_round(std::int64_t limit, bool fenced) {
    auto read = co_await in_snapshot<Round>([&]() { return read_round(limit, fenced); });
    if (!read) co_return read.error();
    if (read->changes == 0) co_return 0;
    const auto& applied = read->applied;

    // On the target, in one transaction: the keys the source no longer has are deleted
    // (children first), the rows it has are written (parents first).
    auto target_begun = co_await target->query(kBegin, Params::none(), statement_deadline());
    if (!target_begun) co_return target_begun.error();
    auto apply = [&]() -> asio::awaitable<Result<void>> {
      for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
        const auto& table = *it->table;
        auto sql =
            fmt::format("DELETE FROM {} WHERE ({}) IN ({}) AND ({}) NOT IN ({})", table.name(),
                        joined(table.key), table.keys_in(1), joined(table.key), table.keys_in(2));
        Params params(it->keys, it->rows);
        auto deleted = co_await run(*target, "move.apply_deletes", sql, params);
        if (!deleted) co_return deleted.error();
      }
      for (const auto& a : applied) {
        Params params(a.rows);
        auto written = co_await run(*target, "move.apply_rows", a.table->upsert(), params);
        if (!written) co_return written.error();
      }
      co_return Result<void>{};
    };
    auto done = co_await apply();
    if (!done) {
      auto rolled = co_await target->query(kRollback, Params::none(), statement_deadline());
      (void)rolled;
      co_return done.error();
    }
    auto committed = co_await target->query(kCommit, Params::none(), statement_deadline());
    if (!committed) co_return committed.error();
    // Applied: forgotten on the source (were the mover stopped before this, they would be
    // applied again, to the same effect).
    Params forget(db::Json{read->seqs});
    auto forgotten = co_await source->query(kChangesApplied, forget, statement_deadline());
    if (!forgotten) co_return forgotten.error();
    report.changes_applied += read->changes;
    co_return read->changes;
  }

  // Catches up until a round finds fewer than `until_below` changes (0: none left).
  asio::awaitable<Result<void>> catch_up(std::int64_t until_below, bool fenced) {
    std::int64_t rounds = 0;
    for (;;) {
      auto read = co_await catch_up_round(options.batch_rows, fenced);
      if (!read) co_return read.error();
      progress("catch up", "", report.changes_applied, 0);
      if (*read == 0 || (*read < until_below && *read < options.batch_rows)) break;
      if (++rounds > 10'000)
        co_return make_error(Errc::unavailable, "the org changes faster than the mover applies");
    }
    co_return Result<void>{};
  }

  // Inside the fence: what is copied whole, replacing the target's.
  asio::awaitable<Result<void>> copy_fenced_tables() {
    for (const auto& table : tables) {
      std::string where;
      if (table.spec->copy == Copy::in_fence) {
        // Replaced whole: an earlier try's copy may hold rows the source has deleted since.
        auto cleared = co_await run(
            *target, "move.clear",
            fmt::format("DELETE FROM {} WHERE {}", table.name(), table.all_rows()), Params::none());
        if (!cleared) co_return cleared.error();
        where = table.all_rows();
      } else if (table.spec->settled) {
        where = fmt::format("({}) AND NOT ({})", table.all_rows(), table.spec->settled);
      } else {
        continue;
      }
      auto copied = co_await copy_rows(table, where, "fence");
      if (!copied) co_return copied.error();
    }
    co_return Result<void>{};
  }

  // Every table's count of the org's rows, and the audit chain's head, equal on both sides.
  asio::awaitable<Result<void>> verify() {
    report.tables.clear();
    for (const auto& table : tables) {
      auto on_source = co_await count(*source, table.name(), table.all_rows());
      if (!on_source) co_return on_source.error();
      auto on_target = co_await count(*target, table.name(), table.all_rows());
      if (!on_target) co_return on_target.error();
      if (*on_source != *on_target)
        co_return make_error(
            Errc::internal, fmt::format("{}: {} rows on the source, {} on the target", table.name(),
                                        *on_source, *on_target));
      report.tables.push_back({table.name(), *on_source});
    }
    const auto head_sql = fmt::format(
        "SELECT last_seq, encode(last_hash, 'hex') FROM audit_chains WHERE org_id = '{}'",
        org.to_string());
    auto source_head = co_await run(*source, "move.audit_head", head_sql, Params::none());
    if (!source_head) co_return source_head.error();
    auto target_head = co_await run(*target, "move.audit_head", head_sql, Params::none());
    if (!target_head) co_return target_head.error();
    auto head = [](const Rows& rows) {
      return rows.empty() ? std::string("none")
                          : std::to_string(rows.front().get<std::int64_t>(0)) + "/" +
                                rows.front().get<std::string>(1);
    };
    if (head(*source_head) != head(*target_head))
      co_return make_error(
          Errc::internal,
          fmt::format("the audit chain's head is {} on the source, {} on the target",
                      head(*source_head), head(*target_head)));
    if (!source_head->empty()) report.audit_head = source_head->front().get<std::int64_t>(0);
    co_return Result<void>{};
  }
};

// The cluster named `name`; null when none is.
const ClusterAddress* find_cluster(const std::vector<ClusterAddress>& clusters,
                                   const std::string& name) {
  auto it = std::find_if(clusters.begin(), clusters.end(),
                         [&](const ClusterAddress& c) { return c.name == name; });
  return it == clusters.end() ? nullptr : &*it;
}

// How long `since` ago was.
Millis since(db::Clock::time_point start) {
  return std::chrono::duration_cast<Millis>(db::Clock::now() - start);
}

}  // namespace

std::chrono::nanoseconds pause_after(std::chrono::nanoseconds worked, double work_share) {
  if (work_share >= 1.0 || work_share <= 0.0 || worked <= std::chrono::nanoseconds::zero())
    return std::chrono::nanoseconds::zero();
  return std::chrono::nanoseconds(
      std::llround(static_cast<double>(worked.count()) * (1.0 - work_share) / work_share));
}

Mover::Mover(std::vector<ClusterAddress> clusters, MoveOptions options)
    : clusters_(std::move(clusters)), options_(std::move(options)) {}

asio::awaitable<Result<MoveReport>> Mover::move(const db::Uuid& org, const std::string& target) {
  const auto started = db::Clock::now();
  if (!find_cluster(clusters_, target))
    co_return make_error(Errc::not_found, "no shard " + target + " is configured");
  Run run(options_, org);
  auto control = co_await Run::connect(clusters_.front());
  if (!control) co_return control.error();
  run.control = std::move(*control);

  auto entry = co_await identity::directory_entry(*run.control, org, statement_deadline());
  if (!entry) co_return entry.error();
  if (!*entry) co_return make_error(Errc::not_found, "no such organization");
  Params of_org(org);
  auto unfinished = co_await run.control->query(kMoveOf, of_org, statement_deadline());
  if (!unfinished) co_return unfinished.error();
  std::string source = (*entry)->shard, phase;
  if (!unfinished->empty()) {
    auto row = unfinished->front();
    if (row.get<std::string>(1) != target)
      co_return make_error(Errc::conflict,
                           "the organization's move to " + row.get<std::string>(1) +
                               " is unfinished: move it there, or abort that move first");
    source = row.get<std::string>(0);
    phase = row.get<std::string>(2);
    run.report.resumed = true;
  }
  run.report.source = source;
  run.report.target = target;
  if (source == target) co_return run.report;  // there already
  if ((*entry)->shard != source && (*entry)->shard != target)
    co_return make_error(Errc::conflict, "the organization is on " + (*entry)->shard +
                                             ", neither the move's source nor its target");
  if (!find_cluster(clusters_, source))
    co_return make_error(Errc::unavailable,
                         "the organization's shard " + source + " is not configured here");
  auto opened =
      co_await run.open(*find_cluster(clusters_, source), *find_cluster(clusters_, target));
  if (!opened) co_return opened.error();
  run.report.moved = true;

  if ((*entry)->shard == source) {
    if (phase.empty()) {
      Params start(org, source, target);
      auto started_move = co_await run.control->query(kStartMove, start, statement_deadline());
      if (!started_move) co_return started_move.error();
      phase = "copying";
    }
    // The copy can be kept only if the source captured every change since it began.
    auto mark = co_await run.source->query(kMarkOf, of_org, statement_deadline());
    if (!mark) co_return mark.error();
    const bool copied = phase == "copied" && !mark->empty();

    // 1. Capture, once every transaction that could have changed the org unseen has ended.
    auto captured = co_await run.source->query(kCapture, of_org, statement_deadline());
    if (!captured) co_return captured.error();
    auto marked_at = co_await run.now(*run.source);
    if (!marked_at) co_return marked_at.error();
    auto settled = co_await run.wait_for_transactions(*run.source, *marked_at, Millis(60'000));
    if (!settled) co_return settled.error();

    // 2. Copy: over what an earlier move of the org left on the target, deleted first.
    auto copy_started = db::Clock::now();
    auto arriving = co_await run.target->query(kArriving, of_org, statement_deadline());
    if (!arriving) co_return arriving.error();
    if (!copied) {
      auto forgotten = co_await run.target->query(kForgetChanges, of_org, statement_deadline());
      if (!forgotten) co_return forgotten.error();
      auto cleared = co_await run.delete_org(*run.target, "prepare");
      if (!cleared) co_return cleared.error();
      for (const auto& table : run.tables) {
        if (table.spec->copy != Copy::captured) continue;
        auto done = co_await run.copy_by_key(table, table.settled_rows());
        if (!done) co_return done.error();
      }
      Params copied_phase(org, std::string("copied"));
      auto recorded = co_await run.control->query(kMovePhase, copied_phase, statement_deadline());
      if (!recorded) co_return recorded.error();
    }
    run.report.copy = since(copy_started);

    // 3. Catch up while the org keeps changing.
    auto catch_up_started = db::Clock::now();
    auto caught_up = co_await run.catch_up(options_.fence_backlog, false);
    if (!caught_up) co_return caught_up.error();
    run.report.catch_up = since(catch_up_started);

    // 4. The fence, until a try finishes inside it.
    bool switched = false;
    while (!switched) {
      if (run.report.fence_attempts++ == options_.fence_attempts)
        co_return make_error(Errc::unavailable,
                             "the fence expired before the move could finish inside it; "
                             "run the move again (a larger --fence-limit gives it more time)");
      auto fence_started = db::Clock::now();
      auto fenced = co_await identity::fence_org(
          *run.control, org, source, options_.fence_limit + Millis(1'000), statement_deadline());
      if (!fenced) co_return fenced.error();
      if (!*fenced) co_return make_error(Errc::conflict, "the organization left " + source);
      run.progress("fence", "", 0, 0);
      asio::steady_timer hearing(co_await asio::this_coro::executor, options_.hearing);
      co_await hearing.async_wait(asio::use_awaitable);
      auto attempt = [&]() -> asio::awaitable<Result<bool>> {
        Params fence(org, static_cast<std::int64_t>(options_.fence_limit.count()));
        auto marked = co_await run.source->query(kFence, fence, statement_deadline());
        if (!marked) co_return marked.error();
        auto fenced_at = co_await run.now(*run.source);
        if (!fenced_at) co_return fenced_at.error();
        auto quiet =
            co_await run.wait_for_transactions(*run.source, *fenced_at, options_.fence_limit);
        if (!quiet) co_return false;
        auto last = co_await run.catch_up(0, true);
        if (!last) co_return last.error();
        auto whole = co_await run.copy_fenced_tables();
        if (!whole) co_return whole.error();
        auto verified = co_await run.verify();
        if (!verified) co_return verified.error();
        auto moved = co_await run.source->query(kMoved, of_org, statement_deadline());
        if (!moved) co_return moved.error();
        co_return !moved->empty();
      };
      auto held = co_await attempt();
      if (held && *held) {
        // 5. Switch. Until this commits the org is the source's (which refuses its writes: a
        // mover stopped here leaves it unwritable until the move is run again).
        auto unmarked = co_await run.target->query(kUnmark, of_org, statement_deadline());
        if (!unmarked) co_return unmarked.error();
        auto done = co_await identity::switch_org_shard(*run.control, org, source, target,
                                                        statement_deadline());
        if (!done) co_return done.error();
        if (!*done) co_return make_error(Errc::conflict, "the organization left " + source);
        Params switched_phase(org, std::string("switched"));
        auto recorded =
            co_await run.control->query(kMovePhase, switched_phase, statement_deadline());
        if (!recorded) co_return recorded.error();
        switched = true;
        run.report.fence = since(fence_started);
        continue;
      }
      // The fence did not hold (or a step failed): the org's writes go on at the source.
      auto reopened = co_await run.source->query(kCapture, of_org, statement_deadline());
      auto lifted = co_await identity::unfence_org(*run.control, org, statement_deadline());
      if (!held) co_return held.error();
      if (!reopened) co_return reopened.error();
      if (!lifted) co_return lifted.error();
      spdlog::warn("org {}: the fence expired before the move finished in it; trying again",
                   org.to_string());
      auto again = co_await run.catch_up(options_.fence_backlog, false);
      if (!again) co_return again.error();
    }
  }

  // 6. Clean up the source: its rows of the org, and what the capture recorded. The mark stays
  // ('moved'): a write that still finds its way there is refused.
  auto clean_started = db::Clock::now();
  auto cleaned = co_await run.delete_org(*run.source, "clean up");
  if (!cleaned) co_return cleaned.error();
  auto forgotten = co_await run.source->query(kForgetChanges, of_org, statement_deadline());
  if (!forgotten) co_return forgotten.error();
  auto ended = co_await run.control->query(kEndMove, of_org, statement_deadline());
  if (!ended) co_return ended.error();
  run.report.clean_up = since(clean_started);
  if (run.report.tables.empty()) {  // resumed after the switch: what the target holds
    for (const auto& table : run.tables) {
      auto rows = co_await Run::count(*run.target, table.name(), table.all_rows());
      if (!rows) co_return rows.error();
      run.report.tables.push_back({table.name(), *rows});
    }
  }
  run.report.total = since(started);
  co_return run.report;
}

asio::awaitable<Result<void>> Mover::abort(const db::Uuid& org) {
  Run run(options_, org);
  auto control = co_await Run::connect(clusters_.front());
  if (!control) co_return control.error();
  run.control = std::move(*control);
  Params of_org(org);
  auto unfinished = co_await run.control->query(kMoveOf, of_org, statement_deadline());
  if (!unfinished) co_return unfinished.error();
  if (unfinished->empty())
    co_return make_error(Errc::not_found, "no move of the organization is unfinished");
  auto source = unfinished->front().get<std::string>(0);
  auto target = unfinished->front().get<std::string>(1);
  auto entry = co_await identity::directory_entry(*run.control, org, statement_deadline());
  if (!entry) co_return entry.error();
  if (*entry && (*entry)->shard != source)
    co_return make_error(Errc::conflict, "the move switched the organization to " +
                                             (*entry)->shard +
                                             " already: run it again to finish it");
  if (!find_cluster(clusters_, source) || !find_cluster(clusters_, target))
    co_return make_error(Errc::unavailable, "the move's shards are not both configured here");
  auto opened =
      co_await run.open(*find_cluster(clusters_, source), *find_cluster(clusters_, target));
  if (!opened) co_return opened.error();
  // The source serves the org's writes again first; then the copy goes.
  auto unmarked = co_await run.source->query(kUnmark, of_org, statement_deadline());
  if (!unmarked) co_return unmarked.error();
  auto target_unmarked = co_await run.target->query(kUnmark, of_org, statement_deadline());
  if (!target_unmarked) co_return target_unmarked.error();
  auto lifted = co_await identity::unfence_org(*run.control, org, statement_deadline());
  if (!lifted) co_return lifted.error();
  auto forgotten = co_await run.source->query(kForgetChanges, of_org, statement_deadline());
  if (!forgotten) co_return forgotten.error();
  auto cleared = co_await run.delete_org(*run.target, "abort");
  if (!cleared) co_return cleared.error();
  auto ended = co_await run.control->query(kEndMove, of_org, statement_deadline());
  if (!ended) co_return ended.error();
  co_return Result<void>{};
}

}  // namespace liftoff::shards
