#pragma once
// A PgBouncer (Debian's 1.18) in transaction mode in front of a test PostgreSQL, on a loopback port
// of its own, as a child process: what a fleet runs between Liftoff and its database.
#include <memory>
#include <string>

#include "liftoff/db/embedded_postgres.hpp"
#include "support/process.hpp"

namespace liftoff::testing {

class TestPgBouncer {
 public:
  // `database` of `server` through the pooler, with at most `pool_size` server connections, each
  // prepared by `connect_query` (empty: none). Started and accepting connections, or the test has
  // failed (see running()).
  TestPgBouncer(const db::EmbeddedPostgres& server, const std::string& database,
                std::size_t pool_size, const std::string& connect_query);
  ~TestPgBouncer();
  TestPgBouncer(const TestPgBouncer&) = delete;
  TestPgBouncer& operator=(const TestPgBouncer&) = delete;

  [[nodiscard]] bool running() const;
  // A libpq URI of the database through the pooler.
  [[nodiscard]] const std::string& url() const { return url_; }

 private:
  unsigned short port_ = 0;
  std::string url_;
  std::unique_ptr<Process> process_;
};

}  // namespace liftoff::testing
