#include "load/cpu.hpp"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace liftoff::load {

ProcessStat parse_stat(std::string_view line, long ticks_per_second) {
  // pid (comm) state ppid ... utime(14) stime(15) cutime(16) cstime(17): comm may hold spaces
  // and parentheses, so the fields after it are found from its last ')'.
  ProcessStat stat;
  auto close = line.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return stat;
  std::istringstream rest{std::string(line.substr(close + 1))};
  std::string state;
  long long ppid = 0, skip = 0, utime = 0, stime = 0, cutime = 0, cstime = 0;
  rest >> state >> ppid;
  for (int field = 5; field <= 13; ++field) rest >> skip;
  rest >> utime >> stime >> cutime >> cstime;
  int pid = 0;
  if (!rest || std::from_chars(line.data(), line.data() + line.size(), pid).ec != std::errc{})
    return stat;
  stat.pid = pid;
  stat.parent = static_cast<pid_t>(ppid);
  stat.cpu_seconds =
      static_cast<double>(utime + stime + cutime + cstime) / static_cast<double>(ticks_per_second);
  return stat;
}

std::map<std::string, double> cpu_seconds(const std::vector<ProcessStat>& processes,
                                          const CpuRoots& roots) {
  std::unordered_map<pid_t, const ProcessStat*> by_pid;
  for (const auto& p : processes) by_pid[p.pid] = &p;
  std::unordered_map<pid_t, std::string> root_names;
  std::map<std::string, double> out;
  for (const auto& [name, pid] : roots) {
    root_names[pid] = name;
    out[name] = 0;
  }
  for (const auto& p : processes) {
    // Walk up to the nearest root (pid 1 and 0 end the walk; depth is bounded by the table).
    pid_t at = p.pid;
    for (std::size_t steps = 0; at > 1 && steps <= processes.size(); ++steps) {
      if (auto root = root_names.find(at); root != root_names.end()) {
        out[root->second] += p.cpu_seconds;
        break;
      }
      auto up = by_pid.find(at);
      if (up == by_pid.end()) break;
      at = up->second->parent;
    }
  }
  return out;
}

std::vector<ProcessStat> read_processes() {
  static const long ticks = sysconf(_SC_CLK_TCK);
  std::vector<ProcessStat> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    auto name = entry.path().filename().string();
    if (name.empty() || name[0] < '0' || name[0] > '9') continue;
    std::ifstream in(entry.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;  // ended meanwhile
    auto stat = parse_stat(line, ticks);
    if (stat.pid != 0) out.push_back(stat);
  }
  return out;
}

}  // namespace liftoff::load
