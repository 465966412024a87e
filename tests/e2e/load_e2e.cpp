// liftoff-bench's load generator against the real server: it counts what it sends, checks what
// comes back, and accounts for every request an open loop owed. No timing is asserted.
#include <atomic>
#include <thread>
#include <vector>

#include "e2e/e2e.hpp"
#include "load/runner.hpp"
#include "load/scenarios.hpp"
#include "load/seed.hpp"

namespace liftoff::testing {
namespace {

class Load : public E2E {};

// Each kind of error a run saw, with its count and first example: what a failure should say.
std::string describe_errors(const load::RunReport& report) {
  std::string out;
  for (const auto& [kind, count] : report.errors) {
    out += kind + " x" + std::to_string(count);
    if (auto example = report.error_examples.find(kind); example != report.error_examples.end())
      out += ": " + example->second;
    out += "\n";
  }
  return out;
}

load::RunOptions options_for(unsigned short port) {
  load::RunOptions o;
  o.port = port;
  o.connections = 4;
  o.duration = std::chrono::milliseconds(800);
  o.timeout = std::chrono::seconds(5);
  return o;
}

TEST_F(Load, AClosedLoopCountsRightAnswers) {
  auto scenario = load::make_scenario("healthz", {});
  auto options = options_for(port());
  // The server is a child of this process (the loader): each is charged its own time.
  options.cpu_roots = {{"loader", ::getpid()}, {"server", server_->process->pid()}};
  auto report = load::run(options, *scenario);
  EXPECT_GT(report.cpu_seconds.at("loader"), 0.0);
  EXPECT_GT(report.cpu_seconds.at("server"), 0.0);
  EXPECT_GT(report.completed, 0u);
  EXPECT_EQ(report.ok, report.completed) << describe_errors(report);
  EXPECT_EQ(report.error_count(), 0u);
  std::uint64_t per_second = 0;
  for (const auto& s : report.timeline) per_second += s.completed;
  EXPECT_EQ(per_second, report.completed);
  EXPECT_EQ(report.latency.count(), report.completed);
}

TEST_F(Load, AnOpenLoopSendsOrReportsEveryRequestItOwed) {
  auto user = sign_up(port(), "load");
  auto scenario = load::make_scenario("me", {std::nullopt, user.token, "", {}});
  auto options = options_for(port());
  options.rate = 250;  // 200 requests due in 0.8 s
  auto report = load::run(options, *scenario);
  EXPECT_EQ(report.completed + report.due_not_sent, 200u);
  EXPECT_EQ(report.ok, report.completed) << describe_errors(report);
}

TEST_F(Load, AnOpenLoopKeepsItsConnectionsOpenUntilTheWindowEnds) {
  // 8 connections, 10 requests a second for 2 s: each connection holds the next due request as
  // soon as it is free, so the 20 due requests are all taken 1.2 s into the window. Closing a
  // connection then would put the disconnections into the measured seconds.
  auto user = sign_up(port(), "load-open");
  auto scenario = load::make_scenario("me", {std::nullopt, user.token, "", {}});
  auto options = options_for(port());
  options.connections = 8;
  options.rate = 10;
  options.duration = std::chrono::seconds(2);
  options.connect_time = std::chrono::milliseconds(500);
  using Clock = std::chrono::steady_clock;
  struct Sample {
    Clock::time_point sent, answered;
    double open;  // the server's open connections
  };
  std::atomic<bool> done{false};
  std::vector<Sample> samples;
  std::thread sampler([&] {
    while (!done) {
      auto sent = Clock::now();
      auto open = metric(port(), "http_connections_open");
      samples.push_back({sent, Clock::now(), open});
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a sampling rate
    }
  });
  auto report = load::run(options, *scenario);
  done = true;
  sampler.join();
  EXPECT_EQ(report.ok, 20u) << describe_errors(report);
  ASSERT_EQ(report.connected, 8u);
  // Samples taken wholly inside the run's own window, however late it began.
  std::size_t inside = 0;
  for (const auto& s : samples) {
    if (s.sent < report.window_start || s.answered > report.window_end) continue;
    ++inside;
    EXPECT_GE(s.open, 8 + 1);  // the loader's and the sampler's own
  }
  EXPECT_GT(inside, 0u);
}

// A scenario whose idea of a right answer the server does not share.
class Picky final : public load::Scenario {
 public:
  std::string name() const override { return "picky"; }
  load::Request next(std::mt19937_64&) override { return {"GET", "/v1/me", "", ""}; }
  std::optional<std::string> check(const load::Request&, int status,
                                   std::string_view) const override {
    if (status != 200) return "status " + std::to_string(status);
    return std::nullopt;
  }
};

TEST_F(Load, WrongAnswersAreErrorsByKind) {
  Picky picky;  // no token: every answer is a 401
  auto report = load::run(options_for(port()), picky);
  EXPECT_GT(report.completed, 0u);
  EXPECT_EQ(report.ok, 0u);
  EXPECT_EQ(report.errors.at("status 401"), report.completed);
  EXPECT_DOUBLE_EQ(report.error_fraction(), 1.0);
  // The first wrong answer of each kind is kept, with what was asked.
  auto example = report.error_examples.at("status 401");
  EXPECT_EQ(example.rfind("GET /v1/me -> {", 0), 0u) << example;
  EXPECT_NE(example.find("401"), std::string::npos) << example;

  auto closed = options_for(free_port());  // nobody listens there
  closed.duration = std::chrono::milliseconds(300);
  auto refused = load::run(closed, picky);
  EXPECT_EQ(refused.completed, 0u);
  EXPECT_GT(refused.error_count(), 0u);
}

TEST_F(Load, ASeededDataSetIsWhatTheLoaderExpects) {
  load::Dataset d;
  d.run = "e2e" + std::to_string(::getpid());
  d.users = 25;  // orgs of 10, 10 and 5
  d.records_per_user = 2;
  d.big_orgs = 1;
  d.big_org_records = 30;
  ASSERT_EQ(d.orgs(), 3u);
  ASSERT_EQ(d.records_in_org(0), 50u);
  ASSERT_EQ(d.records_in_org(2), 10u);
  auto seeded = load::seed(test_database_url(), d);
  ASSERT_TRUE(seeded) << seeded.error().detail;
  auto again = load::seed(test_database_url(), d);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::conflict);

