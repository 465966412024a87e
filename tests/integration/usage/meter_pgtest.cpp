// The usage meter against a real PostgreSQL: counts from many threads reach usage_hourly exactly
// once, a batch written twice is counted once, and holdings follow their measurement plus what the
// process stored since. The jobs per day quota holds an org once its metered jobs of today reach
// its plan's limit.
#include <gtest/gtest.h>

#include <thread>

#include "integration/services_support.hpp"
#include "liftoff/core/id.hpp"
#include "liftoff/core/metrics.hpp"
#include "liftoff/core/worker.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/usage/job_quota.hpp"
#include "liftoff/usage/meter.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"

namespace liftoff::usage {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::block_on;

db::Uuid new_org() {
  return db::Uuid{core::new_uuid_v7()};
}

// A migrated database of this file's own, made once.
const std::string& database_url() {
  static const std::string url = testing::migrated_database("usage_meter");
  return url;
}

// What usage_hourly holds for `org` (as the superuser reads it).
struct Stored {
  std::int64_t api_requests = -1, events = -1, jobs = -1;
  std::optional<std::int64_t> records;
};
Stored stored_usage(const db::Uuid& org) {
  static constexpr db::Statement kSum{
      db::Plane::any, "metertest.sum",
      "SELECT coalesce(sum(api_requests), 0)::int8, coalesce(sum(events), 0)::int8, "
      "coalesce(sum(jobs), 0)::int8, max(records) FROM usage_hourly WHERE org_id = $1"};
  Stored out;
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(database_url());
    db::Params params(org);
    auto rows = co_await conn->query(kSum, params, db::deadline_after(10s));
    EXPECT_TRUE(rows);
    if (!rows) co_return;
    auto row = rows->front();
    out = {row.get<std::int64_t>(0), row.get<std::int64_t>(1), row.get<std::int64_t>(2),
           row.get<std::optional<std::int64_t>>(3)};
  }());
  return out;
}

struct Harness {
  core::Registry registry;
  asio::io_context io{1};  // outlives the database's connections
  db::Database database;
  Meter meter;
  explicit Harness(std::size_t workers = 1)
      : database(options(), registry, workers), meter(database, {.workers = workers}, &registry) {}
  static db::DatabaseOptions options() {
    db::DatabaseOptions o;
    o.connect = {database_url(), {}, "liftoff-test"};
    return o;
  }
  // Whether a flush worked (its error is reported when not).
  bool flush() {
    auto flushed = block_on(io, meter.flush());
    EXPECT_TRUE(flushed) << flushed.error().for_log();
    return static_cast<bool>(flushed);
  }
  bool write(std::int64_t seq, const Meter::Table& table) {
    auto written = block_on(io, meter.write(seq, 0, table));  // one cluster: main
    EXPECT_TRUE(written) << written.error().for_log();
    return static_cast<bool>(written);
  }
};

TEST(Meter, CountsFromManyThreadsReachTheDatabaseExactly) {
  Harness h(4);
  auto org = new_org();
  auto other = new_org();
  constexpr int kPerThread = 20'000;
  std::vector<std::thread> threads;
  std::atomic<bool> counting{true};
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      core::set_this_worker(t);
      for (int i = 0; i < kPerThread; ++i) {
        h.meter.count(org, Count::api_requests);
        if (i % 10 == 0) h.meter.count(other, Count::events, 2);
      }
    });
  }
  // Batches go out while the threads count.
  std::thread flusher([&] {
    while (counting.load()) {
      h.flush();
      std::this_thread::sleep_for(5ms);
    }
  });
  for (auto& t : threads) t.join();
  counting.store(false);
  flusher.join();
  ASSERT_TRUE(h.flush());
  EXPECT_EQ(h.meter.unwritten(Count::api_requests), 0);
  EXPECT_EQ(stored_usage(org).api_requests, 4 * kPerThread);
  EXPECT_EQ(stored_usage(other).events, 4 * (kPerThread / 10) * 2);
  EXPECT_EQ(stored_usage(other).api_requests, 0);
}

