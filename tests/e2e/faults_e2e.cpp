// Faults injected under a running server: the database silent (a partition, a paused host), its
// connections cut, its backends terminated by an administrator (57P01), and the session
// revocations sent while the server could not listen. The server reaches the test PostgreSQL
// through a TcpProxy, so each test breaks only its own server's connections (the other servers of
// this binary use the Unix socket).
#include "e2e/records_support.hpp"
#include "support/tcp_proxy.hpp"

namespace liftoff::testing {
namespace {

// A server whose every database connection goes through `proxy`.
struct ProxiedServer {
  TcpProxy proxy{"127.0.0.1", test_postgres().options().port};
  Server server;
  explicit ProxiedServer(Server::Env env = {}) : server(through(proxy, std::move(env))) {
    EXPECT_TRUE(server.wait_ready()) << server.process->log();
  }
  ~ProxiedServer() {
    proxy.pass();
    server.process->signal(SIGTERM);
    EXPECT_EQ(server.process->wait(15s), 0) << server.process->log();
  }
  [[nodiscard]] unsigned short port() const { return server.port; }

  static Server::Env through(const TcpProxy& proxy, Server::Env env) {
    env["LIFTOFF_DATABASE_URL"] = test_postgres().tcp_url(proxy.port(), "liftoff_test");
    return env;
  }
};

// Answers during a fault are `ok` or the dependency's problem, never a failure of the server's
// own: 503 with Retry-After (the database unavailable), or 504 (it did not answer in time).
void expect_dependency_problem_or(const std::optional<HttpResponse>& r, int ok) {
  ASSERT_TRUE(r) << "no answer";
  if (r->status == ok) return;
  EXPECT_EQ(r->header("content-type"), "application/problem+json");
  if (r->status == 504) return;
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_FALSE(r->header("retry-after").empty()) << r->body;
}

TEST(Faults, WhileTheDatabaseIsSilentRequestsGet503AndTheServerRecoversAfter) {
  ProxiedServer own;
  auto t = new_tenant(own.port(), "silent-db");
  create_tickets(t);
  ASSERT_EQ(status(create(t, {{"title", "before"}, {"status", "open"}, {"priority", 1}})), 201);

  own.proxy.blackhole();  // connections stay open; nothing answers
  auto ready = http_request(own.port(), "GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(std::string(problem(*ready).at("detail").as_string()).find("database not ready"),
            std::string::npos)
      << ready->body;
  // The statement is cancelled at the request's deadline (the cancel cannot arrive either) and the
  // connection closed after its grace: 504. (Whether the write was stored is not known: the bytes
  // the blackhole held still reach the database when it passes again, as on a real network.)
  auto write = create(t, {{"title", "during"}, {"status", "open"}, {"priority", 1}});
  ASSERT_TRUE(write);
  EXPECT_EQ(write->status, 504) << write->body;
  EXPECT_EQ(problem(*write).at("type").as_string(), "urn:liftoff:problem:timeout");
  // Liveness does not depend on the database.
  EXPECT_EQ(status(http_request(own.port(), "GET", "/healthz")), 200);

  own.proxy.pass();
  EXPECT_TRUE(
      eventually([&] { return status(http_request(own.port(), "GET", "/readyz")) == 200; }));
  EXPECT_TRUE(eventually([&] {
    return status(create(t, {{"title", "after"}, {"status", "open"}, {"priority", 1}})) == 201;
  }));
}

TEST(Faults, CutConnectionsAreReplacedWithoutA500) {
  ProxiedServer own;
  auto t = new_tenant(own.port(), "cut-db");
  create_tickets(t);
  auto accepted_before = own.proxy.accepted();
  own.proxy.cut();
  // Each answer is a success or a 503 (the connection a request held was lost), and the server
  // connects again on its own.
  bool created = eventually([&] {
    auto r = create(t, {{"title", "after the cut"}, {"status", "open"}, {"priority", 1}});
    expect_dependency_problem_or(r, 201);
    return status(r) == 201;
  });
  EXPECT_TRUE(created);
  EXPECT_GT(own.proxy.accepted(), accepted_before);
  EXPECT_EQ(status(send_json(own.port(), "GET", t.base + "/tickets/records", t.owner.token)), 200);
}

TEST(Faults, BackendsTerminatedByAnAdministratorAreReplacedWithoutA500) {
  ProxiedServer own;
  auto t = new_tenant(own.port(), "terminated");
  create_tickets(t);
  // Every backend of this server (the only ones connected over TCP): pool and listeners alike get
  // 57P01 (admin_shutdown) and lose their connection.
  auto terminated = count_of(
      "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE client_addr IS NOT NULL AND datname = current_database()) t");
  EXPECT_GE(terminated, 2);  // at least the two listeners
  bool created = eventually([&] {
    auto r = create(t, {{"title", "after 57P01"}, {"status", "open"}, {"priority", 1}});
    expect_dependency_problem_or(r, 201);
    return status(r) == 201;
  });
  EXPECT_TRUE(created);
  EXPECT_TRUE(
      eventually([&] { return status(http_request(own.port(), "GET", "/readyz")) == 200; }));
}

// A notification sent while a server's LISTEN connection is down is lost to it. Its session cache
// must not outlive that: a session revoked meanwhile (on another server) is refused once this one
// is back, long before its cache would forget it.
TEST(Faults, ASessionRevokedWhileTheListenerWasDownIsRefusedWhenItIsBack) {
  ProxiedServer own(Server::Env{{"LIFTOFF_SESSION_CACHE_TTL", "120s"}});
  Server other;
  ASSERT_TRUE(other.wait_ready()) << other.process->log();
  auto user = sign_up(other.port, "listener-down");
  ASSERT_EQ(with_token(own.port(), "GET", "/v1/me", user.token)->status, 200);  // cached there
  ASSERT_EQ(with_token(own.port(), "GET", "/v1/me", user.token)->status, 200);

  own.proxy.refuse();
  own.proxy.cut();  // the listener, and every pooled connection, is gone and cannot come back
  ASSERT_TRUE(eventually([&] { return own.proxy.open_connections() == 0; }));
  EXPECT_EQ(post_json(other.port, "/v1/auth/logout", "", user.token)->status, 204);
  own.proxy.pass();
  EXPECT_TRUE(eventually([&] {
    auto r = with_token(own.port(), "GET", "/v1/me", user.token);
    if (r && r->status != 401) expect_dependency_problem_or(r, 200);
    return r && r->status == 401;
  })) << "a session revoked while the listener was down was still served from the cache";
  other.process->signal(SIGTERM);
  EXPECT_EQ(other.process->wait(15s), 0) << other.process->log();
}

}  // namespace
}  // namespace liftoff::testing
