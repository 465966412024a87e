// liftoff-bench capacity: the arithmetic from CPU per request and assumptions to machines and cost.
#include <gtest/gtest.h>

#include "load/capacity.hpp"

namespace liftoff::load {
namespace {

CapacityAssumptions round_numbers() {
  CapacityAssumptions a;
  a.users = 1'000'000;
  a.daily_active = 0.3;
  a.requests_per_active_hour = 120;
  a.active_hours = 8;
  a.peak_factor = 3;
  a.cpu_target = 0.5;
  a.vcpus_per_core = 1;
  a.machine_vcpus = 2;
  a.machine_hourly = 0.1;
  a.min_machines = 2;
  a.db_vcpus = 2;
  a.db_hourly = 0.2;
  a.db_multi_az = true;
  a.storage_bytes_per_user = 100'000;  // 100 GB for 1M users
  a.storage_gb_month = 0.1;
  a.replica_read_share = 0;
  return a;
}

TEST(LoadCapacity, PeakIsTheDaysRequestsSpreadOverADayTimesThePeakFactor) {
  // 1M x 0.3 x 120 x 8 = 288M requests a day = 3,333/s on average, 10,000/s at the peak.
  EXPECT_NEAR(peak_requests_per_second(round_numbers()), 10'000, 1e-6);
}

TEST(LoadCapacity, MachinesAndInstancesCoverThePeakAtTheCpuTarget) {
  // 10,000/s x 0.5 ms = 5 cores busy; at 50% that is 10 vCPUs = 5 machines. The database:
  // 10,000/s x 0.3 ms = 3 cores -> 6 vCPUs = 3 instances.
  auto p = plan(round_numbers(), {"x", 0.5, 0.3});
  EXPECT_NEAR(p.app_vcpus, 10, 1e-9);
  EXPECT_EQ(p.machines, 5u);
  EXPECT_NEAR(p.db_vcpus_needed, 6, 1e-9);
  EXPECT_EQ(p.db_instances, 3u);
  EXPECT_NEAR(p.storage_gb, 100, 1e-9);
  // (5 x 0.1 + 3 x 0.2 x 2) x 730 + 100 GB x 2 copies x 0.1 = 1,241 + 20.
  EXPECT_NEAR(p.monthly_usd, 1261, 1e-6);
  EXPECT_NEAR(p.per_user_month_usd, 0.001261, 1e-12);
}

TEST(LoadCapacity, ReadsReplicasMayServeMoveToReplicas) {
  auto a = round_numbers();
  a.replica_read_share = 0.5;
  // 6 database vCPUs: 3 on primaries (2 instances, with standbys), 3 on replicas (2 instances).
  auto p = plan(a, {"x", 0.5, 0.3});
  EXPECT_EQ(p.db_instances, 2u);
  EXPECT_EQ(p.replicas, 2u);
  // (5 x 0.1 + (2 x 2 + 2) x 0.2) x 730 + 100 GB x (2 + 2 / 2) copies x 0.1 = 1,241 + 30.
  EXPECT_NEAR(p.monthly_usd, 1271, 1e-6);
  a.replica_read_share = 0;
  EXPECT_EQ(plan(a, {"x", 0.5, 0.3}).replicas, 0u);
}

TEST(LoadCapacity, KeepsTheMinimumOfMachinesAndOneDatabase) {
  auto a = round_numbers();
  a.users = 1000;
  auto p = plan(a, {"tiny", 0.01, 0.01});
  EXPECT_EQ(p.machines, 2u);
  EXPECT_EQ(p.db_instances, 1u);
}

TEST(LoadCapacity, ExactFitsDoNotRoundUpAnExtraMachine) {
  auto a = round_numbers();
  // 10,000/s x 0.2 ms / 0.5 = exactly 4 vCPUs = 2 machines, not 3.
  EXPECT_EQ(plan(a, {"x", 0.2, 0.1}).machines, 2u);
}

TEST(LoadCapacity, ReportNamesEveryAssumptionAndEverySystem) {
  auto a = round_numbers();
  auto text = capacity_report(a, {plan(a, {"liftoff", 0.1, 0.1}), plan(a, {"rails", 5, 0.4})});
  for (const char* flag :
       {"--users", "--daily-active", "--requests-per-active-hour", "--active-hours",
        "--peak-factor", "--cpu-target", "--vcpus-per-core", "--min-machines", "--db-multi-az",
        "--replica-read-share", "--storage-gb-month"}) {
    EXPECT_NE(text.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(text.find("liftoff"), std::string::npos);
  EXPECT_NE(text.find("rails"), std::string::npos);
  EXPECT_NE(text.find("peak: 10000 requests/s"), std::string::npos);
}

}  // namespace
}  // namespace liftoff::load
