// The job queue and its workers against a real PostgreSQL: a job exists exactly when its
// transaction commits and then runs once; priorities, run_at, retries with backoff then discard,
// unique keys, timeouts, cancellation of a running job, rescue after a worker's lease expires,
// shutdown handing jobs back, fairness between orgs, and periodic jobs enqueued once per tick by
// two workers. Each test uses queues of its own (the database is shared by the suite).
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_set>

#include "integration/services_support.hpp"
#include "liftoff/core/id.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/jobs/runner.hpp"
#include "support/async.hpp"

namespace liftoff::jobs {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::block_on;
using testing::sleep_for;
using testing::until;

class JobsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { world = new testing::ServiceWorld("jobs_test"); }
  static void TearDownTestSuite() {
    world->database->stop_worker(0);
    delete world;
  }

  static db::Uuid new_org() { return db::Uuid{core::new_uuid_v7()}; }
  static db::Scope org_scope(const db::Uuid& org) {
    return db::Scope::background(db::Tenant::org(org), 10s);
  }
  static NewJob job(std::string queue, std::string kind = "test.record") {
    NewJob job;
    job.queue = std::move(queue);
    job.kind = std::move(kind);
    return job;
  }
  static RunnerOptions options(std::vector<QueueConfig> queues) {
    RunnerOptions options;
    options.queues = std::move(queues);
    options.poll_interval = 100ms;
    options.lease = 3s;
    options.backoff_base = 10ms;
    options.backoff_max = 50ms;
    options.shutdown_timeout = 200ms;
    return options;
  }
  // Runs `runner`'s loops and `body` on the suite's event loop until `body` returns; then stops
  // the runner and waits for its loops to end.
  static void run_with(Runner& runner, const std::function<asio::awaitable<void>()>& body) {
    std::atomic<bool> stopping{false};
    runner.start(0, 1, world->io, stopping);
    block_on(world->io, [&]() -> asio::awaitable<void> {
      co_await body();
      stopping = true;
    }());
  }
  static Job get(const db::Uuid& id) {
    Queue queue(*world->database);
    JobStore store(queue);
    auto scope = db::Scope::background(db::Tenant::every_org(), 10s);
    auto job = block_on(world->io, store.get(scope, id));
    EXPECT_TRUE(job) << (job ? "" : job.error().for_log());
    return job ? *job : Job{};
  }
  // Inside a coroutine on the suite's loop: waits until job `id` is in `state`.
  static asio::awaitable<bool> reaches(const db::Uuid& id, State state) {
    Queue queue(*world->database);
    JobStore store(queue);
    auto end = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < end) {
      auto scope = db::Scope::background(db::Tenant::every_org(), 10s);
      auto job = co_await store.get(scope, id);
      if (job && job->state == state) co_return true;
      co_await sleep_for(20ms);
    }
    co_return false;
  }
  static std::vector<std::optional<db::Uuid>> enqueue(Queue& queue, const db::Uuid& org,
                                                      std::vector<NewJob> jobs) {
    auto ids = block_on(world->io, queue.enqueue(org_scope(org), jobs));
    EXPECT_TRUE(ids) << (ids ? "" : ids.error().for_log());
    return ids ? *ids : std::vector<std::optional<db::Uuid>>{};
  }

  static testing::ServiceWorld* world;
};
testing::ServiceWorld* JobsTest::world = nullptr;

// What handlers saw, in order.
struct Seen {
  std::mutex mutex;
  std::vector<Job> jobs;
  void add(const Job& job) {
    std::lock_guard lock(mutex);
    jobs.push_back(job);
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return jobs.size();
  }
};

Handler recording(Seen& seen, const Outcome& outcome = Outcome::done()) {
  return [&seen, outcome](const Job& job, const db::Scope&) -> asio::awaitable<Outcome> {
    seen.add(job);
    co_return outcome;
  };
}

