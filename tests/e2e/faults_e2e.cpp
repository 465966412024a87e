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
  OwnServer own;
  explicit ProxiedServer(Server::Env env = {}) : own(through(proxy, std::move(env))) {}
  ~ProxiedServer() { proxy.pass(); }  // then `own` stops
  [[nodiscard]] unsigned short port() const { return own.port(); }

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

// Sends `request` until it is answered `ok`; every answer meanwhile is `ok` or a dependency
// problem (see above). False when that did not happen before eventually()'s deadline.
template <class Request>
bool eventually_answered(Request request, int ok) {
  return eventually([&] {
    auto r = request();
    expect_dependency_problem_or(r, ok);
    return status(r) == ok;
  });
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
  // Either the statement is cancelled at the request's deadline (the cancel cannot arrive either)
  // and the connection closed after its grace: 504; or no pooled connection could be had in time
  // (the probe above still held one, and new ones hang in the blackhole): 503. Never a success or a
  // 500. (Whether a cancelled write was stored is not known: the bytes the blackhole held still
  // reach the database when it passes again, as on a real network.)
  auto write = create(t, {{"title", "during"}, {"status", "open"}, {"priority", 1}});
  ASSERT_TRUE(write);
  EXPECT_TRUE(write->status == 504 || write->status == 503) << write->body;
  EXPECT_EQ(problem(*write).at("type").as_string(), write->status == 504
                                                        ? "urn:liftoff:problem:timeout"
                                                        : "urn:liftoff:problem:unavailable");
  if (write->status == 503) {
    EXPECT_FALSE(write->header("retry-after").empty());
  }
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
  bool created = eventually_answered(
      [&] {
        return create(t, {{"title", "after the cut"}, {"status", "open"}, {"priority", 1}});
      },
      201);
  EXPECT_TRUE(created);
  EXPECT_GT(own.proxy.accepted(), accepted_before);
  // Reads hold connections of their own: one that was cut is found lost when a read next uses it
  // (503 once, as above; seen in a full run), then replaced.
  EXPECT_TRUE(eventually_answered(
      [&] { return send_json(own.port(), "GET", t.base + "/tickets/records", t.owner.token); },
      200));
}

TEST(Faults, BackendsTerminatedByAnAdministratorAreReplacedWithoutA500) {
  ProxiedServer own;
  auto t = new_tenant(own.port(), "terminated");
  create_tickets(t);
  // Every backend of this server (the only ones connected over TCP): pool and listeners alike get
  // 57P01 (admin_shutdown) and lose their connection.
  auto before = count_of("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint");
  auto terminated = count_of(
      "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE client_addr IS NOT NULL AND datname = current_database()) t");
  EXPECT_GE(terminated, 2);  // at least the two listeners
  // Gone: each has sent its termination notice (FATAL) and closed.
  ASSERT_TRUE(eventually([&] {
    return count_of(
               "SELECT count(*) FROM pg_stat_activity WHERE client_addr IS NOT NULL AND datname = "
               "current_database() AND backend_start < to_timestamp($1 / 1000000.0)",
               db::Params(before)) == 0;
  }));
  // The server reads the notice on every idle connection before using it, so even the first
  // request after the termination is served, on new connections.
  EXPECT_EQ(status(create(t, {{"title", "after 57P01"}, {"status", "open"}, {"priority", 1}})),
            201);
  EXPECT_TRUE(
      eventually([&] { return status(http_request(own.port(), "GET", "/readyz")) == 200; }));
  auto log = own.own.process().log();
  EXPECT_NE(log.find("postgres ended a connection: FATAL:  terminating connection"),
            std::string::npos)
      << log;
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
  })) << "a session revoked while the listener was down was still served from the cache\n"
      << own.proxy.events() << "\n"
      << own.own.process().log();
  other.process->signal(SIGTERM);
  EXPECT_EQ(other.process->wait(15s), 0) << other.process->log();
}

