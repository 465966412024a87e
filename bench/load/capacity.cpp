#include "load/capacity.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace liftoff::load {
namespace {
constexpr double kHoursPerMonth = 730;  // AWS's monthly hours
constexpr double kSecondsPerDay = 86'400;

unsigned at_least(double needed, double per_unit, unsigned minimum) {
  return std::max(minimum, static_cast<unsigned>(std::ceil(needed / per_unit - 1e-9)));
}
}  // namespace

double peak_requests_per_second(const CapacityAssumptions& a) {
  double daily = a.users * a.daily_active * a.requests_per_active_hour * a.active_hours;
  return daily / kSecondsPerDay * a.peak_factor;
}

CapacityPlan plan(const CapacityAssumptions& a, const Measured& m) {
  CapacityPlan p;
  p.system = m.system;
  p.peak_rps = peak_requests_per_second(a);
  auto vcpus = [&](double cpu_ms) {
    return p.peak_rps * cpu_ms / 1000.0 * a.vcpus_per_core / a.cpu_target;
  };
  p.app_vcpus = vcpus(m.server_cpu_ms);
  p.machines = at_least(p.app_vcpus, a.machine_vcpus, a.min_machines);
  p.db_vcpus_needed = vcpus(m.database_cpu_ms);
  auto share = std::clamp(a.replica_read_share, 0.0, 1.0);
  p.db_instances = at_least(p.db_vcpus_needed * (1 - share), a.db_vcpus, 1);
  p.replicas = share > 0 ? at_least(p.db_vcpus_needed * share, a.db_vcpus, 0) : 0;
  double copies = a.db_multi_az ? 2 : 1;
  p.storage_gb = a.users * a.storage_bytes_per_user / 1e9;
  // Each primary (a shard of the data) has its standby; each replica copies one primary's shard.
  double database_instances = p.db_instances * copies + p.replicas;
  double copies_of_data = copies + static_cast<double>(p.replicas) / p.db_instances;
  p.monthly_usd =
      (p.machines * a.machine_hourly + database_instances * a.db_hourly) * kHoursPerMonth +
      p.storage_gb * copies_of_data * a.storage_gb_month;
  p.per_user_month_usd = a.users > 0 ? p.monthly_usd / a.users : 0;
  return p;
}

std::string capacity_report(const CapacityAssumptions& a, const std::vector<CapacityPlan>& plans) {
  std::string out = "assumptions (each a flag; sources in bench/README.md#capacity):\n";
  auto line = [&](std::string_view flag, std::string value, std::string_view source) {
    out += fmt::format("  --{:<26} {:<10} {}\n", flag, value, source);
  };
  line("users", fmt::format("{:.0f}", a.users), "issue 5's target");
  line("daily-active", fmt::format("{:.2f}", a.daily_active),
       "B2B SaaS DAU/MAU average 31% (Mixpanel 2026 benchmarks, via omegapoint.systems)");
  line("requests-per-active-hour", fmt::format("{:.0f}", a.requests_per_active_hour),
       "Liftoff's assumption, not sourced: 2 API calls a minute from a single-page app");
  line("active-hours", fmt::format("{:.0f}", a.active_hours), "a working day");
  line("peak-factor", fmt::format("{:.1f}", a.peak_factor),
       "24 h / 8 working hours; robustperception.io: 3-4x between a day's low and high");
  line("cpu-target", fmt::format("{:.2f}", a.cpu_target),
       "AWS target-tracking example: 50% average CPU");
  line("vcpus-per-core", fmt::format("{:.2f}", a.vcpus_per_core),
       "a core measured here does one cloud vCPU's work (not measured)");
  line("machine-vcpus", fmt::format("{:.0f}", a.machine_vcpus), "EC2 m7g.large");
  line("machine-hourly", fmt::format("${:.4f}", a.machine_hourly),
       "m7g.large on demand, us-east-1, June 2026 (factualminds.com)");
  line("min-machines", fmt::format("{}", a.min_machines), "two, so one can fail");
  line("db-vcpus", fmt::format("{:.0f}", a.db_vcpus), "RDS db.m7g.large");
  line("db-hourly", fmt::format("${:.3f}", a.db_hourly),
       "db.m7g.large single-AZ on demand (price table in hashicorp/terraform-provider-aws, 2024)");
  line("db-multi-az", a.db_multi_az ? "yes" : "no", "a standby doubles instance and storage");
  line("replica-read-share", fmt::format("{:.2f}", a.replica_read_share),
       "measured: get, list, audit, search database CPU in the mix, bench/run 2026-11-28");
  line("storage-bytes-per-user", fmt::format("{:.0f}", a.storage_bytes_per_user),
       "measured: database size / users of the seeded data set");
  line("storage-gb-month", fmt::format("${:.3f}", a.storage_gb_month),
       "RDS gp3 us-east-1, June 2026 (usage.ai)");
  out += fmt::format("\npeak: {:.0f} requests/s\n\n", peak_requests_per_second(a));
  out += fmt::format("  {:<10} {:>10} {:>9} {:>10} {:>10} {:>9} {:>11} {:>12} {:>14}\n", "system",
                     "app vCPUs", "machines", "DB vCPUs", "primaries", "replicas", "storage GB",
                     "USD/month", "USD/user/month");
  for (const auto& p : plans) {
    out += fmt::format(
        "  {:<10} {:>10.1f} {:>9} {:>10.1f} {:>10} {:>9} {:>11.1f} {:>12.0f} {:>14.5f}\n", p.system,
        p.app_vcpus, p.machines, p.db_vcpus_needed, p.db_instances, p.replicas, p.storage_gb,
        p.monthly_usd, p.per_user_month_usd);
  }
  out +=
      "  (primaries beyond one are tenant shards; each primary has a standby with db-multi-az)\n";
  return out;
}

}  // namespace liftoff::load
