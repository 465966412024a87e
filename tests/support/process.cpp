#include "support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace liftoff::testing {

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
                 std::string log_path)
    : log_path_(std::move(log_path)) {
  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    // The child dies with the test binary, however that ends (an abort, a timeout's SIGKILL): no
    // server outlives its test. (The signal follows the forking thread: tests start children from
    // the thread that runs them.)
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);
    int fd = ::open(log_path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    // Nothing else of the test binary's: an inherited socket (Asio's are not close-on-exec) would
    // keep a connection open after the test closed it. A TcpProxy's cut did not reach a server when
    // another server had been started meanwhile: it held the proxied connections' descriptors.
    ::close_range(3, ~0U, 0);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
}

Process::~Process() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

void Process::signal(int sig) const {
  if (status_) return;  // reaped: the PID may be another process's by now
  ::kill(pid_, sig);
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < deadline);
  return std::nullopt;
}

std::string Process::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

PythonPeer start_python_peer(const std::filesystem::path& dir, const std::string& name,
                             const std::string& script, const std::vector<std::string>& args) {
  auto port_file = dir / (name + ".port");
  std::vector<std::string> argv{"/usr/bin/python3", LIFTOFF_SOURCE_DIR "/tests/support/" + script,
                                "--port-file", port_file.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  PythonPeer peer;
  peer.process = std::make_unique<Process>(argv, std::map<std::string, std::string>{},
                                           (dir / (name + ".log")).string());
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!std::filesystem::exists(port_file) && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ifstream in(port_file);
  for (unsigned short port = 0; in >> port;) peer.ports.push_back(port);
  return peer;
}

}  // namespace liftoff::testing
