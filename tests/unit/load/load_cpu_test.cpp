// CPU accounting of liftoff-bench: /proc/<pid>/stat parsing and charging process trees to roots.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>

#include "load/cpu.hpp"

namespace liftoff::load {
namespace {

TEST(LoadCpu, ParsesStatLinesWhoseCommandHasSpacesAndParentheses) {
  // Fields after comm: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
  // utime stime cutime cstime ...
  auto stat = parse_stat(
      "4242 (post gres) (x)) S 17 4242 4242 0 -1 4194304 100 0 0 0 "
      "250 50 30 20 20 0 1 0 100 1000 10",
      100);
  EXPECT_EQ(stat.pid, 4242);
  EXPECT_EQ(stat.parent, 17);
  EXPECT_DOUBLE_EQ(stat.cpu_seconds, 3.5);  // (250 + 50 + 30 + 20) ticks at 100 a second
}

TEST(LoadCpu, RejectsWhatIsNotAStatLine) {
  EXPECT_EQ(parse_stat("", 100).pid, 0);
  EXPECT_EQ(parse_stat("no parenthesis here", 100).pid, 0);
  EXPECT_EQ(parse_stat("12 (short) S 1", 100).pid, 0);
}

TEST(LoadCpu, ChargesEachProcessToItsNearestNamedAncestor) {
  // 10 server -> 11 worker, 10 -> 20 database -> 21, 22 backends; 30 is nobody's.
  std::vector<ProcessStat> processes{{10, 1, 1.0},  {11, 10, 2.0},  {20, 10, 4.0},
                                     {21, 20, 8.0}, {22, 21, 16.0}, {30, 1, 32.0}};
  auto charged = cpu_seconds(processes, {{"server", 10}, {"database", 20}});
  EXPECT_DOUBLE_EQ(charged["server"], 3.0);
  EXPECT_DOUBLE_EQ(charged["database"], 28.0);
  EXPECT_EQ(charged.size(), 2u);
}

TEST(LoadCpu, NamedRootsWithoutProcessesCountZero) {
  auto charged = cpu_seconds({{10, 1, 1.0}}, {{"gone", 999}});
  EXPECT_DOUBLE_EQ(charged["gone"], 0.0);
}

TEST(LoadCpu, SeesThisProcessSpendTime) {
  auto mine = [] { return cpu_seconds(read_processes(), {{"me", getpid()}})["me"]; };
  auto before = mine();
  // Spin until the kernel has charged a tick (a shared machine may give us little CPU; 10 s is
  // far more than any scheduler needs).
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  volatile std::uint64_t spin = 0;
  while (mine() <= before && std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 1'000'000; ++i) spin = spin + 1;
  }
  EXPECT_GT(mine(), before);
}

}  // namespace
}  // namespace liftoff::load
