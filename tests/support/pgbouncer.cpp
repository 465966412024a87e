#include "support/pgbouncer.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "support/postgres.hpp"
#include "support/run_dir.hpp"

namespace liftoff::testing {
using namespace std::chrono_literals;

TestPgBouncer::TestPgBouncer(const db::EmbeddedPostgres& server, const std::string& database,
                             std::size_t pool_size, const std::string& connect_query) {
  // The server's own address and password, from its TCP URI.
  std::smatch parts;
  auto server_url = server.tcp_url(server.options().port, database);
  static const std::regex kUri("postgresql://([^:]+):([^@]+)@127\\.0\\.0\\.1:([0-9]+)/.*");
  if (!std::regex_match(server_url, parts, kUri)) {
    ADD_FAILURE() << "unexpected server URI";
    return;
  }
  auto dir = make_temp_dir("/tmp/liftoff-pgbouncer-");
  port_ = free_port();
  std::ofstream ini(dir / "pgbouncer.ini");
  ini << "[databases]\n"
      << database << " = host=127.0.0.1 port=" << parts[3] << " dbname=" << database
      << " user=" << parts[1] << " password=" << parts[2]
      << (connect_query.empty() ? "" : " connect_query='" + connect_query + "'") << "\n"
      << "[pgbouncer]\n"
      << "listen_addr = 127.0.0.1\nlisten_port = " << port_ << "\nunix_socket_dir =\n"
      << "auth_type = any\npool_mode = transaction\nmax_client_conn = 2000\n"
      << "default_pool_size = " << pool_size << "\nmin_pool_size = 0\n"
      << "ignore_startup_parameters = extra_float_digits\n";
  ini.close();
  std::filesystem::permissions(dir / "pgbouncer.ini", std::filesystem::perms::owner_read |
                                                          std::filesystem::perms::owner_write |
                                                          std::filesystem::perms::others_read);
  // PgBouncer refuses to run as root: it switches to `postgres` then.
  std::vector<std::string> argv = {"/usr/sbin/pgbouncer"};
  if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "postgres"});
  argv.push_back((dir / "pgbouncer.ini").string());
  process_ =
      std::make_unique<Process>(argv, std::map<std::string, std::string>{}, log_path("pgbouncer"));
  url_ = "postgresql://" + parts[1].str() + ":" + parts[2].str() +
         "@127.0.0.1:" + std::to_string(port_) + "/" + database;
  for (auto end = std::chrono::steady_clock::now() + 20s;
       std::chrono::steady_clock::now() < end && !port_accepts(port_);) {
    if (process_->wait(0ms)) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(running()) << process_->log();
}

TestPgBouncer::~TestPgBouncer() {
  if (!process_) return;
  process_->signal(SIGTERM);
  (void)process_->wait(5s);
}

bool TestPgBouncer::running() const {
  return process_ && port_ != 0 && port_accepts(port_);
}

}  // namespace liftoff::testing
