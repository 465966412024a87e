#pragma once
// A child process for end-to-end tests: the real `liftoff` binary with its own environment. It is
// killed when the test binary ends, however it ends (PR_SET_PDEATHSIG).
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace liftoff::testing {

class Process {
 public:
  // Starts argv[0] with the current environment plus `env`; stdout and stderr go to `log_path`.
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
          std::string log_path);
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void signal(int sig) const;  // none once wait() saw it exit
  // Exit status (or 128 + signal), or nullopt if still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] std::string log() const;
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

}  // namespace liftoff::testing
