// liftoff-bench: the harness every performance claim uses (issue 5). So far: `seed`, a data set
// written with COPY whose ids and session tokens follow from its name (load/dataset.hpp), and
// `run`, one scenario against a running server, closed or open loop, with a table, JSON and an SVG
// chart (and, with --cpu-of, the CPU the server and its database spent per answer), and
// `capacity`, machines and cost for N users from that CPU per answer and stated assumptions.
//
//   liftoff-bench seed --database-url postgresql://... --run b1 --users 1000000
//   liftoff-bench run --run b1 --users 1000000 --scenario me -c 64 -d 10
//
//   liftoff-bench capacity --measured liftoff=liftoff-mix.json --measured rails=rails-mix.json
//
//   liftoff-bench run --url http://127.0.0.1:8080 --scenario list --token T
//     --records /v1/orgs/O/collections/tickets/records --connections 64 --duration 10
//     [--rate 5000] [--json out.json] [--svg out.svg]
//
// Exit status 1 when more than 0.1% of the requests failed (an error is any wrong answer).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "load/capacity.hpp"
#include "load/dataset.hpp"
#include "load/report.hpp"
#include "load/runner.hpp"
#include "load/scenarios.hpp"
#include "load/seed.hpp"

namespace {

constexpr double kMaxErrorFraction = 0.001;

int run_command(const std::string& url, const std::string& scenario_name,
                liftoff::load::RunOptions options, double seconds, double think_ms,
                const liftoff::load::ScenarioOptions& scenario_options,
                const std::string& json_path, const std::string& svg_path,
                const std::string& acknowledged_path) {
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
  if (!acknowledged_path.empty()) options.keep_ids_of = scenario_name == "mix" ? "create" : "*";
  auto report = liftoff::load::run(options, *scenario);
  fmt::print("{}", liftoff::load::table(report));
  if (!acknowledged_path.empty()) {
    std::ofstream out(acknowledged_path);
    for (const auto& id : report.acknowledged_ids) out << id << "\n";
  }
  if (!json_path.empty()) std::ofstream(json_path) << liftoff::load::to_json(report) << "\n";
  if (!svg_path.empty()) std::ofstream(svg_path) << liftoff::load::to_svg(report);
  if (report.completed == 0 || report.error_fraction() > kMaxErrorFraction) {
    fmt::print(stderr, "FAILED: {} of {} requests went wrong (more than {:.1f}%)\n",
               report.error_count(), report.ok + report.error_count(), kMaxErrorFraction * 100);
    if (report.errors.contains("status 401")) {
      fmt::print(stderr,
                 "401s: the tokens derive from the data set, so `run` needs the --run, --users, "
                 "--records-per-user, --big-orgs and --big-org-records that `seed` was given\n");
    }
    return 1;
  }
  return 0;
}

}  // namespace

// The flags that define a data set: `seed` and `run` must be given the same ones.
void add_dataset_options(CLI::App* command, liftoff::load::Dataset& d) {
  command->add_option("--run", d.run, "the data set's name (ids and tokens derive from it)");
  command->add_option("--users", d.users, "users (one org per 10)")
      ->check(CLI::Range(1ull, 100'000'000ull));
  command->add_option("--records-per-user", d.records_per_user, "records per user, in their org");
  command->add_option("--big-orgs", d.big_orgs, "orgs that hold --big-org-records more records");
  command->add_option("--big-org-records", d.big_org_records, "extra records of each big org");
}

