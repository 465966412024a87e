#include "liftoff/usage/meter.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "liftoff/core/id.hpp"
#include "liftoff/core/metrics.hpp"
#include "liftoff/core/worker.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/db/statement.hpp"

namespace liftoff::usage {
namespace asio = boost::asio;
namespace json = boost::json;
using db::Statement;
using SteadyClock = std::chrono::steady_clock;

namespace {
// The batch's key, in the batch's transaction: a second write of the same batch fails here
// (unique violation) and adds nothing.
constexpr Statement kRecordBatch{db::Plane::tenant, "usage.record_batch",
                                 "INSERT INTO usage_batches (process, seq) VALUES ($1, $2)"};
// One row per (org, hour) of the batch, in key order (two processes' batches lock shared rows in
// the same order). Counters add up; gauges keep the hour's most.
constexpr Statement kAddUsage{
    db::Plane::tenant, "usage.add",
    "INSERT INTO usage_hourly AS u (org_id, hour, api_requests, events, jobs, records, "
    "storage_bytes) SELECT d.org_id, to_timestamp(d.hour * 3600), d.api_requests, d.events, "
    "d.jobs, d.records, d.storage_bytes FROM jsonb_to_recordset($1::jsonb) AS d(org_id uuid, "
    "hour int8, api_requests int8, events int8, jobs int8, records int8, storage_bytes int8) "
    "ORDER BY d.org_id, d.hour "
    "ON CONFLICT (org_id, hour) DO UPDATE SET api_requests = u.api_requests + "
    "EXCLUDED.api_requests, events = u.events + EXCLUDED.events, jobs = u.jobs + EXCLUDED.jobs, "
    "records = GREATEST(u.records, EXCLUDED.records), "
    "storage_bytes = GREATEST(u.storage_bytes, EXCLUDED.storage_bytes)"};
constexpr Statement kForgetBatches{
    db::Plane::tenant, "usage.forget_batches",
    "DELETE FROM usage_batches WHERE written_at < now() - interval '1 day'"};

std::int64_t hour_now() {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  return seconds / 3600;
}

void merge(Meter::Hour& into, const Meter::Hour& from) {
  for (std::size_t i = 0; i < kCounts; ++i) into.counts[i] += from.counts[i];
  if (from.held) {
    if (!into.held) {
      into.held = from.held;
    } else {
      into.held->records = std::max(into.held->records, from.held->records);
      into.held->storage_bytes = std::max(into.held->storage_bytes, from.held->storage_bytes);
    }
  }
}

std::string rows_json(const Meter::Table& table) {
  std::vector<const std::pair<const Meter::Key, Meter::Hour>*> rows;
  rows.reserve(table.size());
  for (const auto& entry : table) rows.push_back(&entry);
  std::sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) {
    if (a->first.org.bytes != b->first.org.bytes) return a->first.org.bytes < b->first.org.bytes;
    return a->first.hour < b->first.hour;
  });
  json::array out;
  out.reserve(rows.size());
  for (const auto* row : rows) {
    const auto& hour = row->second;
    json::object o{{"org_id", row->first.org.to_string()},
                   {"hour", row->first.hour},
                   {"api_requests", hour.counts[static_cast<std::size_t>(Count::api_requests)]},
                   {"events", hour.counts[static_cast<std::size_t>(Count::events)]},
                   {"jobs", hour.counts[static_cast<std::size_t>(Count::jobs)]}};
    if (hour.held) {
      o["records"] = hour.held->records;
      o["storage_bytes"] = hour.held->storage_bytes;
    }
    out.push_back(std::move(o));
  }
  return json::serialize(out);
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}
}  // namespace

Meter::Meter(db::Database& database, MeterOptions options, core::Registry* metrics)
    : database_(database), options_(options), process_{core::new_uuid_v7()} {
  for (std::size_t i = 0; i < std::max<std::size_t>(options_.workers, 1); ++i)
    shards_.push_back(std::make_unique<Shard>());
  if (!metrics) return;
  batches_ = &metrics->counter("usage_batches_written_total",
                               "Batches of usage counts written to the database");
  failures_ = &metrics->counter("usage_batch_failures_total",
                                "Attempts to write a batch of usage counts that failed (retried)");
  measurements_ = &metrics->counter("usage_holdings_measured_total",
                                    "Measurements of an organization's records and bytes");
}

Meter::~Meter() = default;

Meter::Shard& Meter::shard() {
  return *shards_[std::min(core::this_worker(), shards_.size() - 1)];
}