TEST(Meter, ABatchWrittenAgainIsCountedOnce) {
  Harness h;
  auto org = new_org();
  Meter::Table table;
  auto hour = std::chrono::duration_cast<std::chrono::hours>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  table[{org, hour}].counts[static_cast<std::size_t>(Count::jobs)] = 7;
  // The first write committed but its answer was lost; the meter writes the same batch again.
  ASSERT_TRUE(h.write(1'000'000, table));
  ASSERT_TRUE(h.write(1'000'000, table));
  EXPECT_EQ(stored_usage(org).jobs, 7);
  // Another batch of the same hour adds to it.
  ASSERT_TRUE(h.write(1'000'001, table));
  EXPECT_EQ(stored_usage(org).jobs, 14);
}

TEST(Meter, HoldingsAreTheMeasurementPlusWhatTheProcessStoredSince) {
  Harness h;
  auto org = new_org();
  int measured = 0;
  h.meter.set_measure([&measured](const db::Scope& scope) -> asio::awaitable<Result<Holdings>> {
    EXPECT_TRUE(scope.tenant.org_id().has_value());
    ++measured;
    co_return Holdings{10, 1'000};
  });
  EXPECT_FALSE(h.meter.holdings(org).has_value());  // not measured yet: asking schedules it
  block_on(h.io, h.meter.measure_due());
  EXPECT_EQ(measured, 1);
  auto held = h.meter.holdings(org);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->records, 10);
  h.meter.stored(org, 2, 50);
  h.meter.stored(org, -1, -20);
  held = h.meter.holdings(org);
  EXPECT_EQ(held->records, 11);
  EXPECT_EQ(held->storage_bytes, 1'030);
  // Not due again before holdings_refresh.
  block_on(h.io, h.meter.measure_due());
  EXPECT_EQ(measured, 1);
  // The measurement is the hour's gauge.
  ASSERT_TRUE(h.flush());
  EXPECT_EQ(stored_usage(org).records, 10);
}

// A write of this process that finishes while the scan runs may be in it or not: the scan is taken
// again; a write that finished before the scan began is in it and not counted twice.
TEST(Meter, AMeasurementThatAWriteRacedIsTakenAgain) {
  Harness h;
  auto org = new_org();
  std::int64_t in_database = 1;  // the first record committed before the first scan
  int measured = 0;
  bool write_during_scan = true;
  h.meter.set_measure([&](const db::Scope&) -> asio::awaitable<Result<Holdings>> {
    ++measured;
    auto seen = in_database;
    if (write_during_scan) {
      // A second record commits after the scan's snapshot; its request reports it now.
      ++in_database;
      h.meter.stored(org, 1, 10);
    }
    co_return Holdings{seen, seen * 10};
  });
  EXPECT_FALSE(h.meter.holdings(org).has_value());
  h.meter.stored(org, 1, 10);  // the first record's request reports it before any measurement
  block_on(h.io, h.meter.measure_due());
  EXPECT_EQ(measured, 1);
  EXPECT_FALSE(h.meter.holdings(org).has_value());  // raced: discarded
  write_during_scan = false;
  block_on(h.io, h.meter.measure_due());
  EXPECT_EQ(measured, 2);
  auto held = h.meter.holdings(org);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->records, 2);  // both in the scan, neither counted again
  EXPECT_EQ(held->storage_bytes, 20);
}

TEST(Meter, AMeasurementRacedEveryTimeIsKeptWithTheRacingWritesOnTop) {
  Harness h;
  auto org = new_org();
  std::int64_t in_database = 0;
  int measured = 0;
  h.meter.set_measure([&](const db::Scope&) -> asio::awaitable<Result<Holdings>> {
    ++measured;
    auto seen = in_database;
    ++in_database;  // every scan races a write
    h.meter.stored(org, 1, 0);
    co_return Holdings{seen, 0};
  });
  EXPECT_FALSE(h.meter.holdings(org).has_value());
  for (int i = 0; i < Meter::kUnsettledMeasurements; ++i) block_on(h.io, h.meter.measure_due());
  EXPECT_EQ(measured, Meter::kUnsettledMeasurements);
  auto held = h.meter.holdings(org);
  ASSERT_TRUE(held);
  // The last scan saw what committed before it; the write that raced it is counted on top, and
  // the writes of the discarded scans are in it.
  EXPECT_EQ(held->records, in_database);
}

