// The driver under injected faults (tests/support/tcp_proxy.hpp between it and PostgreSQL), and
// the SQLSTATEs that faults and constraints produce, each mapped to the error a caller acts on.
#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>
#include <optional>

#include "liftoff/db/connection.hpp"
#include "support/async.hpp"
#include "support/postgres.hpp"
#include "support/tcp_proxy.hpp"

namespace liftoff::db {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::block_on;
using testing::TcpProxy;

constexpr Statement kOne{Plane::any, "faults.one", "SELECT 1::int8"};

Deadline soon() {
  return deadline_after(10s);
}

std::string url_through(const TcpProxy& proxy) {
  return testing::test_postgres().tcp_url(proxy.port(), "liftoff_test");
}

asio::awaitable<Result<std::vector<Notification>>> listen_through(Connection& conn) {
  auto listening = co_await conn.execute_script("LISTEN faults_channel", soon());
  EXPECT_TRUE(listening) << (listening ? "" : listening.error().detail);
  co_return co_await conn.notifications(deadline_after(50ms));
}

// The proxy itself: what passes, what a cut and a blackhole do to a live connection.
TEST(Faults, ACutEndsAListeningConnectionWithUnavailable) {
  TcpProxy proxy("127.0.0.1", testing::test_postgres().options().port);
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(url_through(proxy));
    if (!conn) co_return;
    auto quiet = co_await listen_through(*conn);
    CO_ASSERT_TRUE(quiet);
    EXPECT_TRUE(quiet->empty());
    EXPECT_EQ(proxy.open_connections(), 1U);
    proxy.cut();
    // Waits on the socket: the cut is seen as soon as it happens, not at a deadline.
    auto lost = co_await conn->notifications(deadline_after(30s));
    CO_ASSERT_FALSE(lost);  // a cut connection still listened
    EXPECT_EQ(lost.error().code, Errc::unavailable);
    EXPECT_FALSE(conn->usable());
  }());
  EXPECT_TRUE(testing::eventually([&] { return proxy.open_connections() == 0; }));
}

TEST(Faults, ABlackholedStatementTimesOutAndTheConnectionIsClosed) {
  TcpProxy proxy("127.0.0.1", testing::test_postgres().options().port);
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(url_through(proxy));
    if (!conn) co_return;
    EXPECT_TRUE(co_await conn->query(kOne, Params::none(), soon()));
    proxy.blackhole();
    // The cancel cannot arrive either: after the grace the driver closes the connection.
    auto stuck = co_await conn->query(kOne, Params::none(), deadline_after(200ms));
    CO_ASSERT_FALSE(stuck);
    EXPECT_EQ(stuck.error().code, Errc::timeout);
    EXPECT_FALSE(conn->usable());
    proxy.pass();
    auto fresh = co_await testing::connect_test(url_through(proxy));
    if (!fresh) co_return;
    EXPECT_TRUE(co_await fresh->query(kOne, Params::none(), soon()));
  }());
}

TEST(Faults, ADelayedConnectionStillAnswersInOrder) {
  TcpProxy proxy("127.0.0.1", testing::test_postgres().options().port);
  proxy.delay(20ms);
  block_on([&]() -> asio::awaitable<void> {
    auto conn = co_await testing::connect_test(url_through(proxy));
    if (!conn) co_return;
    constexpr Statement kEcho{Plane::any, "faults.echo", "SELECT $1::int8"};
    std::vector<Query> queries;
    std::vector<Params> params;
    params.reserve(5);
    for (std::int64_t i = 0; i < 5; ++i) params.emplace_back(i);
    for (auto& p : params) queries.push_back({&kEcho, p});
    auto results = co_await conn->pipeline(queries, soon());
    CO_ASSERT_TRUE(results.size() == 5U);
    for (std::int64_t i = 0; i < 5; ++i) {
      CO_ASSERT_TRUE(results[i]);
      EXPECT_EQ((*results[i])[0].get<std::int64_t>(0), i);
    }
  }());
}

TEST(Faults, RefusedConnectionsFailToConnect) {
  TcpProxy proxy("127.0.0.1", testing::test_postgres().options().port);
  proxy.refuse();
  block_on([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    // Named: GCC 12 mishandles a temporary argument of a co_awaited call.
    ConnectOptions options{url_through(proxy), {}, "liftoff-test"};
    auto conn = co_await Connection::connect(executor, options, soon());
    CO_ASSERT_FALSE(conn);
    EXPECT_EQ(conn.error().code, Errc::unavailable);
  }());
  EXPECT_GE(proxy.accepted(), 1U);
}

// An administrator's pg_terminate_backend (57P01, admin_shutdown): the statement fails as
// unavailable (retry elsewhere), and the connection is known to be gone.
TEST(Faults, ATerminatedBackendIsUnavailableAndUnusable) {
  block_on([]() -> asio::awaitable<void> {
    auto victim = co_await testing::connect_test();
    auto admin = co_await testing::connect_test();
    if (!victim || !admin) co_return;
    constexpr Statement kSleep{Plane::any, "faults.sleep", "SELECT pg_sleep(30)"};
    constexpr Statement kTerminate{
        Plane::any, "faults.terminate",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT "
        "pg_sleep(30)' AND state = 'active'"};
    std::optional<Result<Rows>> result;
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&]() -> asio::awaitable<void> {
          result = co_await victim->query(kSleep, Params::none(), deadline_after(60s));
        },
        asio::detached);
    // Terminated once it runs: the administrator looks until the statement is there (polling a
    // condition; the 30 s only ends a hung test).
    bool terminated = false;
    for (auto end = std::chrono::steady_clock::now() + 30s;
         !terminated && std::chrono::steady_clock::now() < end;) {
      auto t = co_await admin->query(kTerminate, Params::none(), soon());
      terminated = t && !t->empty();
      if (!terminated) co_await testing::sleep_for(10ms);
    }
    EXPECT_TRUE(terminated);
    EXPECT_TRUE(co_await testing::until([&] { return result.has_value(); }));
    CO_ASSERT_TRUE(result.has_value());
    CO_ASSERT_FALSE(*result);
    EXPECT_EQ(result->error().code, Errc::unavailable) << result->error().detail;
    EXPECT_FALSE(victim->usable());
  }());
}

}  // namespace
}  // namespace liftoff::db