  // A member signs in with the token derived from their number, and sees their org and role.
  auto me = with_token(port(), "GET", "/v1/me", d.session_token(17));
  ASSERT_EQ(me ? me->status : 0, 200) << (me ? me->body : "");
  auto body = json_of(*me);
  EXPECT_EQ(body.at("email"), d.user_email(17).c_str());
  auto memberships = body.at("memberships").as_array();
  ASSERT_EQ(memberships.size(), 1u);
  EXPECT_EQ(memberships[0].at("org_id"), d.org_id(1).to_string().c_str());
  EXPECT_EQ(memberships[0].at("role"), "member");
  auto owner = with_token(port(), "GET", "/v1/me", d.session_token(20));
  EXPECT_EQ(json_of(*owner).at("memberships").at(0).at("role"), "owner");

  // Records are where the loader looks for them, with their slots and search text.
  auto list =
      with_token(port(), "GET", d.records_path(0) + "?count=exact&limit=1", d.session_token(3));
  ASSERT_EQ(list ? list->status : 0, 200);
  EXPECT_EQ(json_of(*list).at("count"), 50);
  auto one = with_token(port(), "GET", d.records_path(1) + "/" + d.record_id(1, 5).to_string(),
                        d.session_token(12));
  ASSERT_EQ(one ? one->status : 0, 200);
  EXPECT_EQ(json_of(*one).at("data").at("title"), "ticket 5");
  auto open = with_token(port(), "GET",
                         d.records_path(0) + "?count=exact&limit=1&filter=status%20%3D%20'open'",
                         d.session_token(3));
  EXPECT_EQ(json_of(*open).at("count"), 5);  // every tenth
  auto found = with_token(port(), "GET", d.records_path(2) + "?q=ticket%207", d.session_token(21));
  EXPECT_EQ(json_of(*found).at("records").at(0).at("data").at("title"), "ticket 7");
  EXPECT_EQ(count_of("SELECT count(*) FROM records WHERE org_id = $1::uuid AND search <> "
                     "to_tsvector('simple', (data->>'title') || ' ' || (data->>'status') || ' ')",
                     db::Params(d.org_id(0))),
            0);

  // The loader, driven by the data set alone: every answer right.
  load::ScenarioOptions from_dataset;
  from_dataset.dataset = d;
  for (auto name : {"me", "get", "list", "create", "update", "audit", "search", "mix"}) {
    auto scenario = load::make_scenario(name, from_dataset);
    ASSERT_TRUE(scenario) << name;
    auto options = options_for(port());
    options.duration = std::chrono::milliseconds(400);
    auto report = load::run(options, *scenario);
    EXPECT_GT(report.completed, 0u) << name;
    EXPECT_EQ(report.error_count(), 0u) << name << ": " << report.errors.begin()->first;
  }
  // A fault drill's read-back: every create answered 201 is kept by id, and is there.
  auto mix = load::make_scenario("mix", from_dataset);
  auto options = options_for(port());
  options.duration = std::chrono::milliseconds(1000);
  options.keep_ids_of = "create";
  auto report = load::run(options, *mix);
  ASSERT_GT(report.ok_by_kind["create"], 0u);
  ASSERT_EQ(report.acknowledged_ids.size(), report.ok_by_kind["create"]);
  std::string ids;
  for (const auto& id : report.acknowledged_ids) ids += (ids.empty() ? "" : ",") + id;
  EXPECT_EQ(
      count_of("SELECT count(*) FROM records WHERE id = ANY(string_to_array($1, ',')::uuid[])",
               db::Params(ids)),
      static_cast<std::int64_t>(report.acknowledged_ids.size()));

  auto login = load::make_scenario("login", from_dataset);
  std::mt19937_64 rng(1);
  auto request = login->next(rng);
  auto answer = http_request(port(), "POST", request.target, "Content-Type: application/json\r\n",
                             request.body);
  ASSERT_TRUE(answer);
  EXPECT_EQ(login->check(request, answer->status, answer->body), std::nullopt) << answer->body;
}

}  // namespace
}  // namespace liftoff::testing
