#include "support/postgres.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/this_coro.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "support/async.hpp"
#include "support/run_dir.hpp"

namespace liftoff::testing {
namespace {

std::unique_ptr<db::EmbeddedPostgres> g_postgres;
std::filesystem::path g_dir;

// Stops the server and removes its directory when the test binary ends.
class PostgresEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    if (!g_postgres) return;
    (void)g_postgres->stop();
    std::error_code ec;
    std::filesystem::remove_all(g_dir, ec);
    g_postgres.reset();
  }
};

[[maybe_unused]] auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

// The cluster is a daemon, not a child: if the test binary dies before its environment's TearDown
// (an abort, a timeout's SIGKILL), a reaper stops the cluster (its replicas first) and removes its
// directory `dir`. The reaper waits on a pipe that only this process holds open (close-on-exec),
// and sees its end when this process ends, however it ends. After a clean TearDown it finds nothing
// left to do.
void start_reaper(const db::EmbeddedPostgres& postgres, const std::filesystem::path& dir) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  auto pg_ctl = (postgres.options().bin_dir / "pg_ctl").string();
  std::string script =
      "read _; if [ \"$(id -u)\" = 0 ]; then as='runuser -u postgres --'; else as=; fi; ";
  auto servers = postgres.replicas();
  servers.push_back(postgres);
  for (const auto& server : servers) {
    script += "$as '" + pg_ctl + "' stop -D '" + (server.options().data_dir / "pgdata").string() +
              "' -m immediate -w >/dev/null 2>&1; ";
  }
  script += "rm -rf '" + dir.string() + "'";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();  // not in the test binary's process group: a ^C or kill of the group spares it
    ::dup2(fds[0], STDIN_FILENO);
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::close_range(3, ~0U, 0);  // holds nothing of the test binary's (see Process)
    ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[0]);  // fds[1] stays open, unused, until this process ends
}

// 127.0.0.1:`port`, as bind and connect take it.
sockaddr_in loopback(unsigned short port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return addr;
}
}  // namespace

unsigned short free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto addr = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool port_is_free(unsigned short port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto addr = loopback(port);
  bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return bound;
}

bool port_accepts(unsigned short port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto addr = loopback(port);
  bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return connected;
}

db::EmbeddedPostgres& test_postgres() {
  if (!g_postgres) {
    // /tmp, not the build tree: as root the server runs as `postgres`, which must reach the
    // directory.
    g_dir = make_temp_dir("/tmp/liftoff-test-pg-");
    db::EmbeddedPostgresOptions options;
    options.data_dir = g_dir;
    options.database = "liftoff_test";
    options.settings = {"fsync = off", "synchronous_commit = off", "full_page_writes = off",
                        "shared_buffers = 128MB"};
    // A free port may be taken between the probe and PostgreSQL's bind (another test binary runs
    // beside this one): then again on another.
    Result<void> started = make_error(Errc::unavailable, "not started");
    for (int attempt = 0; attempt < 5 && !started; ++attempt) {
      options.port = free_port();
      g_postgres = std::make_unique<db::EmbeddedPostgres>(options);
      started = g_postgres->start();
    }
    if (!started) {
      ADD_FAILURE() << "cannot start the test PostgreSQL: " << started.error().detail;
      std::abort();
    }
    start_reaper(*g_postgres, g_dir);
  }
  return *g_postgres;
}

std::string test_database_url() {
  return test_postgres().url();
}

boost::asio::awaitable<std::shared_ptr<db::Connection>> connect_test(std::string url) {
  db::ConnectOptions options{url.empty() ? test_database_url() : url, {}, "liftoff-test"};
  auto executor = co_await boost::asio::this_coro::executor;
  auto conn = co_await db::Connection::connect(executor, options,
                                               db::deadline_after(std::chrono::seconds(5)));
  if (!conn) {
    ADD_FAILURE() << "cannot connect to the test database: " << conn.error().detail;
    co_return nullptr;
  }
  co_return std::shared_ptr<db::Connection>(std::move(*conn));
}

SqlSession::SqlSession(std::string url) {
  conn_ = block_on(io_, connect_test(std::move(url)));
}

bool SqlSession::run(const std::string& sql) {
  if (!conn_) return false;
  auto done =
      block_on(io_, conn_->execute_script(sql, db::deadline_after(std::chrono::seconds(30))));
  EXPECT_TRUE(done) << sql << ": " << (done ? "" : done.error().detail);
  return static_cast<bool>(done);
}

OwnCluster::~OwnCluster() {
  if (pg) (void)pg->stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

std::vector<std::string> OwnCluster::replica_urls() const {
  std::vector<std::string> urls;
  for (const auto& replica : pg->replicas()) urls.push_back(replica.url());
  return urls;
}

std::unique_ptr<OwnCluster> start_cluster(const std::string& database, unsigned replicas) {
  auto cluster = std::make_unique<OwnCluster>();
  cluster->dir = make_temp_dir("/tmp/liftoff-cluster-");
  db::EmbeddedPostgresOptions options;
  options.data_dir = cluster->dir;
  options.database = database;
  options.settings = {"fsync = off", "shared_buffers = 128MB"};
  options.replicas = replicas;
  // The primary and its replicas take consecutive ports: again on others if one is taken.
  Result<void> started = make_error(Errc::unavailable, "not started");
  for (int attempt = 0; attempt < 5 && !started; ++attempt) {
    options.port = free_port();
    if (options.port > 65000) continue;
    cluster->pg = std::make_unique<db::EmbeddedPostgres>(options);
    started = cluster->pg->start();
    if (!started) (void)cluster->pg->stop();
  }
  if (!started) {
    ADD_FAILURE() << "cannot start a replicated PostgreSQL: " << started.error().for_log();
    return nullptr;
  }
  start_reaper(*cluster->pg, cluster->dir);
  return cluster;
}

bool run_sql(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  bool ok = PQstatus(conn) == CONNECTION_OK;
  if (!ok) ADD_FAILURE() << PQerrorMessage(conn);
  if (ok) {
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);  // e.g. "does not exist, skipping"
    PGresult* result = PQexec(conn, sql.c_str());
    ok = PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK;
    if (!ok) ADD_FAILURE() << sql << ": " << PQresultErrorMessage(result);
    PQclear(result);
  }
  PQfinish(conn);
  return ok;
}

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

std::string fresh_database(const std::string& name) {
  const auto admin = test_postgres().url_for("postgres");
  run_sql(admin, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  run_sql(admin, "CREATE DATABASE " + name);
  return test_postgres().url_for(name);
}

void delay_replay(const db::EmbeddedPostgres& pg, const std::string& delay) {
  for (const auto& replica : pg.replicas()) {
    run_sql(replica.url(), "ALTER SYSTEM SET recovery_min_apply_delay = '" + delay + "'");
    run_sql(replica.url(), "SELECT pg_reload_conf()");
  }
}

}  // namespace liftoff::testing