TEST_F(JobsTest, AJobExistsExactlyWhenItsTransactionCommitsAndRunsOnce) {
  Queue queue(*world->database);
  auto org = new_org();
  std::vector<NewJob> rolled_back{job("commit")}, committed{job("commit")};
  committed[0].args["n"] = 1;
  block_on(world->io, [&]() -> asio::awaitable<void> {
    auto scope = org_scope(org);
    auto tx = co_await world->database->begin(scope);
    CO_ASSERT_TRUE(tx);
    auto ids = co_await queue.enqueue(*tx, org, rolled_back);
    CO_ASSERT_TRUE(ids);
    CO_ASSERT_TRUE(co_await tx->rollback());
  }());
  auto ids = enqueue(queue, org, committed);
  ASSERT_EQ(ids.size(), 1u);
  ASSERT_TRUE(ids[0]);
  Seen seen;
  Runner runner(queue, world->metrics, options({{"commit", 4}}));
  runner.handle("test.record", recording(seen));
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 1; }));
    co_await sleep_for(500ms);  // several polls: nothing else runs
  });
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.jobs[0].id, *ids[0]);
  EXPECT_EQ(seen.jobs[0].org_id, org);
  EXPECT_EQ(boost::json::parse(seen.jobs[0].args).as_object().at("n").as_int64(), 1);
  EXPECT_EQ(seen.jobs[0].attempt, 1);
  auto done = get(*ids[0]);
  EXPECT_EQ(done.state, State::completed);
  EXPECT_TRUE(done.finished_at);
  EXPECT_NE(world->metrics.render().find(
                R"(jobs_finished_total{queue="commit",kind="test.record",outcome="completed"} 1)"),
            std::string::npos);
}

// Heartbeats while jobs are leased and finished in quick succession: a job leased while a renewal
// was in flight once looked "lost" to it and was stopped, stuck until its lease ran out.
// Records each job, then takes `pause` to finish it.
Handler recording_for(Seen& seen, std::chrono::milliseconds pause) {
  return [&seen, pause](const Job& job, const db::Scope&) -> asio::awaitable<Outcome> {
    seen.add(job);
    co_await sleep_for(pause);
    co_return Outcome::done();
  };
}

TEST_F(JobsTest, ManyShortJobsUnderFrequentHeartbeatsEachRunOnce) {
  Queue queue(*world->database);
  auto org = new_org();
  enqueue(queue, org, std::vector<NewJob>(600, job("heartbeats")));
  Seen seen;
  auto opts = options({{"heartbeats", 4}});
  // A heartbeat every 333 ms, racing the completions all run long. (At 300 ms a loaded machine
  // once stalled a heartbeat past its lease's last 200 ms: the jobs were rescued and ran again,
  // which the lease allows. Two gaps made that likelier and are closed: the next heartbeat waited
  // for the last one's round trip, and jobs whose completion was being written were not renewed.)
  opts.lease = 1s;
  Runner runner(queue, world->metrics, opts);
  runner.handle("test.record", recording_for(seen, 1ms));
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 600; }));
    co_await sleep_for(300ms);
  });
  EXPECT_EQ(seen.size(), 600u);
  for (const auto& job : seen.jobs) EXPECT_EQ(job.attempt, 1);
  auto finished = world->metrics.render();
  EXPECT_NE(
      finished.find(
          R"(jobs_finished_total{queue="heartbeats",kind="test.record",outcome="completed"} 600)"),
      std::string::npos);
}

