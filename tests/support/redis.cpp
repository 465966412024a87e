#include "support/redis.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "support/postgres.hpp"
#include "support/run_dir.hpp"

namespace liftoff::testing {
using namespace std::chrono_literals;

TestRedis::TestRedis() {
  // A free port may be taken before Redis binds it: then Redis exits, and starts on another.
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    if (start()) return;
  }
  ADD_FAILURE() << "cannot start redis-server: " << (process_ ? process_->log() : "");
}

TestRedis::~TestRedis() {
  process_.reset();
}  // SIGKILL

bool TestRedis::start() {
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind",
                               "127.0.0.1", "--save", "", "--appendonly", "no"},
      std::map<std::string, std::string>{}, log_path("redis"));
  // Up once it answers with its own PID (not another test binary's Redis on a port taken first:
  // then ours exits); 30 s only ends a hung start.
  auto ours = "process_id:" + std::to_string(process_->pid()) + "\r";
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (process_->wait(0ms)) return false;
    if (cli("INFO server").find(ours) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

bool TestRedis::running() {
  return process_ && !process_->wait(0ms);
}

void TestRedis::kill() {
  process_->signal(SIGKILL);
  process_->wait(30s);
}

bool TestRedis::restart() {
  return start();
}

void TestRedis::pause() {
  process_->signal(SIGSTOP);
}
void TestRedis::resume() {
  process_->signal(SIGCONT);
}

std::string TestRedis::cli(const std::string& command) const {
  std::string out;
  std::string line = "redis-cli -p " + std::to_string(port_) + " " + command + " 2>/dev/null";
  if (FILE* pipe = ::popen(line.c_str(), "r")) {
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
    ::pclose(pipe);
  }
  return out;
}

}  // namespace liftoff::testing
