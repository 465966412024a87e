#pragma once
// CPU time of process trees, from /proc: how much processor a server and its database spend per
// request is what capacity planning needs, and what a throughput figure on a shared machine hides.
#include <sys/types.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace liftoff::load {

struct ProcessStat {
  pid_t pid = 0;
  pid_t parent = 0;
  double cpu_seconds = 0;  // user + system, its own and that of its ended, reaped children
};

// One line of /proc/<pid>/stat, or pid 0 when it is not one.
ProcessStat parse_stat(std::string_view line, long ticks_per_second);

// The processes of a tree are charged to the nearest named root above them (or at them), so a
// server that started its database is charged without the database when the database is a root
// too. A process that ends inside a window stays counted: its time moves to its parent's reaped
// children, which are counted.
using CpuRoots = std::vector<std::pair<std::string, pid_t>>;
std::map<std::string, double> cpu_seconds(const std::vector<ProcessStat>& processes,
                                          const CpuRoots& roots);

// Every process's stat on this machine now.
std::vector<ProcessStat> read_processes();

}  // namespace liftoff::load