// Jobs prefetched behind a busy slot whose leases run out while they wait (the worker's thread was
// blocked past its heartbeat) are found lost: each such attempt ends without suspending, inside the
// call that started it. That call once spawned the job it had moved from the front of its queue
// before popping it, so the ending attempt started the moved-from job again: an exception, and a
// slot never given back, after which nothing of the queue ran.
TEST_F(JobsTest, JobsLostWhileTheyWaitedLeaveTheirSlotsToTheOthers) {
  Queue queue(*world->database);
  auto org = new_org();
  enqueue(queue, org, std::vector<NewJob>(200, job("lost-waiting")));
  Seen seen;
  auto opts = options({{"lost-waiting", 1}});
  opts.lease = 300ms;  // a heartbeat every 100 ms
  Runner runner(queue, world->metrics, opts);
  std::atomic<bool> blocked{false};
  runner.handle("test.record", [&](const Job& job, const db::Scope&) -> asio::awaitable<Outcome> {
    seen.add(job);
    // Once the loop has a pace (and so prefetches), block its thread past the
    // leases of the jobs waiting behind this one.
    if (seen.size() == 100 && !blocked.exchange(true)) std::this_thread::sleep_for(700ms);
    co_await sleep_for(1ms);
    co_return Outcome::done();
  });
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] {
      std::lock_guard lock(seen.mutex);
      std::set<std::string> distinct;
      for (const auto& j : seen.jobs) distinct.insert(j.id.to_string());
      return distinct.size() >= 200;
    }));
  });
  EXPECT_TRUE(blocked.load());
}

// A wake-up (an enqueue) that arrives while every slot is busy: the loop once took it for a
// reason to fetch, found no free slot, and went round again without ever suspending, so the
// running job never finished (the whole event loop stalled until shutdown).
TEST_F(JobsTest, AWakeUpWhileEverySlotIsBusyWaitsForASlot) {
  Queue queue(*world->database);
  auto org = new_org();
  enqueue(queue, org, {job("busy")});
  Seen seen;
  Runner runner(queue, world->metrics, options({{"busy", 1}}));
  runner.handle("test.record", recording_for(seen, 200ms));
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 1; }));
    // Enqueued from this loop while the only slot is taken: its wake-up reaches the runner now.
    std::vector<NewJob> second{job("busy")};
    auto ids = co_await queue.enqueue(org_scope(org), second);
    CO_ASSERT_TRUE(ids);
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 2; }));
  });
  EXPECT_EQ(seen.size(), 2u);
}

TEST_F(JobsTest, HigherPriorityRunsFirstAndRunAtWaits) {
  Queue queue(*world->database);
  auto org = new_org();
  auto low = job("priority"), high = job("priority"), later = job("priority");
  low.args["name"] = "low";
  high.args["name"] = "high";
  high.priority = 5;
  later.args["name"] = "later";
  later.priority = 10;
  auto not_before = std::chrono::time_point_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now() + 1500ms);
  later.run_at = not_before;
  enqueue(queue, org, {low, high, later});
  Seen seen;
  Runner runner(queue, world->metrics, options({{"priority", 1}}));
  runner.handle("test.record", recording(seen));
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 3; }));
  });
  ASSERT_EQ(seen.size(), 3u);
  auto name = [&](std::size_t i) {
    return std::string(boost::json::parse(seen.jobs[i].args).as_object().at("name").as_string());
  };
  EXPECT_EQ(name(0), "high");
  EXPECT_EQ(name(1), "low");
  EXPECT_EQ(name(2), "later");
  EXPECT_GE(*seen.jobs[2].started_at, not_before);
}

TEST_F(JobsTest, FailedAttemptsRetryWithBackoffThenTheJobIsDiscarded) {
  Queue queue(*world->database);
  auto org = new_org();
  auto flaky = job("retry", "test.fails");
  flaky.max_attempts = 3;
  auto hopeless = job("retry", "test.hopeless");
  auto ids = enqueue(queue, org, {flaky, hopeless});
  Seen fails, hopeless_runs;
  Runner runner(queue, world->metrics, options({{"retry", 2}}));
  runner.handle("test.fails", recording(fails, Outcome::retry("the peer said 503")));
  runner.handle("test.hopeless", recording(hopeless_runs, Outcome::discard("no such target")));
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return fails.size() >= 3 && hopeless_runs.size() >= 1; }));
    co_await sleep_for(300ms);
  });
  EXPECT_EQ(fails.size(), 3u);  // max_attempts, no more
  EXPECT_EQ(hopeless_runs.size(), 1u);
  for (std::size_t i = 1; i < fails.jobs.size(); ++i) {
    EXPECT_EQ(fails.jobs[i].attempt, static_cast<int>(i) + 1);
    EXPECT_GE(*fails.jobs[i].started_at, *fails.jobs[i - 1].started_at + 5ms);  // backoff >= base/2
  }
  auto flaky_job = get(*ids[0]);
  EXPECT_EQ(flaky_job.state, State::discarded);
  EXPECT_EQ(flaky_job.attempt, 3);
  EXPECT_EQ(flaky_job.last_error, "the peer said 503");
  auto hopeless_job = get(*ids[1]);
  EXPECT_EQ(hopeless_job.state, State::discarded);
  EXPECT_EQ(hopeless_job.attempt, 1);
  EXPECT_EQ(hopeless_job.last_error, "no such target");
}