// A server being stopped leaves the rest of a pass: after a write load spread over thousands of
// orgs it would have measured each of them first, and taken minutes to exit (found profiling).
TEST(Meter, APassOfMeasurementsEndsBetweenOrgsWhenTheServerStops) {
  Harness h;
  std::atomic<bool> stopping{false};
  int measured = 0;
  h.meter.set_measure([&](const db::Scope&) -> asio::awaitable<Result<Holdings>> {
    ++measured;
    stopping = true;  // the server is stopped while the first org is measured
    co_return Holdings{1, 10};
  });
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(h.meter.holdings(new_org()).has_value());
  block_on(h.io, h.meter.measure_due(&stopping));
  EXPECT_EQ(measured, 1);
  stopping = false;  // the next pass (of a server that was not stopped) takes the other four
  block_on(h.io, h.meter.measure_due(&stopping));
  EXPECT_EQ(measured, 2);
  block_on(h.io, h.meter.measure_due());
  EXPECT_EQ(measured, 5);
}

// The jobs of `jobs` for `org` in the hour `hours_ago` before this one, written as a batch.
void write_jobs(Harness& h, const db::Uuid& org, std::int64_t jobs, std::int64_t hours_ago = 0) {
  static std::int64_t seq = 2'000'000;
  Meter::Table table;
  auto hour = std::chrono::duration_cast<std::chrono::hours>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  table[{org, hour - hours_ago}].counts[static_cast<std::size_t>(Count::jobs)] = jobs;
  ASSERT_TRUE(h.write(++seq, table));
}

TEST(JobQuota, AnOrgWhoseJobsTodayReachItsPlansLimitIsHeldUntilItsLimitRises) {
  Harness h;
  auto busy = new_org(), calm = new_org(), elsewhere = new_org();
  std::int64_t busy_limit = 5;
  int plans_read = 0;
  JobQuota quota(h.database,
                 [&](const db::Uuid& org) -> asio::awaitable<Result<std::optional<std::int64_t>>> {
                   ++plans_read;
                   co_return org == busy ? busy_limit : 100;
                 });
  write_jobs(h, busy, 5);
  write_jobs(h, calm, 99);
  write_jobs(h, calm, 1'000, 24);  // yesterday's: not today's quota
  write_jobs(h, elsewhere, 500);   // over, but no job of it ran here: not watched
  quota.ran(busy);
  quota.ran(calm);
  EXPECT_TRUE(quota.held().empty());  // nothing measured yet
  block_on(h.io, quota.measure_due());
  EXPECT_EQ(plans_read, 2);
  EXPECT_EQ(quota.held(), std::vector<db::Uuid>{busy});

  // Watched orgs are measured at every refresh (a held one runs no job): a raised limit frees it.
  busy_limit = 6;
  block_on(h.io, quota.measure_due());
  EXPECT_EQ(plans_read, 4);
  EXPECT_TRUE(quota.held().empty());
  // A job enqueued before the last measurement but written after it is seen at the next one.
  write_jobs(h, busy, 1);
  block_on(h.io, quota.measure_due());
  EXPECT_EQ(quota.held(), std::vector<db::Uuid>{busy});

  // An org none of whose jobs ran in ten refreshes is no longer read; its next job watches it
  // again.
  for (int i = 0; i < 12; ++i) block_on(h.io, quota.measure_due());
  const auto reads = plans_read;
  block_on(h.io, quota.measure_due());
  EXPECT_EQ(plans_read, reads + 1);  // the held org only
  quota.ran(calm);
  block_on(h.io, quota.measure_due());
  EXPECT_EQ(plans_read, reads + 3);
}

TEST(JobQuota, AnOrgThatIsGoneOrWhosePlanCannotBeReadIsNotHeld) {
  Harness h;
  auto gone = new_org(), unreadable = new_org();
  JobQuota quota(h.database,
                 [&](const db::Uuid& org) -> asio::awaitable<Result<std::optional<std::int64_t>>> {
                   if (org == gone) co_return std::optional<std::int64_t>{};
                   co_return make_error(Errc::unavailable, "the control plane is away");
                 });
  write_jobs(h, gone, 10);
  write_jobs(h, unreadable, 10);
  quota.ran(gone);
  quota.ran(unreadable);
  block_on(h.io, quota.measure_due());
  EXPECT_TRUE(quota.held().empty());
}

}  // namespace
}  // namespace liftoff::usage
