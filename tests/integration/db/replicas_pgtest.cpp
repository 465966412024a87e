// The embedded PostgreSQL with streaming replicas (issue 17, first step): `liftoff pg` starts
// replicas beside its primary, each a pg_basebackup of it streaming through its own slot.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "liftoff/db/embedded_postgres.hpp"
#include "support/postgres.hpp"
#include "support/run_dir.hpp"

namespace liftoff::testing {
namespace {
using namespace std::chrono_literals;

// One value from `sql` on `url`; empty on any error.
std::string scalar(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  std::string out;
  if (PQstatus(conn) == CONNECTION_OK) {
    PGresult* result = PQexec(conn, sql.c_str());
    if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1)
      out = PQgetvalue(result, 0, 0);
    PQclear(result);
  }
  PQfinish(conn);
  return out;
}

bool execute(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  bool ok = PQstatus(conn) == CONNECTION_OK;
  if (ok) {
    PGresult* result = PQexec(conn, sql.c_str());
    ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    if (!ok) ADD_FAILURE() << PQresultErrorMessage(result);
    PQclear(result);
  }
  PQfinish(conn);
  return ok;
}

// What `sql` answers on `url` once it answers `want`, within 20 s.
bool eventually_answers(const std::string& url, const std::string& sql, const std::string& want) {
  for (auto end = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(50ms)) {
    if (scalar(url, sql) == want) return true;
  }
  return false;
}

TEST(EmbeddedReplicas, AReplicaStreamsThePrimarysWritesThroughItsSlot) {
  auto dir = make_temp_dir("/tmp/liftoff-replicas-");
  db::EmbeddedPostgresOptions options;
  options.data_dir = dir;
  options.database = "liftoff_replicas";
  options.settings = {"fsync = off", "shared_buffers = 128MB"};
  options.replicas = 2;
  // The primary and its replicas take consecutive ports: find three free ones (again, if one is
  // taken meanwhile).
  Result<void> started = make_error(Errc::unavailable, "not started");
  std::unique_ptr<db::EmbeddedPostgres> pg;
  for (int attempt = 0; attempt < 5 && !started; ++attempt) {
    options.port = free_port();
    if (options.port > 65000) continue;
    pg = std::make_unique<db::EmbeddedPostgres>(options);
    started = pg->start();
    if (!started) (void)pg->stop();
  }
  ASSERT_TRUE(started) << started.error().detail;
  struct StopAtEnd {  // whatever fails, no server outlives the test
    db::EmbeddedPostgres& pg;
    std::filesystem::path dir;
    ~StopAtEnd() {
      (void)pg.stop();
      std::filesystem::remove_all(dir);
    }
  } stop_at_end{*pg, dir};
  auto replicas = pg->replicas();
  ASSERT_EQ(replicas.size(), 2u);

  ASSERT_TRUE(execute(pg->url(), "CREATE TABLE notes (id int PRIMARY KEY, text text)"));
  ASSERT_TRUE(execute(pg->url(), "INSERT INTO notes VALUES (1, 'written on the primary')"));
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    const auto& replica = replicas[i];
    EXPECT_EQ(replica.options().port, options.port + i + 1);
    EXPECT_TRUE(replica.running());
    EXPECT_EQ(scalar(replica.url(), "SELECT pg_is_in_recovery()"), "t");
    EXPECT_TRUE(eventually_answers(replica.url(), "SELECT text FROM notes WHERE id = 1",
                                   "written on the primary"))
        << "replica " << i + 1;
    // A replica is read-only.
    PGconn* conn = PQconnectdb(replica.url().c_str());
    PGresult* refused = PQexec(conn, "INSERT INTO notes VALUES (2, 'x')");
    EXPECT_EQ(PQresultStatus(refused), PGRES_FATAL_ERROR);
    PQclear(refused);
    PQfinish(conn);
    EXPECT_EQ(scalar(pg->url(),
                     "SELECT active FROM pg_replication_slots WHERE slot_name = "
                     "'liftoff_replica_" +
                         std::to_string(i + 1) + "'"),
              "t");
  }

  // Stopped and started again: the same replicas, no new copy, still streaming.
  ASSERT_TRUE(pg->stop());
  EXPECT_FALSE(replicas[0].running());
  EXPECT_FALSE(pg->running());
  ASSERT_TRUE(pg->start());
  ASSERT_TRUE(execute(pg->url(), "INSERT INTO notes VALUES (3, 'after a restart')"));
  EXPECT_TRUE(eventually_answers(replicas[1].url(), "SELECT text FROM notes WHERE id = 3",
                                 "after a restart"));
  EXPECT_EQ(scalar(pg->url(), "SELECT count(*) FROM pg_replication_slots"), "2");
}

}  // namespace
}  // namespace liftoff::testing