TEST_F(JobsTest, BackoffDoublesUpToItsCeilingWithJitter) {
  for (int attempt = 1; attempt <= 12; ++attempt) {
    auto full = std::min<std::int64_t>(1000LL << (attempt - 1), 60'000);
    auto delay = backoff(attempt, 1s, 60s).count();
    EXPECT_GE(delay, full / 2) << attempt;
    EXPECT_LE(delay, full) << attempt;
  }
}

TEST_F(JobsTest, AUniqueKeyHoldsForItsWindow) {
  Queue queue(*world->database);
  auto org = new_org(), other = new_org();
  auto unique = job("unique");
  unique.unique = NewJob::Unique{"digest:user-1", 3600s};
  auto first = enqueue(queue, org, {unique, unique});
  ASSERT_EQ(first.size(), 2u);
  EXPECT_TRUE(first[0]);
  EXPECT_FALSE(first[1]);                           // the same key in one batch
  EXPECT_FALSE(enqueue(queue, org, {unique})[0]);   // held
  EXPECT_TRUE(enqueue(queue, other, {unique})[0]);  // keys are per org
  auto short_lived = job("unique");
  short_lived.unique = NewJob::Unique{"digest:user-2", 1s};
  EXPECT_TRUE(enqueue(queue, org, {short_lived})[0]);
  std::this_thread::sleep_for(1100ms);
  EXPECT_TRUE(enqueue(queue, org, {short_lived})[0]);  // the window passed
}

TEST_F(JobsTest, InvalidJobsAreRefusedNamingTheField) {
  Queue queue(*world->database);
  auto bad = job("bad queue name!");
  bad.max_attempts = 0;
  std::vector<NewJob> jobs{job("fine"), bad};
  auto ids = block_on(world->io, queue.enqueue(org_scope(new_org()), jobs));
  ASSERT_FALSE(ids);
  EXPECT_EQ(ids.error().code, Errc::validation_failed);
  ASSERT_EQ(ids.error().fields.size(), 2u);
  EXPECT_EQ(ids.error().fields[0].field, "jobs[1].queue");
  EXPECT_EQ(ids.error().fields[1].field, "jobs[1].max_attempts");
}

// A handler that waits until cancelled (or a minute).
Handler waiting(Seen& seen) {
  return [&seen](const Job& job, const db::Scope&) -> asio::awaitable<Outcome> {
    seen.add(job);
    co_await sleep_for(60s);
    co_return Outcome::done();
  };
}

TEST_F(JobsTest, AnAttemptPastItsTimeoutIsStoppedAndRetried) {
  Queue queue(*world->database);
  auto slow = job("timeout", "test.slow");
  slow.timeout = 100ms;
  slow.max_attempts = 2;
  auto ids = enqueue(queue, new_org(), {slow});
  Seen seen;
  Runner runner(queue, world->metrics, options({{"timeout", 1}}));
  runner.handle("test.slow", waiting(seen));
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await reaches(*ids[0], State::discarded));
  });
  EXPECT_EQ(seen.size(), 2u);
  auto timed_out = get(*ids[0]);
  EXPECT_EQ(timed_out.last_error, "timed out after 100 ms");
}

