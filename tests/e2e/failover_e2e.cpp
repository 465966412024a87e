// The primary crashes under write load (issue 17): pg_auto_failover (deploy/ha/up) promotes its
// synchronous standby, Liftoff follows through its multi-host URI without a restart, the writes in
// flight fail with a retryable 503, and every acknowledged write is still there.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include "e2e/e2e.hpp"
#include "e2e/records_support.hpp"

namespace liftoff::testing {
namespace {

std::string script(const std::string& name) {
  return std::string(LIFTOFF_SOURCE_DIR) + "/deploy/ha/" + name;
}

// A pg_auto_failover cluster of the test's own: a monitor and two data nodes on three consecutive
// free ports; brought down (and its directory removed) at the end. An attempt that fails is
// brought down before the next begins in a new directory on other ports: what it left (keepers,
// a monitor on the old port) would make the next one fail too.
struct HaCluster {
  std::filesystem::path dir;
  std::string primary_url;
  std::string up_log;  // the last attempt's output: deploy/ha/up ends it with the keepers' logs
  HaCluster() {
    for (int attempt = 0; attempt < 3 && primary_url.empty(); ++attempt) {
      auto base = free_port();
      if (base > 65000 || !port_is_free(base + 1) || !port_is_free(base + 2)) continue;
      if (!dir.empty()) down();
      dir = make_temp_dir("/tmp/liftoff-ha-");
      up_log = log_path("ha-up");
      auto up =
          script("up") + " " + dir.string() + " " + std::to_string(base) + " >" + up_log + " 2>&1";
      if (std::system(up.c_str()) != 0) continue;
      std::ifstream in(dir / "primary_url");
      std::getline(in, primary_url);
    }
  }
  ~HaCluster() { down(); }
  void down() const {
    if (!dir.empty()) (void)std::system((script("down") + " " + dir.string()).c_str());
  }
  std::string up_output() const {
    std::ifstream in(up_log);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  void crash(int node) const {
    (void)std::system((script("crash") + " " + dir.string() + " " + std::to_string(node)).c_str());
  }
};

TEST(Failover, APrimaryCrashUnderWritesCostsSecondsAndNoAcknowledgedWrite) {
  HaCluster ha;
  ASSERT_FALSE(ha.primary_url.empty()) << "deploy/ha/up failed (" << ha.up_log << "):\n"
                                       << ha.up_output();
  OwnServer server({{"LIFTOFF_DATABASE_URL", ha.primary_url},
                    {"LIFTOFF_AUTO_MIGRATE", "true"},
                    {"LIFTOFF_SESSION_CACHE_TTL", "0"}});
  auto t = new_tenant(server.port(), "failover");
  create_tickets(t);

  using Clock = std::chrono::steady_clock;
  std::mutex mutex;
  std::vector<std::string> acknowledged;
  std::map<int, int> failures;  // status -> count (0: no answer)
  Clock::time_point crashed_at{}, first_failure{}, recovered_at{};
  std::atomic<bool> crashed{false}, stop{false};
  auto writer = [&](int n) {
    for (int i = 0; !stop; ++i) {
      auto sent = Clock::now();
      auto r = create(t, json::object{{"title", "w" + std::to_string(n) + "-" + std::to_string(i)},
                                      {"status", "open"},
                                      {"priority", i}});
      std::lock_guard lock(mutex);
      if (status(r) == 201) {
        acknowledged.emplace_back(json_of(*r).at("id").as_string());
        // Back: a write sent after the first failure succeeded (one sent before the crash may
        // still be answered 201 after another writer's first 503).
        if (crashed && first_failure != Clock::time_point{} && sent > first_failure &&
            recovered_at == Clock::time_point{})
          recovered_at = Clock::now();
      } else {
        ++failures[status(r)];
        if (status(r) == 503) {
          EXPECT_FALSE(r->header("retry-after").empty());
        }
        if (first_failure == Clock::time_point{}) first_failure = sent;
      }
    }
  };
  std::vector<std::thread> writers;
  for (int n = 0; n < 4; ++n) writers.emplace_back(writer, n);
  std::this_thread::sleep_for(2s);
  {
    std::lock_guard lock(mutex);
    crashed_at = Clock::now();
  }
  ha.crash(1);
  crashed = true;
  // Writes go on until they have succeeded again for two seconds (or a minute passes: a hang).
  EXPECT_TRUE(eventually(
      [&] {
        std::lock_guard lock(mutex);
        return recovered_at != Clock::time_point{} && Clock::now() - recovered_at > 2s;
      },
      60s));
  stop = true;
  for (auto& w : writers) w.join();

  // Every write that failed failed as "retry later", none with another answer.
  for (const auto& [code, count] : failures) EXPECT_EQ(code, 503) << count << " answered " << code;
  // Nothing acknowledged was lost: each is on the new primary. (A read answered 503 is tried
  // again: the server may still be reconnecting, which says nothing about the record.)
  std::size_t missing = 0;
  for (const auto& id : acknowledged) {
    int found = 0;
    eventually(
        [&] {
          found = status(
              send_json(server.port(), "GET", t.base + "/tickets/records/" + id, t.owner.token));
          return found != 503 && found != 0;
        },
        30s);
    if (found != 200) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged";
  auto outage = std::chrono::duration_cast<std::chrono::milliseconds>(recovered_at - crashed_at);
  std::cout << "failover: " << acknowledged.size() << " writes acknowledged, " << failures[503]
            << " answered 503, writes back " << outage.count() << " ms after the crash\n";
}

}  // namespace
}  // namespace liftoff::testing
