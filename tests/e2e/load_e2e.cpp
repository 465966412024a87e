// liftoff-bench's load generator against the real server: it counts what it sends, checks what
// comes back, and accounts for every request an open loop owed. No timing is asserted.
#include "e2e/e2e.hpp"
#include "load/runner.hpp"
#include "load/scenarios.hpp"

namespace liftoff::testing {
namespace {

class Load : public E2E {};

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
  auto report = load::run(options_for(port()), *scenario);
  EXPECT_GT(report.completed, 0u);
  EXPECT_EQ(report.ok, report.completed);
  EXPECT_EQ(report.error_count(), 0u);
  std::uint64_t per_second = 0;
  for (const auto& s : report.timeline) per_second += s.completed;
  EXPECT_EQ(per_second, report.completed);
  EXPECT_EQ(report.latency.count(), report.completed);
}

TEST_F(Load, AnOpenLoopSendsOrReportsEveryRequestItOwed) {
  auto user = sign_up(port(), "load");
  auto scenario = load::make_scenario("me", {user.token, "", {}});
  auto options = options_for(port());
  options.rate = 250;  // 200 requests due in 0.8 s
  auto report = load::run(options, *scenario);
  EXPECT_EQ(report.completed + report.due_not_sent, 200u);
  EXPECT_EQ(report.ok, report.completed);
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

  auto closed = options_for(free_port());  // nobody listens there
  closed.duration = std::chrono::milliseconds(300);
  auto refused = load::run(closed, picky);
  EXPECT_EQ(refused.completed, 0u);
  EXPECT_GT(refused.error_count(), 0u);
}

}  // namespace
}  // namespace liftoff::testing