TEST_F(JobsTest, CancellingARunningJobStopsItAtTheNextHeartbeat) {
  Queue queue(*world->database);
  auto org = new_org();
  auto ids = enqueue(queue, org, {job("cancel", "test.slow")});
  Seen seen;
  auto opts = options({{"cancel", 1}});
  opts.lease = 600ms;  // a heartbeat every 200 ms
  Runner runner(queue, world->metrics, opts);
  runner.handle("test.slow", waiting(seen));
  JobStore store(queue);
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 1; }));
    auto cancelled = co_await store.act(org_scope(org), *ids[0], JobStore::Action::cancel);
    CO_ASSERT_TRUE(cancelled);
    EXPECT_EQ(cancelled->state, State::cancelled);
    // Another org cannot see it, let alone act on it.
    auto outsider = co_await store.act(org_scope(new_org()), *ids[0], JobStore::Action::retry);
    CO_ASSERT_TRUE(!outsider);
    EXPECT_EQ(outsider.error().code, Errc::not_found);
    auto again = co_await store.act(org_scope(org), *ids[0], JobStore::Action::cancel);
    CO_ASSERT_TRUE(!again);
    EXPECT_EQ(again.error().code, Errc::conflict);
    EXPECT_TRUE(co_await until([&] {
      return world->metrics.render().find(
                 R"(jobs_finished_total{queue="cancel",kind="test.slow",outcome="cancelled"} 1)") !=
             std::string::npos;
    }));
  });
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(get(*ids[0]).state, State::cancelled);
}

TEST_F(JobsTest, AJobWhoseWorkerDiedRunsAgainAfterItsLeaseExpires) {
  Queue queue(*world->database);
  auto ids = enqueue(queue, new_org(), {job("rescue")});
  JobStore store(queue);
  // A worker leases it and dies (never renews, never finishes).
  auto leased =
      block_on(world->io, store.fetch(0, "rescue", kPlatform, 10, 100, "dead-worker", 300ms));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->jobs.size(), 1u);
  Seen seen;
  Runner runner(queue, world->metrics, options({{"rescue", 1}}));
  runner.handle("test.record", recording(seen));
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 1; }));
  });
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.jobs[0].attempt, 2);  // the lost attempt counts
  auto rescued = get(*ids[0]);
  EXPECT_EQ(rescued.state, State::completed);
  EXPECT_EQ(rescued.last_error, "the worker running it was lost (lease expired)");
  // The dead worker's late completion changes nothing.
  std::vector<db::Uuid> late{*ids[0]};
  auto stale = block_on(world->io, store.complete(0, late, "dead-worker"));
  ASSERT_TRUE(stale);
  EXPECT_EQ(*stale, 0);
}

// A worker whose heartbeat came late (a loaded machine) loses a running job's lease to a rescue and
// may lease the job again while its attempt still runs. Once a second attempt started beside the
// first and shared its bookkeeping: the first's end removed it, the second threw, and its slot was
// never freed (with every slot lost so, the loop stalled for good).
constexpr db::Statement kExpireLease{db::Plane::tenant, "test.expire_lease",
                                     "UPDATE jobs SET leased_until = now() - interval '1 second' "
                                     "WHERE id = $1 AND state = 'running'"};

