#pragma once
// A child process for end-to-end tests: the real `liftoff` binary with its own environment. It is
// killed when the test binary ends, however it ends (PR_SET_PDEATHSIG).
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
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

// A test peer written in Python (tests/support/<script>, run by Debian's python3, which has the
// python3-* modules install-deps adds): started in `dir` with `args` and --port-file, its log in
// dir/<name>.log. `ports` are the numbers the script writes to its port file (it renames the
// file into place once it listens); empty when it did not start within 20 s.
struct PythonPeer {
  std::unique_ptr<Process> process;
  std::vector<unsigned short> ports;
};
[[nodiscard]] PythonPeer start_python_peer(const std::filesystem::path& dir,
                                           const std::string& name, const std::string& script,
                                           const std::vector<std::string>& args);

}  // namespace liftoff::testing
