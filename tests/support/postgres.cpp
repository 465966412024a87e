#include "support/postgres.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/this_coro.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>

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

}  // namespace

unsigned short free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

db::EmbeddedPostgres& test_postgres() {
  if (!g_postgres) {
    // /tmp, not the build tree: as root the server runs as `postgres`, which must reach the
    // directory.
    std::string pattern = "/tmp/liftoff-test-pg-XXXXXX";
    char* dir = ::mkdtemp(pattern.data());
    if (dir == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      std::abort();
    }
    g_dir = dir;
    std::filesystem::permissions(g_dir, std::filesystem::perms::owner_all |
                                            std::filesystem::perms::others_exec |
                                            std::filesystem::perms::group_exec);
    db::EmbeddedPostgresOptions options;
    options.data_dir = g_dir;
    options.port = free_port();
    options.database = "liftoff_test";
    options.settings = {"fsync = off", "synchronous_commit = off", "full_page_writes = off",
                        "shared_buffers = 128MB"};
    g_postgres = std::make_unique<db::EmbeddedPostgres>(options);
    auto started = g_postgres->start();
    if (!started) {
      ADD_FAILURE() << "cannot start the test PostgreSQL: " << started.error().detail;
      std::abort();
    }
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

}  // namespace liftoff::testing