TEST_F(JobsTest, AJobLeasedAgainWhileItsAttemptRunsIsNotStartedTwice) {
  Queue queue(*world->database);
  JobStore store(queue);
  auto org = new_org();
  auto ids = enqueue(queue, org, {job("relapse")});
  ASSERT_EQ(ids.size(), 1u);
  Seen seen;
  bool open = false;  // the gate the first attempt waits at
  auto opts = options({{"relapse", 2}});
  opts.lease = 30s;  // no heartbeat during the test: the rescue below is the only lease change
  Runner runner(queue, world->metrics, opts);
  runner.handle("test.record", [&](const Job& job, const db::Scope&) -> asio::awaitable<Outcome> {
    seen.add(job);
    co_await until([&] { return open; });
    co_return Outcome::done();
  });
  run_with(runner, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE(co_await until([&] { return seen.size() >= 1; }));
    auto scope = org_scope(org);
    db::Params expire(*ids[0]);
    auto expired = co_await world->database->query(db::Intent::write, scope, kExpireLease, expire);
    CO_ASSERT_TRUE(expired);
    auto rescued = co_await store.rescue(0, 10);
    CO_ASSERT_TRUE(rescued);
    // The loop (a free slot, polling every 100 ms) leases the job again.
    auto every = db::Scope::background(db::Tenant::every_org(), 10s);
    for (auto end = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < end;
         co_await sleep_for(20ms)) {
      auto now = co_await store.get(every, *ids[0]);
      if (now && now->state == State::running && now->attempt == 2) break;
    }
    co_await sleep_for(300ms);  // time for a second attempt to start, were it to
    open = true;
    for (auto end = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < end;
         co_await sleep_for(20ms)) {
      auto now = co_await store.get(every, *ids[0]);
      if (now && now->state == State::completed) break;
    }
    // Both slots still serve: two jobs wait at the gate at once.
    open = false;
    std::vector<NewJob> two{job("relapse"), job("relapse")};
    CO_ASSERT_TRUE(co_await queue.enqueue(scope, two));
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 3; }));
    open = true;
  });
  EXPECT_EQ(seen.size(), 3u);  // the relapsed job ran once in this worker, then the two others
  EXPECT_EQ(get(*ids[0]).state, State::completed);
}

TEST_F(JobsTest, AtShutdownUnfinishedJobsGoBackToTheQueueUnstarted) {
  Queue queue(*world->database);
  auto ids = enqueue(queue, new_org(), {job("shutdown", "test.slow")});
  Seen seen;
  Runner runner(queue, world->metrics, options({{"shutdown", 1}}));
  runner.handle("test.slow", waiting(seen));
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 1; }));
  });
  auto handed_back = get(*ids[0]);
  EXPECT_EQ(handed_back.state, State::ready);
  EXPECT_EQ(handed_back.attempt, 0);
}

// Short jobs make a loop fetch ahead of its slots (up to a batch); at shutdown the jobs it holds
// but never started go back to the queue with no attempt counted, none left leased.
TEST_F(JobsTest, JobsFetchedAheadGoBackToTheQueueAtShutdown) {
  Queue queue(*world->database);
  auto ids = enqueue(queue, new_org(), std::vector<NewJob>(1'000, job("ahead")));
  Seen seen;
  Runner runner(queue, world->metrics, options({{"ahead", 2}}));
  runner.handle("test.record", recording_for(seen, 1ms));
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 300; }));
  });
  std::unordered_set<db::Uuid, db::UuidHash> ran;
  for (const auto& job : seen.jobs) ran.insert(job.id);
  EXPECT_EQ(ran.size(), seen.size());  // none ran twice
  JobStore store(queue);
  JobStore::ListQuery query;
  query.queue = "ahead";
  query.limit = 2'000;
  auto every_org = db::Scope::background(db::Tenant::every_org(), 10s);
  auto jobs = block_on(world->io, store.list(every_org, query));
  ASSERT_TRUE(jobs) << jobs.error().for_log();
  std::size_t completed = 0, ready = 0;
  for (const auto& job : *jobs) {
    if (job.state == State::completed) {
      ++completed;
      EXPECT_TRUE(ran.contains(job.id));
    } else {
      EXPECT_EQ(job.state, State::ready) << "job " << job.id.to_string();
      EXPECT_EQ(job.attempt, 0);
      ++ready;
    }
  }
  EXPECT_EQ(completed, seen.size());
  EXPECT_EQ(completed + ready, ids.size());
}

