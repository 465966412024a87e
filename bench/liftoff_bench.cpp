// liftoff-bench: the harness every performance claim uses (issue 5). So far: `run`, one scenario
// against a running server, closed or open loop, with a table, JSON and an SVG chart.
//
//   liftoff-bench run --url http://127.0.0.1:8080 --scenario list --token T
//     --records /v1/orgs/O/collections/tickets/records --connections 64 --duration 10
//     [--rate 5000] [--json out.json] [--svg out.svg]
//
// Exit status 1 when more than 0.1% of the requests failed (an error is any wrong answer).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/url/parse.hpp>
#include <fstream>

#include "load/report.hpp"
#include "load/runner.hpp"
#include "load/scenarios.hpp"

namespace {

constexpr double kMaxErrorFraction = 0.001;

int run_command(const std::string& url, const std::string& scenario_name,
                liftoff::load::RunOptions options, double seconds, double think_ms,
                const liftoff::load::ScenarioOptions& scenario_options,
                const std::string& json_path, const std::string& svg_path) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed || parsed->scheme() != "http") {
    fmt::print(stderr, "--url must be http://host[:port]\n");
    return 2;
  }
  options.host = parsed->host();
  options.port = parsed->has_port() ? parsed->port_number() : 80;
  options.duration = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
  options.think = std::chrono::milliseconds(static_cast<std::int64_t>(think_ms));
  std::unique_ptr<liftoff::load::Scenario> scenario;
  try {
    scenario = liftoff::load::make_scenario(scenario_name, scenario_options);
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 2;
  }
  if (!scenario) {
    fmt::print(stderr, "unknown scenario {}\n", scenario_name);
    return 2;
  }
  auto report = liftoff::load::run(options, *scenario);
  fmt::print("{}", liftoff::load::table(report));
  if (!json_path.empty()) std::ofstream(json_path) << liftoff::load::to_json(report) << "\n";
  if (!svg_path.empty()) std::ofstream(svg_path) << liftoff::load::to_svg(report);
  if (report.completed == 0 || report.error_fraction() > kMaxErrorFraction) {
    fmt::print(stderr, "FAILED: {} of {} requests went wrong (more than {:.1f}%)\n",
               report.error_count(), report.ok + report.error_count(), kMaxErrorFraction * 100);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"liftoff-bench: load generator and benchmark harness"};
  cli.require_subcommand(1);
  auto* run = cli.add_subcommand("run", "load one scenario against a running server");
  std::string url = "http://127.0.0.1:8080", scenario = "healthz", json_path, svg_path, ids_file;
  liftoff::load::RunOptions options;
  liftoff::load::ScenarioOptions scenario_options;
  double seconds = 10, think_ms = 0, timeout_s = 10;
  run->add_option("--url", url, "server base URL");
  run->add_option("--scenario", scenario, "healthz, me, get, list or create")
      ->check(CLI::IsMember(liftoff::load::scenario_names()));
  run->add_option("--connections,-c", options.connections, "keep-alive connections")
      ->check(CLI::Range(1u, 100'000u));
  run->add_option("--duration,-d", seconds, "seconds")->check(CLI::Range(0.1, 86'400.0));
  run->add_option("--rate", options.rate, "open loop: requests per second offered (0: closed loop)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--think", think_ms, "closed loop: milliseconds between answer and next request")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--timeout", timeout_s, "seconds a request may take")->check(CLI::PositiveNumber);
  run->add_option("--threads", options.threads, "loader threads")->check(CLI::Range(1u, 64u));
  run->add_option("--token", scenario_options.token, "bearer token (me, get, list, create)");
  run->add_option("--records", scenario_options.records,
                  "records path /v1/orgs/{org}/collections/{c}/records (get, list, create)");
  run->add_option("--ids", ids_file, "file of record ids, one per line (get)");
  run->add_option("--json", json_path, "write the results as JSON here");
  run->add_option("--svg", svg_path, "write the latency charts as SVG here");
  CLI11_PARSE(cli, argc, argv);

  if (!ids_file.empty()) {
    std::ifstream in(ids_file);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) scenario_options.ids.push_back(line);
  }
  options.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  return run_command(url, scenario, options, seconds, think_ms, scenario_options, json_path,
                     svg_path);
}
