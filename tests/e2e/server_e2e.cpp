// End-to-end: the real `liftoff serve` binary, a real PostgreSQL, raw sockets.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "e2e/e2e.hpp"
#include "liftoff/core/trace_context.hpp"
#include "liftoff/db/migrations.hpp"

namespace liftoff::testing {
namespace {

TEST_F(E2E, HealthzReadyzAndMetrics) {
  auto health = http_request(port(), "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, R"({"status":"ok"})");
  EXPECT_FALSE(health->header("date").empty());

  auto ready = http_request(port(), "GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;

  auto openapi = http_request(port(), "GET", "/v1/openapi.json");
  ASSERT_TRUE(openapi);
  EXPECT_EQ(openapi->status, 200);
  EXPECT_TRUE(boost::json::parse(openapi->body)
                  .as_object()
                  .at("paths")
                  .as_object()
                  .contains("/v1/auth/signup"));

  auto metrics = http_request(port(), "GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  for (const char* series :
       {"http_requests_total{route=\"/healthz\",class=\"2xx\"}",
        "http_request_duration_seconds_bucket{route=\"/readyz\"", "http_requests_in_flight",
        "http_connections_open", "db_pool_connections{database=\"primary\"}", "db_pool_in_use",
        "db_pool_waiters", "db_pool_acquire_wait_seconds_bucket",
        "db_query_duration_seconds_count{statement=\"system.schema_version\"}",
        "cache_lookups_total{cache=\"session\",result=\"hit\"}", "cache_entries{cache=\"session\"}",
        "cache_lookups_total{cache=\"schema\",result=\"miss\"}", "cache_entries{cache=\"list\"}",
        "liftoff_build_info{version="}) {
    EXPECT_NE(metrics->body.find(series), std::string::npos) << series;
  }
}

TEST_F(E2E, KeepAliveServesManyRequestsOnOneConnection) {
  RawConnection c(port());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
  }
  // Pipelined: two requests in one write, two responses in order.
  ASSERT_TRUE(
      c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(c.read_response()->status, 200);
  EXPECT_EQ(c.read_response()->status, 404);
}

TEST_F(E2E, ConnectionCloseIsHonoured) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.closed_by_peer(2s));
}

TEST_F(E2E, UnknownPathIs404Problem) {
  auto r = http_request(port(), "GET", "/v1/nothing/here");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  auto p = problem(*r);
  EXPECT_EQ(p.at("type").as_string(), "urn:liftoff:problem:not-found");
  EXPECT_EQ(p.at("status").as_int64(), 404);
  EXPECT_EQ(p.at("request_id").as_string(), r->header("x-request-id"));
}

TEST_F(E2E, WrongMethodIs405WithAllow) {
  auto r = http_request(port(), "DELETE", "/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->header("allow"), "GET, HEAD, OPTIONS");
  EXPECT_EQ(problem(*r).at("type").as_string(), "urn:liftoff:problem:method-not-allowed");
}

TEST_F(E2E, HeadHasHeadersButNoBody) {
  RawConnection c(port());
  ASSERT_TRUE(
      c.send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto head = c.read_response(5s, /*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("content-length"), "15");
  auto get = c.read_response();  // would be garbled if HEAD had sent a body
  ASSERT_TRUE(get);
  EXPECT_EQ(get->body, R"({"status":"ok"})");
}

TEST_F(E2E, RequestIdIsEchoedOrGenerated) {
  auto given = http_request(port(), "GET", "/healthz", "X-Request-Id: abc-123_x.y:z\r\n");
  EXPECT_EQ(given->header("x-request-id"), "abc-123_x.y:z");
  auto generated = http_request(port(), "GET", "/healthz");
  EXPECT_EQ(generated->header("x-request-id").size(), 24u);
  auto other = http_request(port(), "GET", "/healthz");
  EXPECT_NE(other->header("x-request-id"), generated->header("x-request-id"));
  auto unsafe = http_request(port(), "GET", "/healthz", "X-Request-Id: <script>\r\n");
  EXPECT_NE(unsafe->header("x-request-id"), "<script>");  // replaced, not echoed
  EXPECT_EQ(unsafe->header("x-request-id").size(), 24u);
}

TEST_F(E2E, OversizedHeadersGet431) {
  auto r = http_request(port(), "GET", "/healthz", "X-Big: " + std::string(8000, 'a') + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(problem(*r).at("type").as_string(), "urn:liftoff:problem:headers-too-large");
}

TEST_F(E2E, OversizedBodyGets413) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c.closed_by_peer(2s));

  RawConnection chunked(port());
  std::string big_chunk = std::string(70 * 1024, 'x');
  char size_hex[16];
  std::snprintf(size_hex, sizeof size_hex, "%zx", big_chunk.size());
  ASSERT_TRUE(
      chunked.send("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                   std::string(size_hex) + "\r\n" + big_chunk + "\r\n0\r\n\r\n"));
  auto r2 = chunked.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 413);
}

TEST_F(E2E, StalledClientGets408) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));  // never finishes the header
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);  // the request timeout, not a parse error: the header was valid
  EXPECT_TRUE(c.closed_by_peer(2s));
}

TEST_F(E2E, SlowBodyGets408) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part"));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
}

TEST_F(E2E, IdleKeepAliveConnectionIsClosedQuietly) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.read_response());
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed_by_peer(5s));  // no 408 for a connection that sent nothing
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1200ms);
}

// A connection accepted just as another closes can be woken as readable with nothing to read
// (seen with asio's epoll reactor: 5-6 of these 80 connections, every run, before the fix). It is
// still idle then: a request sent after the request timeout (700 ms here) but within the idle
// timeout (1500 ms) must be served, not answered 408.
TEST_F(E2E, ANewConnectionIsIdleUntilItsFirstByte) {
  using Clock = std::chrono::steady_clock;
  std::vector<std::pair<std::unique_ptr<RawConnection>, Clock::time_point>> waiting;
  for (int round = 0; round < 20; ++round) {
    auto closing = std::make_unique<RawConnection>(port());
    ASSERT_TRUE(closing->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(closing->read_response());
    closing.reset();
    for (int i = 0; i < 4; ++i)
      waiting.emplace_back(std::make_unique<RawConnection>(port()), Clock::now());
  }
  std::this_thread::sleep_for(850ms);  // the request timeout and one sweep of deadlines
  auto sent = Clock::now();
  for (auto& [c, opened] : waiting)
    ASSERT_TRUE(c->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  int due = 0, served = 0;
  for (auto& [c, opened] : waiting) {
    auto r = c->read_response();
    if (sent - opened > 1300ms) continue;  // a slow machine: the idle timeout may have closed it
    ++due;
    if (r && r->status == 200) ++served;
  }
  EXPECT_GT(due, 0);
  EXPECT_EQ(served, due);
}

TEST_F(E2E, MalformedRequestsGet400) {
  const std::vector<std::string> bad = {
      "GARBAGE\r\n\r\n",
      "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET /he%zzlthz HTTP/1.1\r\nHost: x\r\n\r\n",
      std::string("GET /healthz HTTP/1.1\r\nHost: \x01\x02\r\n\r\n"),
  };
  for (const auto& request : bad) {
    RawConnection c(port());
    ASSERT_TRUE(c.send(request));
    auto r = c.read_response();
    ASSERT_TRUE(r) << request;
    EXPECT_EQ(r->status, 400) << request;
    EXPECT_EQ(problem(*r).at("type").as_string(), "urn:liftoff:problem:bad-request") << request;
  }
}

TEST_F(E2E, TruncatedBodyGets400) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nshort"));
  c.shutdown_write();
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

TEST_F(E2E, ExpectContinueIsAnswered) {
  RawConnection c(port());
  ASSERT_TRUE(c.send(
      "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  // The client waits for the interim answer before it sends the body, as curl does.
  auto interim = c.read_head(std::chrono::steady_clock::now() + 5s);
  ASSERT_TRUE(interim) << "no 100 Continue before the body";
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
}

// ---- identity: signup, login, sessions ----

TEST_F(E2E, SignupReturnsAUserAndATokenThatAuthenticates) {
  auto email = unique_email("Ada");
  auto r = post_json(port(), "/v1/auth/signup", signup_body(email));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  auto body = boost::json::parse(r->body).as_object();
  std::string token(body.at("token").as_string());
  EXPECT_EQ(token.rfind("ls_", 0), 0u);
  auto user = body.at("user").as_object();
  std::string lower = email;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  EXPECT_EQ(user.at("email").as_string(), lower);  // normalized
  EXPECT_EQ(user.at("name").as_string(), "Ada Lovelace");
  EXPECT_FALSE(body.at("expires_at").as_string().empty());
  EXPECT_FALSE(body.contains("password_hash"));

  auto me = with_token(port(), "GET", "/v1/me", token);
  ASSERT_TRUE(me);
  ASSERT_EQ(me->status, 200) << me->body;
  auto me_body = boost::json::parse(me->body).as_object();
  EXPECT_EQ(me_body.at("id"), user.at("id"));
  EXPECT_TRUE(me_body.at("memberships").as_array().empty());
}

TEST_F(E2E, DuplicateEmailIs409WhateverItsCase) {
  auto email = unique_email("dup");
  ASSERT_EQ(post_json(port(), "/v1/auth/signup", signup_body(email))->status, 201);
  std::string upper = email;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  auto again = post_json(port(), "/v1/auth/signup", signup_body("  " + upper));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409);
  EXPECT_EQ(problem(*again).at("type").as_string(), "urn:liftoff:problem:conflict");
}

TEST_F(E2E, InvalidSignupNamesEveryFailingField) {
  auto r = post_json(port(), "/v1/auth/signup", signup_body("not-an-email", "short", ""));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 422) << r->body;
  std::set<std::string> fields;
  auto details = problem(*r);  // named: the loop must not range over a temporary's member
  for (const auto& e : details.at("errors").as_array())
    fields.emplace(e.as_object().at("field").as_string());
  EXPECT_EQ(fields, (std::set<std::string>{"email", "password", "name"}));

  auto common =
      post_json(port(), "/v1/auth/signup", signup_body(unique_email("common"), "Password1234"));
  EXPECT_EQ(common->status, 422);
  EXPECT_NE(common->body.find("too common"), std::string::npos);
}

TEST_F(E2E, MalformedSignupBodiesGetPrecise4xx) {
  auto unknown = post_json(
      port(), "/v1/auth/signup",
      R"({"email":"a@example.com","password":"a sturdy passphrase","name":"A","admin":true})");
  EXPECT_EQ(unknown->status, 400);
  EXPECT_NE(unknown->body.find("admin"), std::string::npos);
  auto wrong_type = post_json(port(), "/v1/auth/signup",
                              R"({"email":5,"password":"a sturdy passphrase","name":"A"})");
  EXPECT_EQ(wrong_type->status, 422);
  EXPECT_EQ(post_json(port(), "/v1/auth/signup", R"({"email":)")->status, 400);
  EXPECT_EQ(post_json(port(), "/v1/auth/signup", "[1]")->status, 422);
  EXPECT_EQ(post_json(port(), "/v1/auth/signup", "{\"email\":\"\xff\"}")->status, 400);
  auto form =
      http_request(port(), "POST", "/v1/auth/signup", "Content-Type: text/plain\r\n", "email=x");
  EXPECT_EQ(form->status, 415);
}

TEST_F(E2E, NamesWithSqlAndUnicodeTricksAreStoredAsData) {
  std::string name =
      "Robert'); DROP TABLE users;-- \u202e\u0645\u0631\u062d\u0628\u0627 \U0001F680";
  auto r = post_json(port(), "/v1/auth/signup",
                     signup_body(unique_email("bobby"), "a sturdy passphrase", name));
  ASSERT_EQ(r->status, 201) << r->body;
  std::string token(boost::json::parse(r->body).as_object().at("token").as_string());
  auto me = with_token(port(), "GET", "/v1/me", token);
  EXPECT_EQ(boost::json::parse(me->body).as_object().at("name").as_string(), name);
}

TEST_F(E2E, LoginFailuresAreIndistinguishable) {
  auto email = unique_email("login");
  ASSERT_EQ(post_json(port(), "/v1/auth/signup", signup_body(email))->status, 201);
  auto wrong_password = post_json(
      port(), "/v1/auth/login", R"({"email":")" + email + R"(","password":"not the passphrase"})");
  auto unknown_user =
      post_json(port(), "/v1/auth/login",
                R"({"email":"nobody.)" + email + R"(","password":"a sturdy passphrase"})");
  ASSERT_TRUE(wrong_password && unknown_user);
  EXPECT_EQ(wrong_password->status, 401);
  EXPECT_EQ(unknown_user->status, 401);
  EXPECT_EQ(problem(*wrong_password).at("detail"), problem(*unknown_user).at("detail"));
  EXPECT_EQ(wrong_password->header("www-authenticate"), "Bearer");

  auto ok = post_json(port(), "/v1/auth/login",
                      R"({"email":")" + email + R"(","password":"a sturdy passphrase"})");
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_FALSE(boost::json::parse(ok->body).as_object().at("token").as_string().empty());
  // The token is a secret: no browser or proxy keeps the answer. A GET answer of the user's own
  // may be kept by the client (never shared) and is revalidated before reuse.
  EXPECT_EQ(ok->header("cache-control"), "no-store");
  auto token = std::string(boost::json::parse(ok->body).as_object().at("token").as_string());
  auto me = with_token(port(), "GET", "/v1/me", token);
  ASSERT_EQ(me->status, 200);
  EXPECT_EQ(me->header("cache-control"), "private, no-cache");
}

TEST_F(E2E, MissingOrGuessedTokensAre401) {
  auto none = http_request(port(), "GET", "/v1/me");
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->header("www-authenticate"), "Bearer");
  EXPECT_EQ(with_token(port(), "GET", "/v1/me", "ls_" + std::string(43, 'A'))->status, 401);
  EXPECT_EQ(with_token(port(), "GET", "/v1/me", "garbage")->status, 401);
  EXPECT_EQ(http_request(port(), "GET", "/v1/me", "Authorization: Basic dXNlcjpwYXNz\r\n")->status,
            401);
}

TEST_F(E2E, SessionsCanBeListedRevokedAndLoggedOut) {
  auto email = unique_email("sessions");
  auto first = post_json(port(), "/v1/auth/signup", signup_body(email));
  std::string first_token(boost::json::parse(first->body).as_object().at("token").as_string());
  std::string first_id(boost::json::parse(first->body).as_object().at("session_id").as_string());
  auto second = post_json(port(), "/v1/auth/login",
                          R"({"email":")" + email + R"(","password":"a sturdy passphrase"})");
  std::string second_token(boost::json::parse(second->body).as_object().at("token").as_string());

  auto list = with_token(port(), "GET", "/v1/sessions", second_token);
  ASSERT_EQ(list->status, 200) << list->body;
  auto sessions = boost::json::parse(list->body).as_object().at("sessions").as_array();
  ASSERT_EQ(sessions.size(), 2u);
  int current = 0;
  for (const auto& s : sessions) current += s.as_object().at("current").as_bool() ? 1 : 0;
  EXPECT_EQ(current, 1);

  EXPECT_EQ(with_token(port(), "DELETE", "/v1/sessions/" + first_id, second_token)->status, 204);
  EXPECT_EQ(with_token(port(), "GET", "/v1/me", first_token)->status, 401);  // revoked
  EXPECT_EQ(with_token(port(), "DELETE", "/v1/sessions/" + first_id, second_token)->status,
            404);  // already gone
  EXPECT_EQ(with_token(port(), "DELETE", "/v1/sessions/not-a-uuid", second_token)->status, 404);

  // Another user's session id is a 404 too, never a revocation.
  auto other = post_json(port(), "/v1/auth/signup", signup_body(unique_email("other")));
  std::string other_token(boost::json::parse(other->body).as_object().at("token").as_string());
  std::string other_id(boost::json::parse(other->body).as_object().at("session_id").as_string());
  EXPECT_EQ(with_token(port(), "DELETE", "/v1/sessions/" + other_id, second_token)->status, 404);
  EXPECT_EQ(with_token(port(), "GET", "/v1/me", other_token)->status, 200);

  EXPECT_EQ(post_json(port(), "/v1/auth/logout", "", second_token)->status, 204);
  EXPECT_EQ(with_token(port(), "GET", "/v1/me", second_token)->status, 401);
}

// A request only notes its session's use; the server writes the notes in batches
// (credential_use_flush, 100 ms in these tests) instead of a write per request.
TEST_F(E2E, SessionUseIsRecordedInBatches) {
  auto user = sign_up(port(), "lastseen");
  db::Params who(*db::Uuid::parse(user.id));
  auto aged = count_of(
      "WITH aged AS (UPDATE sessions SET last_seen_at = now() - interval '2 minutes' "
      "WHERE user_id = $1 RETURNING 1) SELECT count(*) FROM aged",
      who);
  ASSERT_EQ(aged, 1);
  auto recent = [&] {
    return count_of(
        "SELECT count(*) FROM sessions WHERE user_id = $1 "
        "AND last_seen_at > now() - interval '1 minute'",
        who);
  };
  EXPECT_EQ(recent(), 0);
  auto me = with_token(port(), "GET", "/v1/me", user.token);  // not cached yet: read, and noted
  ASSERT_TRUE(me);
  ASSERT_EQ(me->status, 200);
  EXPECT_TRUE(eventually([&] { return recent() == 1; }));
}

// A session past its absolute lifetime (session_ttl) or unused for longer than session_idle is
// refused like a revoked one; others of the same moment are not affected. (Aged in the database
// before first use: the cache holds no session it has not checked.)
TEST_F(E2E, ExpiredAndIdleSessionsAreRefused) {
  auto expired = sign_up(port(), "expired");
  auto idle = sign_up(port(), "idle");
  auto live = sign_up(port(), "live");
  auto age = [](const std::string& set, const TestUser& user) {
    return count_of("WITH aged AS (UPDATE sessions SET " + set +
                        " WHERE user_id = $1 RETURNING 1) SELECT count(*) FROM aged",
                    db::Params(*db::Uuid::parse(user.id)));
  };
  ASSERT_EQ(age("expires_at = now() - interval '1 second'", expired), 1);
  ASSERT_EQ(age("last_seen_at = now() - interval '8 days'", idle), 1);  // session_idle: 7 days
  for (const auto* gone : {&expired, &idle}) {
    auto r = with_token(port(), "GET", "/v1/me", gone->token);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << gone->email;
    EXPECT_EQ(r->header("www-authenticate"), "Bearer");
  }
  EXPECT_EQ(with_token(port(), "GET", "/v1/me", live.token)->status, 200);
  // Logging in again gives a session that works.
  auto again = post_json(port(), "/v1/auth/login",
                         R"({"email":")" + idle.email + R"(","password":"a sturdy passphrase"})");
  ASSERT_EQ(status(again), 200);
  std::string token(json_of(*again).at("token").as_string());
  EXPECT_EQ(with_token(port(), "GET", "/v1/me", token)->status, 200);
}

// Raised Argon2id parameters (password_hash_ops here) take effect for existing users at their next
// successful login: the stored hash is replaced, and the password still works.
TEST(E2EServer, RaisedHashParametersRehashThePasswordAtTheNextLogin) {
  OwnServer cheap;  // t=1, m=64 KiB
  auto email = unique_email("rehash");
  auto signup = post_json(cheap.port(), "/v1/auth/signup", signup_body(email));
  ASSERT_EQ(status(signup), 201);
  db::Params user(*db::Uuid::parse(json_of(*signup).at("user").at("id").as_string()));
  auto hashed_with = [&](const std::string& parameters) {
    return count_of(
        "SELECT count(*) FROM users WHERE id = $1 AND password_hash LIKE '$argon2id$v=19$" +
            parameters + "$%'",
        user);
  };
  ASSERT_EQ(hashed_with("m=64,t=1,p=1"), 1);
  OwnServer raised(Server::Env{{"LIFTOFF_PASSWORD_HASH_OPS", "2"}});
  auto login = [&](unsigned short port, const std::string& password) {
    return status(post_json(port, "/v1/auth/login",
                            R"({"email":")" + email + R"(","password":")" + password + "\"}"));
  };
  EXPECT_EQ(login(raised.port(), "not the passphrase"), 401);
  EXPECT_EQ(hashed_with("m=64,t=1,p=1"), 1);  // a failed login changes nothing
  EXPECT_EQ(login(raised.port(), "a sturdy passphrase"), 200);
  EXPECT_EQ(hashed_with("m=64,t=2,p=1"), 1);
  EXPECT_EQ(login(raised.port(), "a sturdy passphrase"), 200);
}

TEST_F(E2E, PasswordChangeRevokesEveryOtherSession) {
  auto email = unique_email("change");
  auto first = post_json(port(), "/v1/auth/signup", signup_body(email));
  std::string keep(boost::json::parse(first->body).as_object().at("token").as_string());
  auto second = post_json(port(), "/v1/auth/login",
                          R"({"email":")" + email + R"(","password":"a sturdy passphrase"})");
  std::string other(boost::json::parse(second->body).as_object().at("token").as_string());

  auto wrong = post_json(
      port(), "/v1/auth/password",
      R"({"current_password":"not it at all","new_password":"a brand new passphrase"})", keep);
  EXPECT_EQ(wrong->status, 422);
  EXPECT_NE(wrong->body.find("current_password"), std::string::npos);
  auto weak =
      post_json(port(), "/v1/auth/password",
                R"({"current_password":"a sturdy passphrase","new_password":"short"})", keep);
  EXPECT_EQ(weak->status, 422);

  auto changed = post_json(
      port(), "/v1/auth/password",
      R"({"current_password":"a sturdy passphrase","new_password":"a brand new passphrase"})",
      keep);
  ASSERT_EQ(changed->status, 204) << changed->body;
  EXPECT_EQ(with_token(port(), "GET", "/v1/me", keep)->status, 200);   // this session stays
  EXPECT_EQ(with_token(port(), "GET", "/v1/me", other)->status, 401);  // the others are revoked
  EXPECT_EQ(post_json(port(), "/v1/auth/login",
                      R"({"email":")" + email + R"(","password":"a sturdy passphrase"})")
                ->status,
            401);
  EXPECT_EQ(post_json(port(), "/v1/auth/login",
                      R"({"email":")" + email + R"(","password":"a brand new passphrase"})")
                ->status,
            200);
}

TEST_F(E2E, RepeatedLoginFailuresSlowDownThenLockTheAccount) {
  auto email = unique_email("guess");
  ASSERT_EQ(post_json(port(), "/v1/auth/signup", signup_body(email))->status, 201);
  std::string wrong = R"({"email":")" + email + R"(","password":"guess number n"})";
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(post_json(port(), "/v1/auth/login", wrong)->status, 401) << i;
  EXPECT_GE(std::chrono::steady_clock::now() - started,
            3500ms);  // 0 + 250 + 500 + 1000 + 2000 ms of delay
  auto locked = post_json(port(), "/v1/auth/login",
                          R"({"email":")" + email + R"(","password":"a sturdy passphrase"})");
  ASSERT_TRUE(locked);
  EXPECT_EQ(locked->status, 429);
  auto retry_after =
      std::stoi(locked->header("retry-after"));  // a 30 s lock, begun at the fifth failure
  EXPECT_GE(retry_after, 25);
  EXPECT_LE(retry_after, 30);
  EXPECT_EQ(problem(*locked).at("type").as_string(), "urn:liftoff:problem:too-many-requests");
}

TEST_F(E2E, ARevokedSessionIsRefusedByAnotherProcessBeforeItsCacheExpires) {
  Server other(
      Server::Env{{"LIFTOFF_SESSION_CACHE_TTL", "30s"}});  // a long cache: only NOTIFY can evict
  ASSERT_TRUE(other.wait_ready()) << other.process->log();
  auto signup = post_json(port(), "/v1/auth/signup", signup_body(unique_email("twoprocs")));
  std::string token(boost::json::parse(signup->body).as_object().at("token").as_string());
  EXPECT_EQ(with_token(other.port, "GET", "/v1/me", token)->status, 200);  // now cached there
  EXPECT_EQ(with_token(other.port, "GET", "/v1/me", token)->status, 200);

  EXPECT_EQ(post_json(port(), "/v1/auth/logout", "", token)->status,
            204);  // revoked on this process
  // Well before the other process's 30 s cache would forget it: only the NOTIFY can tell it.
  EXPECT_TRUE(eventually(
      [&] {
        auto r = with_token(other.port, "GET", "/v1/me", token);
        return r && r->status == 401;
      },
      20s));
  other.process->signal(SIGTERM);
  EXPECT_EQ(other.process->wait(15s), 0) << other.process->log();
}

TEST(E2EServer, MaxConnectionsGets503WithRetryAfter) {
  Server server(Server::Env{{"LIFTOFF_MAX_CONNECTIONS", "2"}, {"LIFTOFF_IDLE_TIMEOUT", "10s"}});
  ASSERT_TRUE(server.wait_ready()) << server.process->log();  // readiness opens no connection
  RawConnection a(server.port), b(server.port);
  ASSERT_TRUE(a.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(b.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(a.read_response());
  ASSERT_TRUE(b.read_response());
  auto third = http_request(server.port, "GET", "/healthz");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 503);
  EXPECT_EQ(third->header("retry-after"), "1");
  EXPECT_EQ(problem(*third).at("type").as_string(), "urn:liftoff:problem:unavailable");
  server.process->signal(SIGTERM);
  EXPECT_EQ(server.process->wait(15s), 0);
}

// A child holds nothing of the test binary's but its standard streams. An inherited socket (Asio's
// are not close-on-exec) once kept a proxied connection open after its TcpProxy had cut it: a
// server started after another's listeners connected held their descriptors, and the first never
// learnt that its listener was gone.
TEST(Harness, AChildInheritsOnlyItsStandardStreams) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);  // not close-on-exec
  int high = ::fcntl(pair[0], F_DUPFD, 100);                  // far from what ls opens itself
  ASSERT_GE(high, 100);
  Process ls({"/bin/ls", "/proc/self/fd"}, {}, log_path("child-fds"));
  EXPECT_EQ(ls.wait(30s), 0);
  std::set<std::string> listed;
  std::istringstream lines(ls.log());
  for (std::string line; std::getline(lines, line);) listed.insert(line);
  // Its standard streams, and the directory ls itself opened to list them.
  EXPECT_EQ(listed, (std::set<std::string>{"0", "1", "2", "3"})) << ls.log();
  EXPECT_FALSE(listed.contains(std::to_string(high)));
  ::close(high);
  ::close(pair[0]);
  ::close(pair[1]);
}

TEST(E2EServer, InvalidConfigurationExitsWith2NamingTheKey) {
  Server server(Server::Env{{"LIFTOFF_THREADS", "lots"}});
  EXPECT_EQ(server.process->wait(10s), 2);
  EXPECT_NE(server.process->log().find("threads"), std::string::npos) << server.process->log();
}

TEST(E2EServer, StartupLogsConfigurationWithSecretsMasked) {
  Server server;
  ASSERT_TRUE(server.wait_ready());
  auto health = http_request(server.port, "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  server.process->signal(SIGINT);
  EXPECT_EQ(server.process->wait(15s), 0);
  auto log = server.process->log();
  EXPECT_NE(log.find("config database_url = postgresql://liftoff:***@"), std::string::npos) << log;
  auto url = test_database_url();
  auto password = url.substr(url.find(':', 14) + 1, url.find('@') - url.find(':', 14) - 1);
  EXPECT_EQ(log.find(password), std::string::npos);
  EXPECT_NE(log.find(R"("route":"/healthz","status":200)"), std::string::npos);  // access log
}

// W3C Trace Context: a request's traceparent is continued (its trace, its sampling decision, a span
// of the server's own), answered in traceresponse, and named in problems and the access log; a
// malformed one starts a new trace rather than failing the request.
TEST(E2EServer, TraceContextIsContinuedAnsweredAndLogged) {
  Server server(Server::Env{{"LIFTOFF_TRACE_SAMPLE_RATIO", "0"}});
  ASSERT_TRUE(server.wait_ready()) << server.process->log();
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  auto me = http_request(server.port, "GET", "/v1/me",
                         "traceparent: 00-" + trace +
                             "-00f067aa0ba902b7-01\r\n"
                             "tracestate: congo=t61rcWkgMzE\r\n");
  ASSERT_TRUE(me);
  EXPECT_EQ(me->status, 401);
  auto answered = core::parse_traceparent(me->header("traceresponse"));
  ASSERT_TRUE(answered) << me->header("traceresponse");
  EXPECT_EQ(answered->trace_id_hex(), trace);
  EXPECT_NE(answered->span_id_hex(), "00f067aa0ba902b7") << "the server's span is its own";
  EXPECT_TRUE(answered->sampled()) << "the caller's decision holds over the ratio of 0";
  EXPECT_EQ(boost::json::parse(me->body).at("trace_id"), trace.c_str());

  for (const std::string& bad :
       std::vector<std::string>{"00-" + trace + "-00f067aa0ba902b7-1", "junk",
                                "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}) {
    auto fresh = http_request(server.port, "GET", "/healthz", "traceparent: " + bad + "\r\n");
    ASSERT_TRUE(fresh);
    EXPECT_EQ(fresh->status, 200) << bad;
    auto started = core::parse_traceparent(fresh->header("traceresponse"));
    ASSERT_TRUE(started) << bad;
    EXPECT_NE(started->trace_id_hex(), trace);
    EXPECT_FALSE(started->sampled()) << "a new trace, at the ratio of 0";
  }

  server.process->signal(SIGINT);
  EXPECT_EQ(server.process->wait(15s), 0);
  auto log = server.process->log();
  EXPECT_NE(log.find(R"("trace_id":")" + trace + R"(","span_id":")" + answered->span_id_hex()),
            std::string::npos)
      << log;
}

// Slow statements: a login whose session insert waits on a lock the test holds (as a migration's
// would) is logged as slow by its name, node, time and SQL, never with its values, counted by name,
// and explained: its plan follows in the log.
TEST(E2EServer, SlowStatementsAreLoggedWithoutTheirValuesAndExplained) {
  Server server(Server::Env{{"LIFTOFF_SLOW_STATEMENT_THRESHOLD", "150ms"}});
  ASSERT_TRUE(server.wait_ready()) << server.process->log();
  auto email = unique_email("slow");
  const std::string password = "a sturdy passphrase";
  ASSERT_EQ(http_request(server.port, "POST", "/v1/auth/signup",
                         "Content-Type: application/json\r\n", signup_body(email, password))
                ->status,
            201);
  const std::string counted = R"(db_slow_statements_total{statement="identity.insert_session"})";
  EXPECT_EQ(metric(server.port, counted), -1);

  SqlSession lock;
  ASSERT_TRUE(lock.run("BEGIN; LOCK TABLE sessions IN SHARE MODE"));  // new sessions wait
  // Released 300 ms after the login's insert is seen waiting on the lock: a fixed pause let a login
  // slowed by a loaded machine (its password check) arrive after the lock was gone.
  std::thread release([&lock] {
    for (int i = 0; i < 400; ++i) {
      if (count_of("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
                   "'sessions'::regclass") > 0)
        break;
      std::this_thread::sleep_for(25ms);
    }
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(lock.run("COMMIT"));
  });
  auto login = http_request(
      server.port, "POST", "/v1/auth/login", "Content-Type: application/json\r\n",
      boost::json::serialize(boost::json::object{{"email", email}, {"password", password}}));
  release.join();
  ASSERT_TRUE(login);
  EXPECT_EQ(login->status, 200) << login->body;
  EXPECT_EQ(metric(server.port, counted), 1);

  auto line_of = [&](const std::string& start) -> std::string {
    auto log = server.process->log();
    auto at = log.find(start);
    return at == std::string::npos ? "" : log.substr(at, log.find('\n', at) - at);
  };
  std::string plan;
  for (int i = 0; i < 100 && plan.empty(); ++i) {
    plan = line_of(R"(slow statement plan {"statement":"identity.insert_session")");
    if (plan.empty()) std::this_thread::sleep_for(50ms);
  }
  auto slow = line_of(R"(slow statement {"statement":"identity.insert_session")");
  ASSERT_FALSE(slow.empty()) << server.process->log();
  auto logged = boost::json::parse(slow.substr(slow.find('{'))).as_object();
  EXPECT_EQ(logged.at("node"), "primary");
  EXPECT_GE(logged.at("ms").to_number<double>(), 150.0);
  EXPECT_EQ(logged.at("params"), 6);
  EXPECT_NE(logged.at("sql").as_string().find("INSERT INTO sessions"), std::string::npos);
  ASSERT_FALSE(plan.empty()) << server.process->log();
  auto explained = boost::json::parse(plan.substr(plan.find('{'))).as_object();
  EXPECT_EQ(explained.at("plan").at(0).at("Plan").at("Node Type"), "ModifyTable") << plan;
  // Neither line holds a value the statement ran with.
  for (const auto& line : {slow, plan}) {
    EXPECT_EQ(line.find(email), std::string::npos) << line;
    EXPECT_EQ(line.find("127.0.0.1"), std::string::npos) << line;
  }
  server.process->signal(SIGTERM);
  EXPECT_EQ(server.process->wait(15s), 0);
}

TEST(E2EServer, BehindATrustedProxyTheForwardedClientIsThrottledNotTheProxy) {
  Server server(Server::Env{{"LIFTOFF_TRUSTED_PROXIES", "127.0.0.1"}});
  ASSERT_TRUE(server.wait_ready()) << server.process->log();
  auto login = [&](const std::string& email, const std::string& client) {
    return http_request(
        server.port, "POST", "/v1/auth/login",
        "Content-Type: application/json\r\nX-Forwarded-For: 198.51.100.1, " + client + "\r\n",
        R"({"email":")" + email + R"(","password":"not a real password"})");
  };
  // 20 failures for 20 different accounts (no per-account delay) from one client lock that client.
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(login("nobody" + std::to_string(i) + "@example.com", "203.0.113.7")->status, 401);
  EXPECT_EQ(login("someone@example.com", "203.0.113.7")->status, 429);
  EXPECT_EQ(login("someone@example.com", "203.0.113.8")->status,
            401);  // another client behind the same proxy
  server.process->signal(SIGTERM);
  EXPECT_EQ(server.process->wait(15s), 0);
}

TEST(E2EServer, ParallelGuessesAreCountedBeforeTheirPasswordsAreChecked) {
  // Issue 19: the throttle counted failures after hashing, so guesses sent at once all passed its
  // check. Each client here is its own address behind a trusted proxy.
  Server server(Server::Env{{"LIFTOFF_TRUSTED_PROXIES", "127.0.0.1"}});
  ASSERT_TRUE(server.wait_ready()) << server.process->log();
  auto as_client = [](const std::string& client, const std::string& token = "") {
    std::string headers = "Content-Type: application/json\r\nX-Forwarded-For: " + client + "\r\n";
    if (!token.empty()) headers += "Authorization: Bearer " + token + "\r\n";
    return headers;
  };
  auto email = unique_email("parallel");
  auto signup = http_request(server.port, "POST", "/v1/auth/signup", as_client("203.0.113.30"),
                             signup_body(email));
  ASSERT_EQ(signup->status, 201);

  std::vector<int> statuses(10);
  std::vector<std::thread> guesses;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    guesses.emplace_back([&, i] {
      auto r = http_request(
          server.port, "POST", "/v1/auth/login", as_client("203.0.113." + std::to_string(40 + i)),
          R"({"email":")" + email + R"(","password":"guess )" + std::to_string(i) + "\"}");
      statuses[i] = r ? r->status : 0;
    });
  }
  for (auto& g : guesses) g.join();
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 401), 5);  // the account's limit
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 429), 5);

  // Changing the password checks the current one under the same throttle: a stolen session is
  // not a way around it.
  auto other = unique_email("change-guess");
  auto created = http_request(server.port, "POST", "/v1/auth/signup", as_client("203.0.113.60"),
                              signup_body(other));
  ASSERT_EQ(created->status, 201);
  std::string token(boost::json::parse(created->body).as_object().at("token").as_string());
  auto change = [&](const std::string& current) {
    return http_request(
        server.port, "POST", "/v1/auth/password", as_client("203.0.113.61", token),
        R"({"current_password":")" + current + R"(","new_password":"a brand new passphrase"})");
  };
  for (int i = 0; i < 5; ++i) EXPECT_EQ(change("guess " + std::to_string(i))->status, 422) << i;
  auto locked = change("a sturdy passphrase");
  EXPECT_EQ(locked->status, 429) << locked->body;
  EXPECT_FALSE(locked->header("retry-after").empty());
  server.process->signal(SIGTERM);
  EXPECT_EQ(server.process->wait(15s), 0);
}

TEST(E2EServer, OneAddressHoldsOnlyItsShareOfPasswordHashing) {
  // Issue 19: signups from one address could keep every Argon2 slot busy. With a share of one
  // and hashes slow enough to overlap, that address's concurrent signups beyond the first are
  // refused at once while another address's signup goes through.
  Server server(Server::Env{{"LIFTOFF_TRUSTED_PROXIES", "127.0.0.1"},
                            {"LIFTOFF_PASSWORD_HASH_PER_CLIENT", "1"},
                            {"LIFTOFF_PASSWORD_HASH_OPS", "3"},
                            {"LIFTOFF_PASSWORD_HASH_MEMORY", "64m"},
                            {"LIFTOFF_REQUEST_TIMEOUT", "10s"}});
  ASSERT_TRUE(server.wait_ready()) << server.process->log();
  auto signup = [&](const std::string& client, const std::string& tag) {
    auto r = http_request(server.port, "POST", "/v1/auth/signup",
                          "Content-Type: application/json\r\nX-Forwarded-For: " + client + "\r\n",
                          signup_body(unique_email(tag)));
    return r ? r->status : 0;
  };
  std::vector<int> from_one(4);
  int from_other = 0;
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < from_one.size(); ++i)
    threads.emplace_back([&, i] { from_one[i] = signup("203.0.113.70", "share"); });
  threads.emplace_back([&] {
    std::this_thread::sleep_for(50ms);
    from_other = signup("203.0.113.71", "other");
  });
  for (auto& t : threads) t.join();
  EXPECT_GE(std::count(from_one.begin(), from_one.end(), 201), 1);
  EXPECT_GE(std::count(from_one.begin(), from_one.end(), 429), 1);
  EXPECT_EQ(std::count(from_one.begin(), from_one.end(), 201) +
                std::count(from_one.begin(), from_one.end(), 429),
            4);
  EXPECT_EQ(from_other, 201);
  server.process->signal(SIGTERM);
  EXPECT_EQ(server.process->wait(15s), 0);
}

TEST(E2EServer, EmbeddedPostgresOnABusyPortSaysSo) {
  auto dir = (run_dir() / "busy").string();
  std::filesystem::create_directory(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all |
                                        std::filesystem::perms::group_exec |
                                        std::filesystem::perms::others_exec);
  auto busy = std::to_string(test_postgres().options().port);  // the test cluster holds it
  Process start({LIFTOFF_BINARY, "pg", "start", "--data-dir", dir, "--embedded-pg-port", busy}, {},
                log_path("busy-pg"));
  EXPECT_EQ(start.wait(60s), 1) << start.log();
  EXPECT_NE(start.log().find("port " + busy + " on 127.0.0.1 is in use"), std::string::npos)
      << start.log();
}

// A SIGTERM as soon as the server says it is ready is a graceful shutdown too: the server catches
// it from before it reports ready (it used to end the process with 143 until run() began).
TEST(E2EServer, ASigtermRightAfterReadyShutsDownGracefully) {
  for (int i = 0; i < 3; ++i) {
    Server server;
    ASSERT_TRUE(server.wait_ready()) << server.process->log();
    server.process->signal(SIGTERM);
    EXPECT_EQ(server.process->wait(15s), 0) << server.process->log();
  }
}

// Every shard has the schema of the control database: `migrate` applies and reports each, a
// server migrates them all when it starts (auto_migrate).
TEST(E2EServer, MigrateStatusAndUpCoverEveryShard) {
  auto shard = fresh_database("liftoff_shard_migrations");
  std::map<std::string, std::string> env = {{"LIFTOFF_DATABASE_URL", test_database_url()},
                                            {"LIFTOFF_SHARDS", "eu-1=" + shard}};
  const auto known = std::to_string(db::embedded_migrations().back().version);
  Process before({LIFTOFF_BINARY, "migrate", "status"}, env, log_path("migrate-status-shards"));
  EXPECT_EQ(before.wait(30s), 0) << before.log();
  EXPECT_NE(before.log().find("control database and shard main:"), std::string::npos)
      << before.log();
  EXPECT_NE(before.log().find("shard eu-1:"), std::string::npos) << before.log();
  EXPECT_NE(before.log().find("schema version 0 of " + known + " (" + known + " pending)"),
            std::string::npos)
      << before.log();

  Process up({LIFTOFF_BINARY, "migrate", "up"}, env, log_path("migrate-up-shards"));
  EXPECT_EQ(up.wait(60s), 0) << up.log();
  EXPECT_NE(up.log().find("applied " + known + " migration(s)"), std::string::npos) << up.log();
  Process after({LIFTOFF_BINARY, "migrate", "status"}, env, log_path("migrate-status-shards"));
  EXPECT_EQ(after.wait(30s), 0) << after.log();
  const std::string current = "schema version " + known + " of " + known + " (0 pending)";
  auto first = after.log().find(current);
  ASSERT_NE(first, std::string::npos) << after.log();
  EXPECT_NE(after.log().find(current, first + 1), std::string::npos) << after.log();

  // A server brings a new shard's schema up to date before it serves.
  auto second = fresh_database("liftoff_shard_serve");
  Server server({{"LIFTOFF_SHARDS", "eu-1=" + shard + ";eu-2=" + second}});
  ASSERT_TRUE(server.wait_ready()) << server.process->log();
  server.process->signal(SIGTERM);
  EXPECT_EQ(server.process->wait(15s), 0) << server.process->log();
  env["LIFTOFF_SHARDS"] = "eu-2=" + second;
  Process migrated({LIFTOFF_BINARY, "migrate", "status"}, env, log_path("migrate-status-shards"));
  EXPECT_EQ(migrated.wait(30s), 0) << migrated.log();
  first = migrated.log().find(current);
  ASSERT_NE(first, std::string::npos) << migrated.log();
  EXPECT_NE(migrated.log().find(current, first + 1), std::string::npos) << migrated.log();
}

// `liftoff shard status` reads the directory: each shard's organizations, size and schema, and an
// organization the directory places on a shard the configuration does not know is a problem.
TEST(E2EServer, ShardStatusReportsEachShardFromTheDirectory) {
  auto control = fresh_database("liftoff_shard_status");
  auto shard = fresh_database("liftoff_shard_status_eu");
  // Reserved: every new org goes to main.
  Server server({{"LIFTOFF_DATABASE_URL", control},
                 {"LIFTOFF_SHARDS", "eu-1=" + shard},
                 {"LIFTOFF_SHARD_RESERVED", "eu-1"}});
  ASSERT_TRUE(server.wait_ready()) << server.process->log();
  auto owner = sign_up(server.port, "shard-status");
  std::vector<std::string> orgs;
  for (int i = 0; i < 3; ++i) {
    auto r = post_json(server.port, "/v1/orgs", R"({"name":"Acme"})", owner.token);
    ASSERT_EQ(status(r), 201) << (r ? r->body : "");
    orgs.emplace_back(json_of(*r).at("id").as_string());
  }
  server.process->signal(SIGTERM);
  EXPECT_EQ(server.process->wait(15s), 0) << server.process->log();

  std::map<std::string, std::string> env = {{"LIFTOFF_DATABASE_URL", control},
                                            {"LIFTOFF_SHARDS", "eu-1=" + shard}};
  auto shard_status = [&](bool as_json, int expected_exit) {
    std::vector<std::string> argv = {LIFTOFF_BINARY, "shard", "status"};
    if (as_json) argv.emplace_back("--json");
    Process p(argv, env, log_path("shard-status"));
    EXPECT_EQ(p.wait(30s), expected_exit) << p.log();
    return p.log();
  };
  const auto known = db::embedded_migrations().back().version;
  auto text = shard_status(false, 0);
  EXPECT_NE(text.find("main"), std::string::npos) << text;
  EXPECT_NE(text.find("xacts"), std::string::npos) << text;
  EXPECT_NE(text.find("eu-1"), std::string::npos) << text;

  auto report = boost::json::parse(shard_status(true, 0)).at("shards").as_array();
  ASSERT_EQ(report.size(), 2u) << boost::json::serialize(report);
  const auto& main = report[0].as_object();
  EXPECT_EQ(main.at("name"), "main");
  EXPECT_EQ(main.at("orgs"), 3);
  EXPECT_EQ(main.at("deleted_orgs"), 0);
  EXPECT_EQ(main.at("schema_version"), known);
  EXPECT_GT(main.at("database_bytes").as_int64(), 1'000'000);
  const auto& eu = report[1].as_object();
  EXPECT_EQ(eu.at("name"), "eu-1");
  EXPECT_EQ(eu.at("orgs"), 0);
  EXPECT_EQ(eu.at("schema_version"), known);
  // Each shard's part of the work: main served every request, eu-1 only its migrations and probes.
  // The transaction counts say so; the statement time is time, which a busy machine spreads as it
  // will (eu-1's migrations may take as long as main's requests): only its shares are checked.
  for (const char* share : {"transaction_share", "statement_time_share"}) {
    auto on_main = main.at(share).as_double();
    auto on_eu = eu.at(share).as_double();
    EXPECT_NEAR(on_main + on_eu, 1.0, 1e-9) << share;
    EXPECT_GE(on_eu, 0.0) << share;
    EXPECT_GE(on_main, 0.0) << share;
  }
  EXPECT_GT(main.at("transaction_share").as_double(), eu.at("transaction_share").as_double());
  EXPECT_GT(main.at("transactions").as_int64(), 0);

  // The directory names a shard that is gone from the configuration: its org cannot be served.
  ASSERT_TRUE(run_sql(control, "UPDATE orgs SET shard = 'eu-9' WHERE id = '" + orgs[0] + "'"));
  auto broken = boost::json::parse(shard_status(true, 1)).at("shards").as_array();
  ASSERT_EQ(broken.size(), 3u) << boost::json::serialize(broken);
  EXPECT_EQ(broken[0].at("orgs"), 2);
  const auto& unknown = broken[2].as_object();
  EXPECT_EQ(unknown.at("name"), "eu-9");
  EXPECT_EQ(unknown.at("configured"), false);
  EXPECT_EQ(unknown.at("orgs"), 1);
  EXPECT_EQ(unknown.at("problem"), "not configured");
  EXPECT_NE(shard_status(false, 1).find("ERROR: not configured"), std::string::npos);
}

// `liftoff pg` starts, reports and stops the embedded shards with the control cluster.
TEST(E2EServer, EmbeddedShardsStartAndStopWithTheControlCluster) {
  auto dir = (run_dir() / "embedded-shards").string();
  std::filesystem::create_directory(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all |
                                        std::filesystem::perms::group_exec |
                                        std::filesystem::perms::others_exec);
  auto port = free_port();
  ASSERT_LT(port, 65000);
  std::vector<std::string> options = {
      "--data-dir", dir, "--embedded-pg-port", std::to_string(port), "--embedded-pg-shards", "1"};
  auto pg = [&](const std::string& action) {
    std::vector<std::string> argv = {LIFTOFF_BINARY, "pg", action};
    argv.insert(argv.end(), options.begin(), options.end());
    auto process = std::make_unique<Process>(argv, std::map<std::string, std::string>{},
                                             log_path("pg-" + action));
    EXPECT_EQ(process->wait(120s), 0) << process->log();
    return process->log();
  };
  pg("start");
  auto status = pg("status");
  EXPECT_NE(status.find("primary: running on 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << status;
  EXPECT_NE(status.find("shard shard-1 primary: running on 127.0.0.1:" + std::to_string(port + 10)),
            std::string::npos)
      << status;
  pg("stop");
  status = pg("status");
  EXPECT_NE(status.find("primary: stopped"), std::string::npos) << status;
  EXPECT_NE(status.find("shard shard-1 primary: stopped"), std::string::npos) << status;
}

TEST(E2EServer, MigrateStatusAndUpCommands) {
  std::map<std::string, std::string> env = {{"LIFTOFF_DATABASE_URL", test_database_url()}};
  Process up({LIFTOFF_BINARY, "migrate", "up"}, env, log_path("migrate-up"));
  EXPECT_EQ(up.wait(30s), 0) << up.log();
  Process status({LIFTOFF_BINARY, "migrate", "status"}, env, log_path("migrate-status"));
  EXPECT_EQ(status.wait(30s), 0) << status.log();
  EXPECT_NE(status.log().find("0001 foundation"), std::string::npos) << status.log();
  EXPECT_NE(status.log().find("0 pending"), std::string::npos) << status.log();
}

}  // namespace
}  // namespace liftoff::testing
