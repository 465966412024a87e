#include "support/run_dir.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace liftoff::testing {
namespace {

std::filesystem::path g_run_dir;
bool g_failed = false;  // in any iteration (--gtest_repeat runs the environment once per iteration)

class RunDirEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { g_failed |= !::testing::UnitTest::GetInstance()->Passed(); }
};

// At exit, after every iteration: removed when all passed, else kept and named.
struct RunDirCleanup {
  ~RunDirCleanup() {
    if (g_run_dir.empty()) return;
    if (!g_failed) {
      std::error_code ec;
      std::filesystem::remove_all(g_run_dir, ec);
    } else {
      std::fprintf(stderr, "test logs kept in %s\n", g_run_dir.c_str());
    }
  }
} g_cleanup;

[[maybe_unused]] auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new RunDirEnvironment);

}  // namespace

const std::filesystem::path& run_dir() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_run_dir = make_temp_dir("/tmp/liftoff-test-" + std::to_string(::getpid()) + "-");
  });
  return g_run_dir;
}

std::filesystem::path make_temp_dir(const std::string& prefix) {
  std::string pattern = prefix + "XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << pattern;
    std::abort();
  }
  std::filesystem::permissions(pattern, std::filesystem::perms::owner_all |
                                            std::filesystem::perms::group_exec |
                                            std::filesystem::perms::others_exec);
  return pattern;
}

std::string log_path(const std::string& stem) {
  static std::atomic<int> n = 0;
  return (run_dir() / (stem + "-" + std::to_string(++n) + ".log")).string();
}

}  // namespace liftoff::testing