// A request stuck in the database: the test locks the org's collections in a transaction of its
// own (as a schema change does), so the next record create of that org waits for it, holding its
// pooled connection, until release().
class StuckWrite {
 public:
  explicit StuckWrite(const Tenant& t) : tenant_(t) {
    EXPECT_TRUE(
        lock_.run("BEGIN; SELECT 1 FROM collections WHERE org_id = '" + t.org + "' FOR UPDATE"));
    request_ = std::thread([this] {
      answer_ = create(tenant_, {{"title", "stuck"}, {"status", "open"}, {"priority", 1}});
    });
    // In flight: this metrics request and the stuck one.
    EXPECT_TRUE(eventually([&] { return metric(t.port, "http_requests_in_flight") >= 2; }));
  }
  ~StuckWrite() {
    release();
    if (request_.joinable()) request_.join();
  }
  void release() {
    if (!released_) lock_.run("COMMIT");
    released_ = true;
  }
  // Once released, what the stuck request was answered (nullopt: the connection closed unanswered).
  const std::optional<HttpResponse>& answer() {
    release();
    return answer_while_held();
  }
  // What the request was answered while the lock is still held (it must end by itself).
  const std::optional<HttpResponse>& answer_while_held() {
    if (request_.joinable()) request_.join();
    return answer_;
  }

 private:
  const Tenant& tenant_;
  SqlSession lock_;
  bool released_ = false;
  std::thread request_;
  std::optional<HttpResponse> answer_;
};

std::int64_t stuck_records(const Tenant& t) {
  return count_of("SELECT count(*) FROM records WHERE org_id = $1 AND data->>'title' = 'stuck'",
                  db::Params(*db::Uuid::parse(t.org)));
}

// Each worker opens its database connections before it accepts (db_pool_warm pooled ones and its
// shared ones), so the first requests after a start or a restart do not each wait for one (nginx
// passed 504s from a restarted node's cold pools).
TEST(Faults, EachWorkerOpensItsDatabaseConnectionsBeforeItServes) {
  OwnServer own(Server::Env{{"LIFTOFF_THREADS", "2"}, {"LIFTOFF_DB_POOL_WARM", "3"}});
  // 2 workers x (2 shared + 3 pooled), to the one server.
  EXPECT_TRUE(eventually([&] {
    return own.process().log().find("opened 10 database connections before serving") !=
           std::string::npos;
  })) << own.process().log();
  // The pooled ones are in the pools, idle, before any request has needed one.
  EXPECT_GE(metric(own.port(), "db_pool_connections{database=\"primary\"}"), 6);
}

// Every pooled connection of the only worker is held: a request that needs one waits
// db_acquire_timeout, then is told to come back (503 + Retry-After), not queued without end.
TEST(Faults, AWaitForAPooledConnectionPastItsTimeoutGets503WithRetryAfter) {
  OwnServer own(Server::Env{{"LIFTOFF_THREADS", "1"},
                            {"LIFTOFF_DB_POOL_SIZE", "1"},
                            // Background work (credential-use flushes, the rewriter) takes the
                            // connection for moments: a wait of 1 s outlasts those.
                            {"LIFTOFF_DB_ACQUIRE_TIMEOUT", "1s"},
                            {"LIFTOFF_REQUEST_TIMEOUT", "30s"}});
  auto stuck_org = new_tenant(own.port(), "pool-held");
  auto other_org = new_tenant(own.port(), "pool-wait");
  create_tickets(stuck_org);
  create_tickets(other_org);
  StuckWrite stuck(stuck_org);
  auto waited = create(other_org, {{"title", "waits"}, {"status", "open"}, {"priority", 1}});
  ASSERT_TRUE(waited);
  EXPECT_EQ(waited->status, 503) << waited->body;
  EXPECT_FALSE(waited->header("retry-after").empty());
  EXPECT_EQ(problem(*waited).at("type"), "urn:liftoff:problem:unavailable");
  // Reads that need no exclusive connection are still served meanwhile.
  EXPECT_EQ(status(send_json(own.port(), "GET", other_org.base + "/tickets/records",
                             other_org.owner.token)),
            200);
  EXPECT_EQ(status(stuck.answer()), 201);
  EXPECT_EQ(status(create(other_org, {{"title", "now"}, {"status", "open"}, {"priority", 1}})),
            201);
}

