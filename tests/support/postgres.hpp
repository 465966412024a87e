#pragma once
// The private PostgreSQL 15 every integration and end-to-end test binary shares: started once per
// process in a temporary directory on a free loopback port, removed when the process ends.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "liftoff/db/connection.hpp"
#include "liftoff/db/embedded_postgres.hpp"

namespace liftoff::testing {

// Starts the server on first call. Fails the test (and aborts the binary) if it cannot start.
db::EmbeddedPostgres& test_postgres();
std::string test_database_url();

// The control plane's scope with `budget` from now, for tests that call Database directly. (A
// function, not a braced Scope{...} in the co_await expression: GCC 12 destroys such a temporary
// twice, seen by ASan as a bad free.)
[[nodiscard]] inline db::Scope control_scope(
    std::chrono::milliseconds budget = std::chrono::seconds(5)) {
  return db::Scope{db::Tenant::control(), db::deadline_after(budget), {}, std::nullopt};
}

// A connection to `url` (default: the test database); fails the test when it cannot connect.
boost::asio::awaitable<std::shared_ptr<db::Connection>> connect_test(std::string url = {});

// A connection of the test's own, kept from one statement to the next, for a synchronous test body:
// a transaction it leaves open holds its locks while the server under test runs into them.
class SqlSession {
 public:
  explicit SqlSession(std::string url = {});
  // Runs `sql` (one or more statements, no parameters); false, and a test failure, on an error.
  bool run(const std::string& sql);

 private:
  boost::asio::io_context io_{1};
  std::shared_ptr<db::Connection> conn_;
};

// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
unsigned short free_port();
// Whether `port` on 127.0.0.1 can be bound now (for servers that take consecutive ports).
bool port_is_free(unsigned short port);
// Whether something accepts connections on 127.0.0.1:`port` now.
bool port_accepts(unsigned short port);

// A cluster of a test's own: a primary with `replicas` streaming replicas, in a new directory, on
// free consecutive ports. Stopped and removed when destroyed, or by a reaper if the binary dies.
struct OwnCluster {
  std::filesystem::path dir;
  std::unique_ptr<db::EmbeddedPostgres> pg;
  OwnCluster() = default;
  OwnCluster(const OwnCluster&) = delete;
  OwnCluster& operator=(const OwnCluster&) = delete;
  ~OwnCluster();
  [[nodiscard]] std::vector<std::string> replica_urls() const;
};
// Null, and a test failure, when it cannot start.
[[nodiscard]] std::unique_ptr<OwnCluster> start_cluster(const std::string& database,
                                                        unsigned replicas);

// Runs `sql` (one statement) on `url` as the URL's user; false, and a test failure, on an error.
bool run_sql(const std::string& url, const std::string& sql);

// One value from `sql` (one row, one column) on `url`; empty on any error.
[[nodiscard]] std::string scalar(const std::string& url, const std::string& sql);

// An empty database `name` on the test server (dropped first if a run left it); its URL. Tests
// whose processes must not share the test database with other servers of the binary use one.
std::string fresh_database(const std::string& name);

// Every replica of `pg` applies a commit `delay` after it was made (recovery_min_apply_delay, e.g.
// "1500ms"; "0": at once).
void delay_replay(const db::EmbeddedPostgres& pg, const std::string& delay);

}  // namespace liftoff::testing
