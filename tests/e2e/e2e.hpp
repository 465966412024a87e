#pragma once
// The end-to-end harness: the real `liftoff serve` binary against the test PostgreSQL, driven over
// raw sockets; and the small request helpers the e2e test files share.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/async.hpp"
#include "support/http_client.hpp"
#include "support/notify_socket.hpp"
#include "support/postgres.hpp"
#include "support/process.hpp"
#include "support/run_dir.hpp"

namespace liftoff::testing {
using namespace std::chrono_literals;

// A `liftoff serve` (or `liftoff worker`) child on a port the kernel chooses (listen 127.0.0.1:0),
// which it reports, once it is ready, on a notify socket (NOTIFY_SOCKET, the systemd protocol) with
// its own PID: no port is chosen here and released for someone else to take, and no other process's
// answer is taken for its.
struct Server {
  unsigned short port = 0;  // known once wait_ready() is true
  std::unique_ptr<NotifySocket> notify = std::make_unique<NotifySocket>();
  std::unique_ptr<Process> process;

  using Env = std::map<std::string, std::string>;
  // `command`: serve, or worker (which serves health and metrics).
  explicit Server(Env overrides = {}, const std::string& command = "serve") {
    std::vector<std::string> args = {command};
    std::map<std::string, std::string> env = {
        {"LIFTOFF_DATABASE_URL", test_database_url()},
        {"LIFTOFF_LISTEN", "127.0.0.1:0"},
        {"NOTIFY_SOCKET", notify->path()},
        {"LIFTOFF_THREADS", "2"},
        {"LIFTOFF_AUTO_MIGRATE", "true"},
        {"LIFTOFF_ACCESS_LOG", "-"},
        {"LIFTOFF_REQUEST_TIMEOUT", "700ms"},
        {"LIFTOFF_IDLE_TIMEOUT", "1500ms"},
        {"LIFTOFF_HEADER_LIMIT", "4k"},
        {"LIFTOFF_BODY_LIMIT", "64k"},
        {"LIFTOFF_JSON_MAX_STRING_LENGTH", "32k"},
        // Cheap Argon2id parameters: the tests are about behaviour, not hash strength.
        {"LIFTOFF_PASSWORD_HASH_OPS", "1"},
        {"LIFTOFF_PASSWORD_HASH_MEMORY", "64k"},
        {"LIFTOFF_CREDENTIAL_USE_FLUSH", "100ms"},
        // Every test talks from 127.0.0.1, many to one org: rate limits are rate_limits_e2e's.
        {"LIFTOFF_RATE_LIMITS", "false"},
    };
    for (auto& [k, v] : overrides) env[k] = v;
    std::vector<std::string> argv = {LIFTOFF_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    process = std::make_unique<Process>(argv, env, log_path("liftoff"));
  }

  // Whether the child said READY=1 (and on which port) before it exited or 60 s passed: the
  // deadline only ends a hung start.
  bool wait_ready() {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (process->wait(0ms)) return false;
      auto message = notify->receive_from(process->pid(), 200ms);
      if (!message || message->find("READY=1") == std::string::npos) continue;
      constexpr std::string_view kServing = "STATUS=serving on http://";
      auto at = message->find(kServing);
      if (at == std::string::npos) return false;
      auto colon = message->find(':', at + kServing.size());
      if (colon == std::string::npos) return false;
      port = static_cast<unsigned short>(std::stoi(message->substr(colon + 1)));
      return port != 0;
    }
    return false;
  }
};

// A server of one test's own, with its settings: ready when constructed, stopped (and expected to
// exit 0) when destroyed.
struct OwnServer {
  Server server;
  explicit OwnServer(Server::Env env = {}) : server(std::move(env)) {
    EXPECT_TRUE(server.wait_ready()) << server.process->log();
  }
  ~OwnServer() {
    server.process->signal(SIGTERM);
    EXPECT_EQ(server.process->wait(15s), 0) << server.process->log();
  }
  OwnServer(const OwnServer&) = delete;
  OwnServer& operator=(const OwnServer&) = delete;
  [[nodiscard]] unsigned short port() const { return server.port; }
  [[nodiscard]] Process& process() const { return *server.process; }
};

class E2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { start(); }
  // A suite that needs other settings calls this from its own SetUpTestSuite.
  static void start(Server::Env overrides = {}) {
    server_ = new Server(std::move(overrides));
    ASSERT_TRUE(server_->wait_ready()) << server_->process->log();
  }
  static void TearDownTestSuite() {
    server_->process->signal(SIGTERM);
    EXPECT_EQ(server_->process->wait(15s), 0) << server_->process->log();
    delete server_;
  }
  void TearDown() override {
    // Whatever a test sent, the server must still answer.
    auto r = http_request(port(), "GET", "/healthz");
    ASSERT_TRUE(r) << "server stopped answering; log:\n" << server_->process->log();
    EXPECT_EQ(r->status, 200);
  }
  static unsigned short port() { return server_->port; }
  static inline Server* server_ = nullptr;
};

// The number after `name ` (with its labels, if any) in a /metrics answer; -1 when absent.
// The header line that authenticates a raw request (an event stream's) with `token`.
inline std::string bearer(const std::string& token) {
  return "Authorization: Bearer " + token + "\r\n";
}