TEST_F(JobsTest, OneOrgsBacklogDoesNotStarveAnotherOrgsJob) {
  Queue queue(*world->database);
  auto busy = new_org(), quiet = new_org();
  std::vector<NewJob> backlog(2000, job("fair"));
  enqueue(queue, busy, backlog);
  auto quiet_ids = enqueue(queue, quiet, {job("fair")});
  Seen seen;
  Runner runner(queue, world->metrics, options({{"fair", 4}}));
  runner.handle("test.record", recording_for(seen, 2ms));
  run_with(runner, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 40; }));
  });
  std::size_t position = 0;
  for (; position < seen.jobs.size(); ++position) {
    if (seen.jobs[position].org_id == quiet) break;
  }
  // Round robin: the quiet org's job is in the first fetch (the busy org's 1,999 others wait).
  EXPECT_LT(position, 4u);
  EXPECT_EQ(get(*quiet_ids[0]).state, State::completed);
}

TEST_F(JobsTest, AHeldOrgsJobsWaitReadyWhileOtherOrgsJobsRun) {
  Queue queue(*world->database);
  auto held = new_org(), free = new_org();
  auto held_ids = enqueue(queue, held, std::vector<NewJob>(3, job("held")));
  std::mutex mutex;
  bool holding = true;
  std::vector<db::Uuid> fetched_orgs;
  auto opts = options({{"held", 2}});
  opts.held_orgs = [&] {
    std::lock_guard lock(mutex);
    return holding ? std::vector<db::Uuid>{held} : std::vector<db::Uuid>{};
  };
  opts.on_fetched = [&](const db::Uuid& org) {
    std::lock_guard lock(mutex);
    fetched_orgs.push_back(org);
  };
  Seen seen;
  Runner runner(queue, world->metrics, opts);
  runner.handle("test.record", recording(seen));
  auto free_ids = enqueue(queue, free, std::vector<NewJob>(3, job("held")));
  run_with(runner, [&]() -> asio::awaitable<void> {
    // The other org's jobs run; then a few polls pass.
    for (const auto& id : free_ids) EXPECT_TRUE(co_await reaches(*id, State::completed));
    co_await sleep_for(300ms);
    JobStore store(queue);
    for (const auto& id : held_ids) {
      auto job = co_await store.get(db::Scope::background(db::Tenant::every_org(), 10s), *id);
      EXPECT_TRUE(job && job->state == State::ready);
    }
    {
      std::lock_guard lock(mutex);
      EXPECT_EQ(fetched_orgs, std::vector<db::Uuid>(3, free));
      holding = false;  // the next day, or a raised plan
    }
    for (const auto& id : held_ids) EXPECT_TRUE(co_await reaches(*id, State::completed));
  });
  EXPECT_EQ(seen.size(), 6u);
}

TEST_F(JobsTest, APeriodicJobIsEnqueuedOncePerTickByAFleetOfWorkers) {
  // Two processes' worth: each with its own queue object and runner, on one schedule.
  Queue first_queue(*world->database), second_queue(*world->database);
  Seen seen;
  std::vector<std::unique_ptr<Runner>> runners;
  for (auto* queue : {&first_queue, &second_queue}) {
    auto runner = std::make_unique<Runner>(*queue, world->metrics, options({{"periodic", 2}}));
    runner->handle("test.tick", recording(seen));
    runner->schedule(
        {"test-every-second", *CronSchedule::parse("* * * * * *"), job("periodic", "test.tick")});
    runners.push_back(std::move(runner));
  }
  std::atomic<bool> stopping{false};
  for (auto& runner : runners) runner->start(0, 1, world->io, stopping);
  block_on(world->io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return seen.size() >= 4; }));
    stopping = true;
  }());
  std::set<std::int64_t> ticks;
  for (const auto& job : seen.jobs)
    ticks.insert(boost::json::parse(job.args).as_object().at("tick").as_int64());
  EXPECT_EQ(ticks.size(), seen.jobs.size());  // no tick ran twice
  EXPECT_GE(seen.jobs.size(), 4u);
}

}  // namespace
}  // namespace liftoff::jobs