void Meter::add(const db::Uuid& org, const Hour& hour) {
  auto& s = shard();
  std::lock_guard lock(s.mutex);
  merge(s.table[Key{org, hour_now()}], hour);
}

void Meter::count(const db::Uuid& org, Count what, std::int64_t n) {
  if (n == 0) return;
  Hour hour;
  hour.counts[static_cast<std::size_t>(what)] = n;
  add(org, hour);
}

void Meter::stored(const db::Uuid& org, std::int64_t records, std::int64_t bytes) {
  std::lock_guard lock(held_mutex_);
  auto& held = held_[org];
  held.since.records += records;
  held.since.storage_bytes += bytes;
  held.active = true;
  ++held.stores;
}

std::optional<Holdings> Meter::holdings(const db::Uuid& org) {
  std::lock_guard lock(held_mutex_);
  auto& held = held_[org];
  held.asked_at = SteadyClock::now();
  held.active = true;
  if (!held.measured) return std::nullopt;
  return Holdings{held.measured->records + held.since.records,
                  held.measured->storage_bytes + held.since.storage_bytes};
}

std::int64_t Meter::unwritten(Count what) const {
  std::int64_t total = 0;
  auto i = static_cast<std::size_t>(what);
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    for (const auto& [key, hour] : s->table) total += hour.counts[i];
  }
  if (pending_) {
    for (const auto& [key, hour] : pending_->table) total += hour.counts[i];
    for (const auto& [shard, table] : pending_->by_tenant_shard)
      for (const auto& [key, hour] : table) total += hour.counts[i];
  }
  return total;
}

asio::awaitable<Result<void>> Meter::flush() {
  if (!pending_) {
    Batch batch;
    for (auto& s : shards_) {
      Table taken;
      {
        std::lock_guard lock(s->mutex);
        taken.swap(s->table);
      }
      for (const auto& [key, hour] : taken) merge(batch.table[key], hour);
    }
    if (batch.table.empty()) co_return Result<void>{};
    batch.seq = next_seq_++;
    pending_ = std::move(batch);
  }
  auto split = co_await split_pending();
  if (!split) {
    if (failures_) failures_->inc();
    co_return split.error();
  }
  auto& shards = pending_->by_tenant_shard;
  while (!shards.empty()) {
    auto& [shard, table] = *shards.begin();
    auto done = co_await write(pending_->seq, shard, table);
    if (!done) {
      if (failures_) failures_->inc();
      co_return done.error();
    }
    shards.erase(shards.begin());
  }
  pending_.reset();
  if (batches_) batches_->inc();
  co_return Result<void>{};
}

asio::awaitable<Result<void>> Meter::split_pending() {
  auto& table = pending_->table;
  auto scope = db::Scope::background(db::Tenant::control(), options_.statement_timeout);
  while (!table.empty()) {
    auto entry = table.begin();
    auto shard = co_await database_.shard_of(entry->first.org, scope);
    if (!shard) co_return shard.error();
    pending_->by_tenant_shard[*shard].insert(table.extract(entry));
  }
  co_return Result<void>{};
}

asio::awaitable<Result<void>> Meter::write(std::int64_t seq, std::size_t shard,
                                           const Table& table) {
  auto scope = db::Scope::background(db::Tenant::every_org_on(shard), options_.statement_timeout);
  auto tx = co_await database_.begin(scope);
  if (!tx) co_return tx.error();
  db::Params key(process_, seq);
  auto recorded = co_await tx->query(kRecordBatch, key);
  if (!recorded) {
    // Written by an earlier attempt whose answer was lost: nothing more to add.
    if (recorded.error().code == Errc::conflict) co_return Result<void>{};
    co_return recorded.error();
  }
  db::Params rows(rows_json(table));
  auto added = co_await tx->commit_after(kAddUsage, rows);
  if (!added) co_return added.error();
  co_return Result<void>{};
}