inline double metric_in(const std::optional<HttpResponse>& r, const std::string& name) {
  if (!r) return -1;
  auto at = r->body.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(r->body.substr(at + name.size() + 2));
}

// `name` in the server's /metrics, read on a new connection.
inline double metric(unsigned short port, const std::string& name) {
  return metric_in(http_request(port, "GET", "/metrics"), name);
}

// `name` in the server's /metrics, read on a connection already open (where a new one could be
// refused, or would itself be counted).
inline double metric(RawConnection& c, const std::string& name) {
  if (!c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")) return -1;
  return metric_in(c.read_response(), name);
}

inline boost::json::object problem(const HttpResponse& r) {
  EXPECT_EQ(r.header("content-type"), "application/problem+json");
  return boost::json::parse(r.body).as_object();
}

// One number from the test database, as its superuser (what only an operator could read); -1 when
// the query fails (which is also a test failure).
inline std::int64_t count_of(const std::string& sql,
                             const db::Params& params = db::Params::none()) {
  std::int64_t out = -1;
  block_on([&]() -> boost::asio::awaitable<void> {
    auto conn = co_await connect_test();
    db::Statement statement{db::Plane::any, "test.count", sql,
                            false};  // points at `sql`, which outlives it
    auto rows = co_await conn->query(statement, params, db::deadline_after(10s));
    EXPECT_TRUE(rows) << (rows ? "" : rows.error().detail);
    if (rows) out = (*rows)[0].get<std::int64_t>(0);
  }());
  return out;
}

// ---- request helpers ----

inline std::string unique_email(const std::string& tag) {
  static std::atomic<int> n = 0;
  return tag + "." + std::to_string(::getpid()) + "." + std::to_string(++n) + "@Example.COM";
}

inline std::optional<HttpResponse> post_json(unsigned short port, const std::string& path,
                                             const std::string& body,
                                             const std::string& token = "") {
  std::string headers = "Content-Type: application/json\r\n";
  if (!token.empty()) headers += "Authorization: Bearer " + token + "\r\n";
  return http_request(port, "POST", path, headers, body);
}

inline std::optional<HttpResponse> with_token(unsigned short port, const std::string& method,
                                              const std::string& path, const std::string& token) {
  return http_request(port, method, path, "Authorization: Bearer " + token + "\r\n");
}

inline std::string signup_body(const std::string& email,
                               const std::string& password = "a sturdy passphrase",
                               const std::string& name = "Ada Lovelace") {
  return boost::json::serialize(
      boost::json::object{{"email", email}, {"password", password}, {"name", name}});
}

// Any method, with an optional bearer token and JSON body.
inline std::optional<HttpResponse> send_json(unsigned short port, const std::string& method,
                                             const std::string& path, const std::string& token,
                                             const std::string& body = "") {
  std::string headers;
  if (!body.empty()) headers += "Content-Type: application/json\r\n";
  if (!token.empty()) headers += "Authorization: Bearer " + token + "\r\n";
  return http_request(port, method, path, headers, body);
}

// The status of an answer; 0 for none.
inline int status(const std::optional<HttpResponse>& r) {
  return r ? r->status : 0;
}

inline boost::json::object json_of(const HttpResponse& r) {
  return boost::json::parse(r.body).as_object();
}

// Accepts the invitation `token` as the user of `user_token` (the token travels in the body).
inline std::optional<HttpResponse> accept_invitation(unsigned short port, const std::string& token,
                                                     const std::string& user_token) {
  return send_json(port, "POST", "/v1/invitations/accept", user_token,
                   boost::json::serialize(boost::json::object{{"token", token}}));
}

struct TestUser {
  std::string id;
  std::string email;  // normalized
  std::string token;
};

// Sets the org's plan as the operator does (liftoff orgs plan --limits: a JSON object).
inline void set_plan(const std::string& org, const std::string& plan, const std::string& limits) {
  std::vector<std::string> argv = {LIFTOFF_BINARY, "orgs", "plan",     "--org", org,
                                   "--plan",       plan,   "--limits", limits};
  Process operate(argv, {{"LIFTOFF_DATABASE_URL", test_database_url()}}, log_path("orgs-plan"));
  ASSERT_EQ(operate.wait(std::chrono::seconds(30)).value_or(-1), 0) << operate.log();
}

// Makes the user with `email` a platform operator, as `liftoff operators grant` does.
inline void grant_operator(const std::string& email) {
  std::vector<std::string> argv = {LIFTOFF_BINARY, "operators", "grant", "--email", email};
  Process grant(argv, {{"LIFTOFF_DATABASE_URL", test_database_url()}}, log_path("operators-grant"));
  ASSERT_EQ(grant.wait(std::chrono::seconds(30)).value_or(-1), 0) << grant.log();
}

// A new user, signed up (password "a sturdy passphrase") and signed in.
inline TestUser sign_up(unsigned short port, const std::string& tag) {
  auto r = post_json(port, "/v1/auth/signup", signup_body(unique_email(tag)));
  EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no response");
  if (!r || r->status != 201) return {};
  auto body = json_of(*r);
  const auto& user = body.at("user").as_object();
  return {std::string(user.at("id").as_string()), std::string(user.at("email").as_string()),
          std::string(body.at("token").as_string())};
}

}  // namespace liftoff::testing