// A request's statements end by its handling_timeout, not each by db_query_timeout: a write stuck
// behind a lock is answered 504 (before the request scope, each statement had 5 s of its own).
TEST(Faults, AStuckRequestIsAnswered504AtItsHandlingTimeout) {
  // API only: the first requests (signup, under ASan) must not share a cold start with the job
  // workers' connections being opened beside them. 2 s to handle each request: the setup's requests
  // open the pool's connections to PostgreSQL, and with 300 ms one was answered 504 while the
  // machine was loaded; the stuck write still waits on its lock far longer than that.
  OwnServer own(Server::Env{{"LIFTOFF_HANDLING_TIMEOUT", "2s"},
                            {"LIFTOFF_ROLE", "api"},
                            {"LIFTOFF_DB_QUERY_TIMEOUT", "10m"},
                            {"LIFTOFF_REQUEST_TIMEOUT", "30s"}});
  auto t = new_tenant(own.port(), "handling-timeout");
  create_tickets(t);
  StuckWrite stuck(t);
  const auto& answer = stuck.answer_while_held();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 504) << answer->body;
  EXPECT_EQ(problem(*answer).at("type"), "urn:liftoff:problem:timeout");
}

// SIGTERM: idle keep-alive connections close at once, the request in flight is finished and
// answered (with Connection: close), a new connection's first request too, then the process exits
// 0.
TEST(Faults, ShutdownFinishesTheRequestInFlightAndClosesIdleConnections) {
  OwnServer own(Server::Env{{"LIFTOFF_REQUEST_TIMEOUT", "30s"},
                            {"LIFTOFF_IDLE_TIMEOUT", "60s"},
                            {"LIFTOFF_SHUTDOWN_TIMEOUT", "60s"}});
  auto t = new_tenant(own.port(), "drain");
  create_tickets(t);
  RawConnection idle(own.port());
  ASSERT_TRUE(idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(idle.read_response());
  RawConnection fresh(own.port());  // connected, no request yet: as a balancer's new connection
  StuckWrite stuck(t);
  own.process().signal(SIGTERM);
  EXPECT_TRUE(idle.closed_by_peer(30s));
  EXPECT_FALSE(own.process().wait(0ms)) << "exited with a request in flight";
  // A connection on which no request had begun gets its first one answered, then is closed.
  ASSERT_TRUE(fresh.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = fresh.read_response();
  ASSERT_TRUE(first) << "a connection that had sent nothing yet was closed by the drain";
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->header("connection"), "close");
  auto answer = stuck.answer();
  ASSERT_TRUE(answer) << own.process().log();
  EXPECT_EQ(answer->status, 201);
  EXPECT_EQ(answer->header("connection"), "close");
  EXPECT_EQ(own.process().wait(30s), 0) << own.process().log();
  EXPECT_EQ(stuck_records(t), 1);
  EXPECT_EQ(http_request(own.port(), "GET", "/healthz"), std::nullopt);  // no longer listening
}

// With a drain_delay, SIGTERM first takes the process out of rotation while it still serves:
// /readyz answers 503, every answer closes its connection (a kept-alive connection ends after its
// next answer instead of being closed under a load balancer about to reuse it), new connections and
// writes are still served. A second signal drains at once, and the process exits 0.
TEST(Faults, ADrainDelayFailsReadinessFirstWhileTheServerStillServes) {
  OwnServer own(Server::Env{{"LIFTOFF_DRAIN_DELAY", "10m"}, {"LIFTOFF_IDLE_TIMEOUT", "10m"}});
  auto t = new_tenant(own.port(), "drain-delay");
  create_tickets(t);
  RawConnection kept(own.port());
  ASSERT_TRUE(kept.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto before = kept.read_response();
  ASSERT_TRUE(before);
  EXPECT_NE(before->header("connection"), "close");

  own.process().signal(SIGTERM);
  std::optional<HttpResponse> ready;
  for (int i = 0; i < 200; ++i) {  // the signal is handled on the server's control thread
    ready = http_request(own.port(), "GET", "/readyz");
    if (status(ready) == 503) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(status(ready), 503) << own.process().log();
  EXPECT_EQ(problem(*ready).at("type"), "urn:liftoff:problem:unavailable");
  EXPECT_NE(problem(*ready).at("detail").as_string().find("draining"), std::string::npos);
  EXPECT_EQ(ready->header("connection"), "close");

  // The kept-alive connection is still served, once, and then closed by the server.
  ASSERT_TRUE(kept.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto last = kept.read_response();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->status, 200);
  EXPECT_EQ(last->header("connection"), "close");
  EXPECT_TRUE(kept.closed_by_peer(5s));

  // New connections are accepted and writes acknowledged.
  auto created = create(t, {{"title", "while leaving"}, {"status", "open"}, {"priority", 1}});
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  EXPECT_EQ(created->header("connection"), "close");
  EXPECT_FALSE(own.process().wait(0ms)) << "exited during its drain_delay";

  own.process().signal(SIGTERM);  // the second: drain now
  EXPECT_EQ(own.process().wait(30s), 0) << own.process().log();
  EXPECT_NE(own.process().log().find("draining now"), std::string::npos) << own.process().log();
  EXPECT_EQ(http_request(own.port(), "GET", "/healthz"), std::nullopt);  // no longer listening
}

// A request still running at shutdown_timeout is cut: its connection closes unanswered, its
// transaction rolls back (nothing acknowledged, nothing stored) and the process still exits 0.
// (It exits once the statement it was waiting on reaches its own deadline, 5 s: the cut closes
// client connections, not database ones; see docs/operations.md.)
TEST(Faults, ShutdownPastItsTimeoutCutsTheRequestAndStoresNothing) {
  OwnServer own(
      Server::Env{{"LIFTOFF_REQUEST_TIMEOUT", "30s"}, {"LIFTOFF_SHUTDOWN_TIMEOUT", "200ms"}});
  auto t = new_tenant(own.port(), "cut-at-shutdown");
  create_tickets(t);
  StuckWrite stuck(t);
  own.process().signal(SIGTERM);
  EXPECT_EQ(own.process().wait(30s), 0) << own.process().log();
  EXPECT_NE(own.process().log().find("1 connections cut at the shutdown deadline"),
            std::string::npos)
      << own.process().log();
  EXPECT_EQ(stuck.answer(), std::nullopt);
  EXPECT_EQ(stuck_records(t), 0);
}

// A process killed in the middle of a collection's background rewrite: the rewrite's state is in
// the database, so another process takes it over from where it was and settles the schema; no
// record is lost or changed (versions stay as they were).
TEST(Faults, ARewriteWhoseProcessIsKilledIsFinishedByAnother) {
  Server first;
  ASSERT_TRUE(first.wait_ready()) << first.process->log();
  auto t = new_tenant(first.port, "rewrite-killed");
  ASSERT_EQ(
      status(send_json(first.port, "POST", t.base, t.owner.token, R"({"name":"items","fields":[
      {"name": "title", "type": "text"}, {"name": "size", "type": "integer"}]})")),
      201);
  constexpr int kRecords = 1200;  // more than two of the rewriter's batches (500)
  for (int b = 0; b < kRecords / 400; ++b) {
    json::array operations;
    for (int i = b * 400; i < (b + 1) * 400; ++i)
      operations.push_back(json::object{
          {"op", "create"},
          {"data", json::object{{"title", "item " + std::to_string(i)}, {"size", i}}}});
    ASSERT_EQ(status(send_json(first.port, "POST", t.base + "/items/records:batch", t.owner.token,
                               body_of(json::object{{"operations", operations}}))),
              200);
  }
  auto collection =
      "(SELECT id FROM collections WHERE org_id = '" + t.org + "' AND name = 'items')";
  // The last record (in the rewriter's order) is held, so the rewrite stops short of it.
  SqlSession holder;
  ASSERT_TRUE(holder.run("BEGIN; SELECT 1 FROM records WHERE collection_id = " + collection +
                         " ORDER BY id DESC LIMIT 1 FOR UPDATE"));
  ASSERT_EQ(status(send_json(first.port, "PATCH", t.base + "/items", t.owner.token,
                             R"({"rename":{"title":"name"},"indexed":{"size":true}})")),
            200);
  ASSERT_TRUE(eventually([&] {
    return count_of("SELECT count(*) FROM collection_rewrites WHERE collection_id = " + collection +
                    " AND after_id IS NOT NULL") == 1;
  })) << "the rewrite did not get under way";
  first.process->signal(SIGKILL);
  EXPECT_EQ(first.process->wait(30s), 128 + SIGKILL);
  ASSERT_TRUE(holder.run("COMMIT"));

  OwnServer second;
  EXPECT_TRUE(eventually(
      [&] {
        auto got = send_json(second.port(), "GET", t.base + "/items", t.owner.token);
        return status(got) == 200 && json_of(*got).at("rewriting") == false;
      },
      60s))
      << second.process().log();
  EXPECT_EQ(count_of("SELECT count(*) FROM records r JOIN collections c ON c.id = r.collection_id "
                     "WHERE c.id = " +
                     collection + " AND r.layout = c.layout AND r.version = 1"),
            kRecords);
  auto found =
      send_json(second.port(), "GET",
                t.base + "/items/records?filter=" + encode("name = 'item 1199' and size = 1199"),
                t.owner.token);
  ASSERT_EQ(status(found), 200);
  EXPECT_EQ(json_of(*found).at("records").as_array().size(), 1u);
}

// PostgreSQL itself stopped (a fast shutdown: every connection closed, new ones refused) and
// started again under a running server, as an upgrade or a host's restart does: meanwhile requests
// get 503 and /readyz says so, never a 500; once it is back the server serves again on its own, and
// its revocation listener is back too (a session revoked on another process is refused here). The
// test cluster is this binary's own; no other test of it runs meanwhile.
TEST(Faults, PostgresStoppedAndStartedAgainUnderARunningServer) {
  OwnServer own(Server::Env{{"LIFTOFF_SESSION_CACHE_TTL", "120s"}});
  auto t = new_tenant(own.port(), "pg-restart");
  create_tickets(t);
  auto user = sign_up(own.port(), "pg-restart-user");
  ASSERT_EQ(status(create(t, {{"title", "before"}, {"status", "open"}, {"priority", 1}})), 201);

  auto& postgres = test_postgres();
  ASSERT_TRUE(postgres.stop());
  auto write = create(t, {{"title", "while down"}, {"status", "open"}, {"priority", 1}});
  ASSERT_TRUE(write);
  EXPECT_EQ(write->status, 503) << write->body;
  EXPECT_FALSE(write->header("retry-after").empty());
  EXPECT_EQ(status(http_request(own.port(), "GET", "/readyz")), 503);
  EXPECT_EQ(status(http_request(own.port(), "GET", "/healthz")), 200);
  ASSERT_TRUE(postgres.start());

  EXPECT_TRUE(
      eventually([&] { return status(http_request(own.port(), "GET", "/readyz")) == 200; }));
  EXPECT_TRUE(eventually_answered(
      [&] {
        return create(t, {{"title", "after"}, {"status", "open"}, {"priority", 1}});
      },
      201));
  // Each worker's pool may still be backing off from the connects that failed meanwhile.
  ASSERT_TRUE(eventually_answered(
      [&] { return with_token(own.port(), "GET", "/v1/me", user.token); }, 200));
  ASSERT_EQ(status(with_token(own.port(), "GET", "/v1/me", user.token)), 200);  // cached here
  OwnServer other;
  EXPECT_EQ(post_json(other.port(), "/v1/auth/logout", "", user.token)->status, 204);
  EXPECT_TRUE(eventually([&] {
    return status(with_token(own.port(), "GET", "/v1/me", user.token)) == 401;
  })) << "a revocation after the restart did not reach this server's cache";
}

}  // namespace
}  // namespace liftoff::testing
