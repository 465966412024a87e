#pragma once
// Capacity and cost for N users from measured CPU per request and stated assumptions (issue 5):
// how many machines and database instances the peak needs, and what they cost per user a month.
#include <string>
#include <vector>

namespace liftoff::load {

// Every assumption, with its default and where the default comes from (printed with the result).
struct CapacityAssumptions {
  double users = 1'000'000;
  double daily_active = 0.31;             // share of users active on a day
  double requests_per_active_hour = 120;  // API requests an active user makes per working hour
  double active_hours = 8;                // working hours a day an active user makes them in
  double peak_factor = 3;                 // busiest second over the day's mean
  double cpu_target = 0.5;                // CPU utilization to plan for at the peak
  double vcpus_per_core = 1;              // cloud vCPUs that do the work of one core measured here
  double machine_vcpus = 2;               // application machine (m7g.large)
  double machine_hourly = 0.0816;         // USD
  unsigned min_machines = 2;              // for redundancy
  double db_vcpus = 2;                    // database instance (db.m7g.large)
  double db_hourly = 0.168;               // USD, single-AZ
  bool db_multi_az = true;                // a standby in a second zone (doubles the instance)
  // Share of the database CPU that reads replicas may serve take (the rest, writes and credential
  // checks, is the primaries'); replicas are single instances (a failover target is the standby).
  double replica_read_share = 0.25;
  double storage_bytes_per_user = 0;  // database size per user (measured)
  double storage_gb_month = 0.115;    // USD per GB-month (gp3)
};

// What a run measured for one system.
struct Measured {
  std::string system;
  double server_cpu_ms = 0;    // CPU per request of the application
  double database_cpu_ms = 0;  // CPU per request of PostgreSQL
};

struct CapacityPlan {
  std::string system;
  double peak_rps = 0;
  double app_vcpus = 0;
  unsigned machines = 0;
  double db_vcpus_needed = 0;
  unsigned db_instances = 0;  // primaries, each plus its standby with multi-AZ (more than one:
                              // tenant shards)
  unsigned replicas = 0;      // read replicas
  double storage_gb = 0;
  double monthly_usd = 0;
  double per_user_month_usd = 0;
};

[[nodiscard]] double peak_requests_per_second(const CapacityAssumptions& a);
[[nodiscard]] CapacityPlan plan(const CapacityAssumptions& a, const Measured& m);
// The assumptions with their sources, and one row per plan.
[[nodiscard]] std::string capacity_report(const CapacityAssumptions& a,
                                          const std::vector<CapacityPlan>& plans);

}  // namespace liftoff::load
