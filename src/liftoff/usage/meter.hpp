#pragma once
// Usage metering (docs/decisions/0019-usage-metering.md): what each organization used, per hour.
//
// Counters (API requests admitted, events delivered to its streams, jobs enqueued) are counted in
// the process where they happen, with no I/O: each worker thread adds to its own table. A
// background loop (run) writes them every flush interval as one batch in one transaction, keyed by
// (this process, the batch's sequence number): a batch whose outcome was unknown (the connection
// broke around its COMMIT) is written again with the same key, and the database recognizes it, so
// nothing is counted twice and nothing acknowledged is dropped. At a graceful stop the loop waits
// for the server's in-flight requests and writes a last batch; a crash loses at most one interval.
//
// Holdings (records and bytes an org stores) are measured, not counted: a measurement scans the
// org's records (Statement::scans, in the org's turn), at most every holdings_refresh per org and
// only for orgs active in this process. Between measurements the process adds what it stored
// itself, so a quota check (holdings()) needs no round trip; writes through other processes show
// at their next measurement. A write of this process that finishes while a measurement runs may
// or may not be in its scan (its commit raced the scan's snapshot): such a measurement is
// discarded and taken again on the next pass; after kUnsettledMeasurements in a row it is kept,
// the racing writes counted on top (a quota then errs towards refusing, never past the limit,
// until the next measurement). Each measurement is also the hour's gauge: the hour's row keeps the
// most the org was measured to hold.
//
// Thread-safety: count(), stored() and holdings() from any thread; flush() and run() from one
// coroutine at a time.
#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::core {
class Registry;
class Counter;
}  // namespace liftoff::core
namespace liftoff::db {
class Database;
}

namespace liftoff::usage {

enum class Count : std::uint8_t { api_requests, events, jobs };
inline constexpr std::size_t kCounts = 3;

// What an organization stores.
struct Holdings {
  std::int64_t records = 0;
  std::int64_t storage_bytes = 0;
};

struct MeterOptions {
  std::chrono::milliseconds flush_interval{5'000};
  std::chrono::milliseconds holdings_refresh{60'000};
  std::chrono::milliseconds statement_timeout{10'000};
  std::size_t workers = 1;
  // Organizations whose holdings are kept; the least recently asked are forgotten past it.
  std::size_t holdings_entries = 100'000;
};

class Meter {
 public:
  // Measurements discarded in a row for racing this process's writes before one is kept anyway.
  static constexpr int kUnsettledMeasurements = 3;

  // One organization's hour: the unit of counting and of writing.
  struct Key {
    db::Uuid org;
    std::int64_t hour;  // hours since the Unix epoch (UTC)
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& key) const noexcept {
      return db::UuidHash{}(key.org) ^ (static_cast<std::size_t>(key.hour) * 0x9E3779B97F4A7C15ULL);
    }
  };
  struct Hour {
    std::array<std::int64_t, kCounts> counts{};
    std::optional<Holdings> held;  // the most measured during the hour
  };
  using Table = std::unordered_map<Key, Hour, KeyHash>;

  // Measures an organization's holdings (a scan); the scope acts for the org.
  using Measure = std::function<boost::asio::awaitable<Result<Holdings>>(const db::Scope&)>;

  Meter(db::Database& database, MeterOptions options, core::Registry* metrics);
  ~Meter();
  Meter(const Meter&) = delete;
  Meter& operator=(const Meter&) = delete;

  // Set once, before run(): how holdings are measured (the records domain's).
  void set_measure(Measure measure) { measure_ = std::move(measure); }

  void count(const db::Uuid& org, Count what, std::int64_t n = 1);
  // This process stored `records` more records (fewer, when negative) and `bytes` more bytes.
  void stored(const db::Uuid& org, std::int64_t records, std::int64_t bytes);
  // What the org holds as last measured plus what this process stored since; nullopt until the
  // org's first measurement (asking schedules it).
  [[nodiscard]] std::optional<Holdings> holdings(const db::Uuid& org);

  // Writes what was counted since the last batch (or the failed batch again). Errors: the
  // database's; the batch is kept for the next call.
  [[nodiscard]] boost::asio::awaitable<Result<void>> flush();
  // Writes one batch's rows of the orgs on tenant shard `shard` under (this process, `seq`) in one
  // transaction there: a second write of the same seq (its first one's answer was lost) adds
  // nothing. flush() uses it; tests call it directly.
  [[nodiscard]] boost::asio::awaitable<Result<void>> write(std::int64_t seq, std::size_t shard,
                                                           const Table& table);
  // Measures the holdings that are due (each in its org's turn), until `*stopping` if given: a
  // pass over thousands of orgs (a write load spread over them) takes minutes, and a server that
  // is stopping needs none of it.
  [[nodiscard]] boost::asio::awaitable<void> measure_due(
      const std::atomic<bool>* stopping = nullptr);
  // Until `stopping`: flush every flush_interval, and measure what is due as often on a loop of
  // its own. Then, once `drained` holds (the server answered its last request; checked every
  // 10 ms), a last flush, retried for a few seconds.
  [[nodiscard]] boost::asio::awaitable<void> run(const std::atomic<bool>& stopping,
                                                 std::function<bool()> drained);

  // This process's identity in batch keys.
  [[nodiscard]] const db::Uuid& process() const { return process_; }
  // Counts not yet written (tests, /metrics).
  [[nodiscard]] std::int64_t unwritten(Count what) const;

 private:
  struct Shard {
    std::mutex mutex;
    Table table;
  };
  struct Held {
    std::optional<Holdings> measured;
    Holdings since;  // what this process stored after the measurement
    std::chrono::steady_clock::time_point measured_at{};
    std::chrono::steady_clock::time_point asked_at{};
    bool active = false;       // stored or asked since the measurement
    std::uint64_t stores = 0;  // stored() calls so far
    int unsettled = 0;         // measurements in a row discarded: writes finished while they ran
  };
  Shard& shard();
  [[nodiscard]] boost::asio::awaitable<void> measure_until(const std::atomic<bool>& stopping);
  // Adds `hour` to the org's current hour in this worker's table.
  void add(const db::Uuid& org, const Hour& hour);

  db::Database& database_;
  MeterOptions options_;
  Measure measure_;
  db::Uuid process_;
  std::vector<std::unique_ptr<Shard>> shards_;
  // The batch being written: it stays until written, then the next is taken from the shards.
  // Each org's rows go to its tenant shard (docs/decisions/0021-tenant-shards.md), under the same
  // key on every shard; a shard written is dropped from the batch, so a retry writes the others.
  struct Batch {
    std::int64_t seq = 0;
    Table table;                                   // not yet split by tenant shard
    std::map<std::size_t, Table> by_tenant_shard;  // split: index in Database::shards() -> rows
  };
  // Splits the pending batch by tenant shard (once).
  [[nodiscard]] boost::asio::awaitable<Result<void>> split_pending();
  std::optional<Batch> pending_;
  std::int64_t next_seq_ = 1;
  mutable std::mutex held_mutex_;
  std::unordered_map<db::Uuid, Held, db::UuidHash> held_;
  core::Counter* batches_ = nullptr;
  core::Counter* failures_ = nullptr;
  core::Counter* measurements_ = nullptr;
};

}  // namespace liftoff::usage
