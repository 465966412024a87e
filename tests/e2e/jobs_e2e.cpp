// Background jobs through the real binary: `liftoff jobs enqueue` puts 10,000 jobs in a queue, a
// `liftoff worker` is killed with SIGKILL in the middle of them, and a second worker finishes
// them: none lost, each completed once, the dead worker's running jobs run again and counted as
// retries. And an org's admins see and manage the org's jobs over the API, no one else does.
#include <signal.h>

#include "e2e/e2e.hpp"
#include "e2e/records_support.hpp"
#include "liftoff/core/id.hpp"

namespace liftoff::testing {
namespace {

// One number from the test database.
std::int64_t count_where(const std::string& sql) {
  return block_on([&]() -> boost::asio::awaitable<std::int64_t> {
    auto conn = co_await connect_test(test_database_url());
    static constexpr db::Statement kCount{db::Plane::any, "test.count", "", false};
    db::Statement statement = kCount;
    statement.sql = sql;
    auto rows = co_await conn->query(statement, db::Params::none(), db::deadline_after(10s));
    EXPECT_TRUE(rows) << (rows ? "" : rows.error().for_log());
    co_return rows ? rows->front().get<std::int64_t>(0) : -1;
  }());
}

// `liftoff jobs <args>` against the test database; its exit status.
int jobs_cli(std::vector<std::string> args) {
  std::vector<std::string> argv = {LIFTOFF_BINARY, "jobs"};
  argv.insert(argv.end(), args.begin(), args.end());
  Process cli(argv, {{"LIFTOFF_DATABASE_URL", test_database_url()}}, log_path("liftoff-jobs"));
  auto status = cli.wait(120s);
  EXPECT_EQ(status, 0) << cli.log();
  return status.value_or(-1);
}

class JobsE2E : public E2E {};

TEST_F(JobsE2E, AWorkerKilledMidwayLosesNoJob) {
  auto org = db::Uuid{core::new_uuid_v7()}.to_string();
  auto in_org = "FROM jobs WHERE org_id = '" + org + "'";
  ASSERT_EQ(jobs_cli({"enqueue", "--kind", "liftoff.noop", "--count", "10000", "--queue",
                      "e2e-kill", "--org", org}),
            0);
  ASSERT_EQ(count_where("SELECT count(*) " + in_org + " AND state = 'ready'"), 10'000);
  Server::Env worker_env{{"LIFTOFF_JOB_QUEUES", "e2e-kill:10"},
                         {"LIFTOFF_JOB_LEASE", "2s"},
                         {"LIFTOFF_JOB_POLL_INTERVAL", "100ms"}};
  Server first(worker_env, "worker");
  ASSERT_TRUE(first.wait_ready()) << first.process->log();
  ASSERT_TRUE(eventually(
      [&] { return count_where("SELECT count(*) " + in_org + " AND state = 'completed'") > 0; },
      60s));
  first.process->signal(SIGKILL);
  first.process->wait(10s);
  // A statement the worker sent just before it died still runs (and commits) on its server
  // backend: let those finish before counting what the dead worker held.
  std::this_thread::sleep_for(1s);
  auto completed_before = count_where("SELECT count(*) " + in_org + " AND state = 'completed'");
  auto running_at_death = count_where("SELECT count(*) " + in_org + " AND state = 'running'");
  EXPECT_LT(completed_before, 10'000) << "the worker finished before it was killed";
  OwnServer second(worker_env);  // `serve` with the worker role does the same
  ASSERT_TRUE(eventually(
      [&] {
        return count_where("SELECT count(*) " + in_org + " AND state = 'completed'") == 10'000;
      },
      120s))
      << second.process().log();
  EXPECT_EQ(count_where("SELECT count(*) " + in_org), 10'000);
  // What the dead worker was running (or had finished but not yet recorded) ran again, once, and
  // is counted as a retry: its second attempt, with the reason. (At least what was seen running
  // after the kill: a statement the dead worker sent last may commit on its server backend after
  // that count.)
  auto retried = count_where("SELECT count(*) " + in_org + " AND attempt = 2");
  EXPECT_GE(retried, running_at_death);
  EXPECT_EQ(count_where("SELECT count(*) " + in_org +
                        " AND last_error = 'the worker running it was lost (lease expired)'"),
            retried);
  EXPECT_EQ(count_where("SELECT count(*) " + in_org + " AND attempt > 2"), 0);
  EXPECT_EQ(count_where("SELECT count(*) " + in_org + " AND attempt = 1 AND last_error IS NULL"),
            10'000 - retried);
}

TEST_F(JobsE2E, AnOrgsAdminsSeeAndManageItsJobsAndNoOneElse) {
  auto tenant = new_tenant(port(), "jobs-admin");
  auto other = new_tenant(port(), "jobs-other");
  auto member = sign_up(port(), "jobs-member");
  add_member(tenant, member, "member");
  // A queue no worker runs: the job stays ready until an admin acts.
  ASSERT_EQ(jobs_cli({"enqueue", "--kind", "liftoff.noop", "--queue", "e2e-idle", "--org",
                      tenant.org, "--args", R"({"note":"hello"})"}),
            0);
  auto jobs_path = "/v1/orgs/" + tenant.org + "/jobs";
  auto listed = send_json(port(), "GET", jobs_path + "?state=ready", tenant.owner.token);
  ASSERT_EQ(status(listed), 200) << (listed ? listed->body : "");
  auto jobs = json_of(*listed).at("jobs").as_array();
  ASSERT_EQ(jobs.size(), 1u);
  auto job = jobs[0].as_object();
  EXPECT_EQ(job.at("kind"), "liftoff.noop");
  EXPECT_EQ(job.at("queue"), "e2e-idle");
  EXPECT_EQ(job.at("args").at("note"), "hello");
  auto id = std::string(job.at("id").as_string());
  auto one = jobs_path + "/" + id;

  auto cancelled = send_json(port(), "POST", one + "/cancel", tenant.owner.token);
  ASSERT_EQ(status(cancelled), 200);
  EXPECT_EQ(json_of(*cancelled).at("state"), "cancelled");
  EXPECT_EQ(status(send_json(port(), "POST", one + "/cancel", tenant.owner.token)), 409);
  auto retried = send_json(port(), "POST", one + "/retry", tenant.owner.token);
  ASSERT_EQ(status(retried), 200);
  EXPECT_EQ(json_of(*retried).at("state"), "ready");
  auto discarded = send_json(port(), "POST", one + "/discard", tenant.owner.token);
  ASSERT_EQ(status(discarded), 200);
  EXPECT_EQ(json_of(*discarded).at("state"), "discarded");
  auto got = send_json(port(), "GET", one, tenant.owner.token);
  ASSERT_EQ(status(got), 200);
  EXPECT_EQ(json_of(*got).at("state"), "discarded");

  // A member may not; another org's owner sees no such job; bad input is named.
  EXPECT_EQ(status(send_json(port(), "GET", jobs_path, member.token)), 403);
  EXPECT_EQ(
      status(send_json(port(), "GET", "/v1/orgs/" + other.org + "/jobs/" + id, other.owner.token)),
      404);
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs/" + other.org + "/jobs/" + id + "/retry",
                             other.owner.token)),
            404);
  auto other_list = send_json(port(), "GET", "/v1/orgs/" + other.org + "/jobs", other.owner.token);
  ASSERT_EQ(status(other_list), 200);
  EXPECT_TRUE(json_of(*other_list).at("jobs").as_array().empty());
  auto bad_state = send_json(port(), "GET", jobs_path + "?state=asleep", tenant.owner.token);
  EXPECT_EQ(status(bad_state), 400);
  EXPECT_NE(bad_state->body.find("\"state\""), std::string::npos);
  EXPECT_EQ(status(send_json(port(), "GET", jobs_path + "/not-a-uuid", tenant.owner.token)), 404);
}

}  // namespace
}  // namespace liftoff::testing