asio::awaitable<void> Meter::measure_due(const std::atomic<bool>* stopping) {
  if (!measure_) co_return;
  // Each due org, with what this process had stored since its last measurement when this one
  // began.
  struct Due {
    db::Uuid org;
    Holdings since;
    std::uint64_t stores;
  };
  std::vector<Due> due;
  auto now = SteadyClock::now();
  {
    std::lock_guard lock(held_mutex_);
    // Organizations nobody asked about or stored for in ten refresh periods are forgotten, and
    // the least recently asked past the bound.
    std::erase_if(held_, [&](const auto& entry) {
      return !entry.second.active && now - entry.second.asked_at > 10 * options_.holdings_refresh;
    });
    if (held_.size() > options_.holdings_entries) {
      std::vector<std::pair<SteadyClock::time_point, db::Uuid>> by_age;
      for (const auto& [org, held] : held_) by_age.emplace_back(held.asked_at, org);
      std::sort(by_age.begin(), by_age.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (std::size_t i = 0; i < held_.size() - options_.holdings_entries; ++i)
        held_.erase(by_age[i].second);
    }
    for (const auto& [org, held] : held_) {
      if (held.active && (!held.measured || now - held.measured_at >= options_.holdings_refresh))
        due.push_back({org, held.since, held.stores});
    }
  }
  for (const auto& [org, since_before, stores_before] : due) {
    if (stopping && stopping->load(std::memory_order_relaxed)) co_return;
    auto scope = db::Scope::background(db::Tenant::org(org), options_.statement_timeout);
    auto measured = co_await measure_(scope);
    if (!measured) {
      spdlog::warn("measuring the holdings of org {}: {}", org.to_string(),
                   measured.error().for_log());
      continue;
    }
    {
      std::lock_guard lock(held_mutex_);
      auto& held = held_[org];
      bool raced = held.stores != stores_before;
      if (raced && ++held.unsettled < kUnsettledMeasurements) continue;  // due again next pass
      held.measured = *measured;
      // What was stored before the scan began is in it; what was stored while it ran stays
      // counted (see the header).
      held.since.records -= since_before.records;
      held.since.storage_bytes -= since_before.storage_bytes;
      held.measured_at = SteadyClock::now();
      held.active = raced;
      held.unsettled = 0;
    }
    if (measurements_) measurements_->inc();
    Hour hour;
    hour.held = *measured;
    add(org, hour);
  }
}

namespace {
constexpr auto kTick = std::chrono::milliseconds(100);

// Until `stopping` or `interval` has passed, checking every tick.
asio::awaitable<void> wait_interval(std::chrono::milliseconds interval,
                                    const std::atomic<bool>& stopping) {
  auto next = SteadyClock::now() + interval;
  while (!stopping.load(std::memory_order_relaxed) && SteadyClock::now() < next)
    co_await pause(std::min(kTick, interval));
}
}  // namespace

asio::awaitable<void> Meter::measure_until(const std::atomic<bool>& stopping) {
  while (!stopping.load(std::memory_order_relaxed)) {
    co_await wait_interval(options_.flush_interval, stopping);
    if (!stopping.load(std::memory_order_relaxed)) co_await measure_due(&stopping);
  }
}

asio::awaitable<void> Meter::run(const std::atomic<bool>& stopping, std::function<bool()> drained) {
  // Measurements wait for their org's turn: on a loop of their own, so a busy org never holds up a
  // batch.
  asio::co_spawn(co_await asio::this_coro::executor, measure_until(stopping),
                 [](const std::exception_ptr& failure) {
                   if (failure) spdlog::error("measuring holdings ended by an exception");
                 });
  auto forget_at = SteadyClock::now();
  while (!stopping.load(std::memory_order_relaxed)) {
    co_await wait_interval(options_.flush_interval, stopping);
    if (auto flushed = co_await flush(); !flushed)
      spdlog::warn("writing usage counts: {} (kept for the next batch)", flushed.error().for_log());
    if (SteadyClock::now() >= forget_at) {
      for (std::size_t shard = 0; shard < database_.shards().size(); ++shard) {
        auto scope =
            db::Scope::background(db::Tenant::every_org_on(shard), options_.statement_timeout);
        auto forgotten =
            co_await database_.query(db::Intent::write, scope, kForgetBatches, db::Params::none());
        if (!forgotten)
          spdlog::warn("forgetting old usage batches: {}", forgotten.error().for_log());
      }
      forget_at = SteadyClock::now() + std::chrono::hours(1);
    }
  }
  // The requests still being answered count too: the last batch waits for them.
  while (drained && !drained()) co_await pause(std::chrono::milliseconds(10));
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto flushed = co_await flush();
    if (flushed && !pending_ && unwritten(Count::api_requests) == 0 &&
        unwritten(Count::events) == 0 && unwritten(Count::jobs) == 0)
      co_return;
    if (!flushed) {
      spdlog::warn("writing the last usage counts: {}", flushed.error().for_log());
      co_await pause(std::chrono::milliseconds(250));
    }
  }
  spdlog::error("usage counts not written at shutdown: {} API requests, {} events, {} jobs",
                unwritten(Count::api_requests), unwritten(Count::events), unwritten(Count::jobs));
}

}  // namespace liftoff::usage