int seed_command(const std::string& database_url, const liftoff::load::Dataset& dataset) {
  fmt::print(stderr, "seeding '{}': {} users, {} orgs, {} records\n", dataset.run, dataset.users,
             dataset.orgs(), dataset.total_records());
  bool terminal = ::isatty(2) != 0;
  auto started = std::chrono::steady_clock::now();
  std::string last_table;
  auto progress = [&](const liftoff::load::SeedProgress& p) {
    if (!terminal) {
      if (p.table != last_table) fmt::print(stderr, "  {} ({} rows)\n", p.table, p.total);
      last_table = p.table;
      return;
    }
    constexpr int kWidth = 30;
    int filled = p.total ? static_cast<int>(kWidth * p.done / p.total) : kWidth;
    fmt::print(stderr, "\r  {:<12} [{}{}] {:>3}% {:>11}/{}", p.table, std::string(filled, '#'),
               std::string(kWidth - filled, ' '), p.total ? 100 * p.done / p.total : 100, p.done,
               p.total);
    if (p.done == p.total) fmt::print(stderr, "\n");
  };
  auto seeded = liftoff::load::seed(database_url, dataset, progress);
  if (!seeded) {
    fmt::print(stderr, "seed failed: {}\n", seeded.error().detail);
    return 1;
  }
  fmt::print(stderr, "seeded in {:.1f} s\n",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return 0;
}

// "NAME=VALUE" as its two parts, both non-empty (the --cpu-of and --measured arguments).
std::optional<std::pair<std::string, std::string>> split_named(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) return std::nullopt;
  return std::pair{text.substr(0, eq), text.substr(eq + 1)};
}

// The CPU per answer a `run --json` file measured, for capacity planning: the server's
// (`--cpu-of server=PID`) and the database's, the sum of every cluster's when the data is split
// over shards (`--cpu-of database=PID`, or `database:main=PID --cpu-of database:shard-1=PID`).
std::optional<liftoff::load::Measured> measured_from(const std::string& named) {
  auto parts = split_named(named);
  if (!parts) {
    fmt::print(stderr, "--measured wants SYSTEM=FILE, got '{}'\n", named);
    return std::nullopt;
  }
  const auto& [system, path] = *parts;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  auto doc = boost::json::parse(text.str(), ec);
  const auto* cpu =
      !ec && doc.is_object() ? doc.as_object().if_contains("cpu_ms_per_answer") : nullptr;
  const auto* server = cpu && cpu->is_object() ? cpu->as_object().if_contains("server") : nullptr;
  std::optional<double> database;
  if (cpu && cpu->is_object()) {
    for (const auto& [name, ms] : cpu->as_object()) {
      const bool cluster = name == "database" || name.starts_with("database:");
      if (cluster && ms.is_number()) database = database.value_or(0) + ms.to_number<double>();
    }
  }
  if (!server || !server->is_number() || !database) {
    fmt::print(stderr,
               "{}: not the JSON of a run measured with --cpu-of server=PID and --cpu-of "
               "database=PID (or database:SHARD=PID for each cluster)\n",
               path);
    return std::nullopt;
  }
  return liftoff::load::Measured{system, server->to_number<double>(), *database};
}

int main(int argc, char** argv) {
  CLI::App cli{"liftoff-bench: load generator and benchmark harness"};
  cli.require_subcommand(1);
  liftoff::load::Dataset dataset;
  auto* seed = cli.add_subcommand("seed", "write a benchmark data set into a migrated database");
  std::string database_url;
  seed->add_option("--database-url", database_url, "libpq URI of the Liftoff database")->required();
  add_dataset_options(seed, dataset);
  auto* run = cli.add_subcommand("run", "load one scenario against a running server");
  bool use_dataset = false;
  std::string url = "http://127.0.0.1:8080", scenario = "healthz", json_path, svg_path, ids_file,
              acknowledged_path;
  liftoff::load::RunOptions options;
  liftoff::load::ScenarioOptions scenario_options;
  double seconds = 10, think_ms = 0, timeout_s = 10;
  run->add_option("--url", url, "server base URL");
  run->add_option("--scenario", scenario,
                  "healthz, me, get, list, create, update, login, audit, search or mix")
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
  run->add_option("--skip-orgs", scenario_options.skip_orgs,
                  "with a data set: the users of its first N orgs send nothing");
  std::vector<std::string> cpu_of;
  run->add_option("--cpu-of", cpu_of,
                  "NAME=PID: report the CPU time per answer of this process and its descendants "
                  "(repeatable; a descendant that is itself named counts for its own name)");
  run->add_option("--json", json_path, "write the results as JSON here");
  run->add_option("--svg", svg_path, "write the latency charts as SVG here");
  run->add_option("--acknowledged", acknowledged_path,
                  "write the id of every record create answered 201 here, one per line (create, "
                  "mix): to read each back after a fault");
  add_dataset_options(run, dataset);

  auto* capacity = cli.add_subcommand(
      "capacity", "machines and cost for N users, from measured CPU per request and assumptions");
  liftoff::load::CapacityAssumptions assume;
  std::vector<std::string> measured;
  capacity
      ->add_option("--measured", measured,
                   "SYSTEM=FILE: a `run --json` file with CPU per answer (repeatable)")
      ->required();
  capacity->add_option("--users", assume.users, "users to plan for")->check(CLI::PositiveNumber);
  capacity->add_option("--daily-active", assume.daily_active, "share of users active on a day")
      ->check(CLI::Range(0.0, 1.0));
  capacity
      ->add_option("--requests-per-active-hour", assume.requests_per_active_hour,
                   "API requests an active user makes per working hour")
      ->check(CLI::NonNegativeNumber);
  capacity->add_option("--active-hours", assume.active_hours, "working hours a day")
      ->check(CLI::Range(0.0, 24.0));
  capacity->add_option("--peak-factor", assume.peak_factor, "busiest second over the day's mean")
      ->check(CLI::Range(1.0, 100.0));
  capacity->add_option("--cpu-target", assume.cpu_target, "CPU utilization to plan for at peak")
      ->check(CLI::Range(0.05, 1.0));
  capacity->add_option("--vcpus-per-core", assume.vcpus_per_core, "cloud vCPUs per measured core")
      ->check(CLI::PositiveNumber);
  capacity->add_option("--machine-vcpus", assume.machine_vcpus, "vCPUs of an application machine")
      ->check(CLI::PositiveNumber);
  capacity->add_option("--machine-hourly", assume.machine_hourly, "USD per machine-hour")
      ->check(CLI::NonNegativeNumber);
  capacity->add_option("--min-machines", assume.min_machines, "fewest application machines")
      ->check(CLI::Range(1u, 10'000u));
  capacity->add_option("--db-vcpus", assume.db_vcpus, "vCPUs of a database instance")
      ->check(CLI::PositiveNumber);
  capacity->add_option("--db-hourly", assume.db_hourly, "USD per database instance-hour")
      ->check(CLI::NonNegativeNumber);
  capacity->add_option("--db-multi-az", assume.db_multi_az, "a standby per database instance");
  capacity
      ->add_option("--replica-read-share", assume.replica_read_share,
                   "share of the database CPU that read replicas may serve (0: no replicas)")
      ->check(CLI::Range(0.0, 1.0));
  capacity
      ->add_option("--storage-bytes-per-user", assume.storage_bytes_per_user,
                   "database bytes per user")
      ->check(CLI::NonNegativeNumber);
  capacity->add_option("--storage-gb-month", assume.storage_gb_month, "USD per GB-month")
      ->check(CLI::NonNegativeNumber);

  CLI11_PARSE(cli, argc, argv);
  if (seed->parsed()) return seed_command(database_url, dataset);
  if (capacity->parsed()) {
    std::vector<liftoff::load::CapacityPlan> plans;
    for (const auto& named : measured) {
      auto m = measured_from(named);
      if (!m) return 2;
      plans.push_back(liftoff::load::plan(assume, *m));
    }
    fmt::print("{}", liftoff::load::capacity_report(assume, plans));
    return 0;
  }
  // Requests come from the seeded data set unless a fixed token was given.
  use_dataset = scenario_options.token.empty();
  if (use_dataset) scenario_options.dataset = dataset;

  if (!ids_file.empty()) {
    std::ifstream in(ids_file);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) scenario_options.ids.push_back(line);
  }
  for (const auto& named : cpu_of) {
    auto parts = split_named(named);
    int pid = 0;
    bool ok = parts.has_value();
    if (ok) {
      const auto& digits = parts->second;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
      ok = ec == std::errc{} && end == digits.data() + digits.size() && pid > 1;
    }
    if (!ok) {
      fmt::print(stderr, "--cpu-of wants NAME=PID, got '{}'\n", named);
      return 2;
    }
    options.cpu_roots.emplace_back(parts->first, pid);
  }
  options.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  return run_command(url, scenario, options, seconds, think_ms, scenario_options, json_path,
                     svg_path, acknowledged_path);
}
