// End-to-end: browsers on other origins (CORS), against the real server and database. What a
// browser itself does with these answers is tests/browser's (headless Chromium).
#include <boost/json/array.hpp>

#include "e2e/e2e.hpp"
#include "e2e/records_support.hpp"

namespace liftoff::testing {
namespace {

constexpr const char* kApp = "https://app.example.com";
constexpr const char* kOther = "https://other.example.com";

class Cors : public E2E {
 public:
  static void SetUpTestSuite() {
    start({{"LIFTOFF_CORS_ORIGINS", " https://APP.example.com:443 , http://127.0.0.1:5173"},
           {"LIFTOFF_CORS_MAX_AGE", "10m"}});
  }
  using E2E::port;
};

std::optional<HttpResponse> preflight(unsigned short port, const std::string& path,
                                      const std::string& origin, const std::string& method,
                                      const std::string& headers = "") {
  std::string extra = "Origin: " + origin + "\r\nAccess-Control-Request-Method: " + method + "\r\n";
  if (!headers.empty()) extra += "Access-Control-Request-Headers: " + headers + "\r\n";
  return http_request(port, "OPTIONS", path, extra);
}

// A header of an answer; empty without one (or without an answer).
std::string header_or(const std::optional<HttpResponse>& r, const std::string& name) {
  return r ? r->header(name) : "";
}

bool names(const std::string& list, const std::string& item) {
  std::string lower_list = list, lower_item = item;
  for (auto* s : {&lower_list, &lower_item})
    std::transform(s->begin(), s->end(), s->begin(), ::tolower);
  std::size_t pos = 0;
  while (pos <= lower_list.size()) {
    auto comma = lower_list.find(',', pos);
    auto token =
        lower_list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    while (!token.empty() && token.front() == ' ') token.erase(0, 1);
    while (!token.empty() && token.back() == ' ') token.pop_back();
    if (token == lower_item) return true;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return false;
}

bool has_cors_headers(const HttpResponse& r) {
  for (const auto& [name, value] : r.headers) {
    if (name.starts_with("access-control-")) return true;
  }
  return false;
}

TEST_F(Cors, APreflightFromAnAllowedOriginIsAnsweredOnEveryRoute) {
  auto document = http_request(port(), "GET", "/v1/openapi.json");
  ASSERT_EQ(status(document), 200);
  auto paths = boost::json::parse(document->body).at("paths").as_object();
  ASSERT_GT(paths.size(), 20u);
  for (const auto& [pattern, item] : paths) {
    // A path parameter becomes a value of its shape (an org id for {org}).
    std::string path(pattern);
    for (auto open = path.find('{'); open != std::string::npos; open = path.find('{')) {
      path.replace(open, path.find('}', open) - open + 1, "0190a7a2-6f3c-7d2e-9a10-1c2b3d4e5f60");
    }
    std::vector<std::string> methods;
    for (const auto& [method, op] : item.as_object()) {
      if (method != "parameters") methods.push_back(std::string(method));
    }
    ASSERT_FALSE(methods.empty()) << pattern;
    std::string wanted = methods.front();
    std::transform(wanted.begin(), wanted.end(), wanted.begin(), ::toupper);
    auto r = preflight(port(), path, kApp, wanted, "authorization, content-type, idempotency-key");
    ASSERT_TRUE(r) << pattern;
    EXPECT_EQ(r->status, 204) << pattern;
    EXPECT_EQ(r->header("access-control-allow-origin"), kApp) << pattern;
    EXPECT_TRUE(names(r->header("access-control-allow-methods"), wanted)) << pattern;
    EXPECT_TRUE(names(r->header("allow"), wanted)) << pattern;
    EXPECT_EQ(r->header("access-control-max-age"), "600") << pattern;
    EXPECT_TRUE(names(r->header("vary"), "Origin")) << pattern;
    EXPECT_TRUE(r->body.empty()) << pattern;
  }
}

TEST_F(Cors, APreflightAllowsTheHeadersLiftoffReads) {
  auto r = preflight(port(), "/v1/me", kApp, "GET");
  ASSERT_EQ(status(r), 204);
  for (const char* header : {"Authorization", "Content-Type", "Idempotency-Key", "If-Match",
                             "If-None-Match", "Last-Event-ID", "Liftoff-Consistency", "Prefer",
                             "traceparent", "tracestate", "X-Request-Id"}) {
    EXPECT_TRUE(names(r->header("access-control-allow-headers"), header)) << header;
  }
  // Origins are compared in their canonical form: the setting's upper case and :443 were dropped.
  EXPECT_EQ(r->header("access-control-allow-origin"), kApp);
  EXPECT_EQ(header_or(preflight(port(), "/v1/me", "http://127.0.0.1:5173", "GET"),
                      "access-control-allow-origin"),
            "http://127.0.0.1:5173");
  // A plain OPTIONS (no preflight) is answered with the route's methods.
  auto plain = http_request(port(), "OPTIONS", "/v1/orgs");
  ASSERT_EQ(status(plain), 204);
  EXPECT_EQ(plain->header("allow"), "GET, HEAD, OPTIONS, POST");
  EXPECT_FALSE(has_cors_headers(*plain));
  EXPECT_EQ(status(http_request(port(), "OPTIONS", "/v1/no/such/route")), 404);
}

TEST_F(Cors, AnswersToAnAllowedOriginCarryAllowOriginAndExposeWhatClientsRead) {
  auto origin = std::string("Origin: ") + kApp + "\r\n";
  auto ok = http_request(port(), "GET", "/healthz", origin);
  ASSERT_EQ(status(ok), 200);
  EXPECT_EQ(ok->header("access-control-allow-origin"), kApp);
  EXPECT_TRUE(names(ok->header("vary"), "Origin"));
  for (const char* header :
       {"ETag", "X-Request-Id", "Retry-After", "Location", "Liftoff-Next-Cursor", "RateLimit",
        "RateLimit-Policy", "WWW-Authenticate", "Idempotent-Replayed", "Liftoff-Consistency",
        "traceresponse"}) {
    EXPECT_TRUE(names(ok->header("access-control-expose-headers"), header)) << header;
  }
  // Errors too: a page must be able to read the problem (and WWW-Authenticate) of a 401.
  auto unauthorized = http_request(port(), "GET", "/v1/me", origin);
  ASSERT_EQ(status(unauthorized), 401);
  EXPECT_EQ(unauthorized->header("access-control-allow-origin"), kApp);
  auto missing = http_request(port(), "GET", "/v1/nothing", origin);
  ASSERT_EQ(status(missing), 404);
  EXPECT_EQ(missing->header("access-control-allow-origin"), kApp);
  // Compressed answers vary by both.
  auto t = new_tenant(port(), "cors-vary");
  create_tickets(t);
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(status(create(t, {{"title", "compressible " + std::to_string(i)},
                                {"status", "open"},
                                {"priority", i}})),
              201);
  }
  auto list = http_request(
      port(), "GET", t.base + "/tickets/records?limit=30",
      origin + "Authorization: Bearer " + t.owner.token + "\r\nAccept-Encoding: gzip\r\n");
  ASSERT_EQ(status(list), 200);
  EXPECT_EQ(list->header("content-encoding"), "gzip");
  EXPECT_TRUE(names(list->header("vary"), "Origin"));
  EXPECT_TRUE(names(list->header("vary"), "Accept-Encoding"));
  EXPECT_EQ(list->header("access-control-allow-origin"), kApp);
}

TEST_F(Cors, AnOriginNotAllowedGetsNoCorsHeadersAndTheSameAnswer) {
  auto refused_before = metric(port(), "http_cors_preflights_total{result=\"refused\"}");
  auto r = preflight(port(), "/v1/auth/login", kOther, "POST", "content-type");
  ASSERT_EQ(status(r), 204);
  EXPECT_FALSE(has_cors_headers(*r));
  EXPECT_TRUE(names(r->header("vary"), "Origin"));
  EXPECT_EQ(metric(port(), "http_cors_preflights_total{result=\"refused\"}"), refused_before + 1);
  // A near miss is a miss: another scheme, port or subdomain.
  for (const char* near : {"http://app.example.com", "https://app.example.com:8443",
                           "https://evil.app.example.com", "null"}) {
    EXPECT_FALSE(has_cors_headers(*preflight(port(), "/v1/me", near, "GET"))) << near;
  }
  // The actual answer is what it would be without Origin: nothing more, nothing that leaks.
  auto with = http_request(port(), "GET", "/v1/me", std::string("Origin: ") + kOther + "\r\n");
  auto without = http_request(port(), "GET", "/v1/me");
  ASSERT_EQ(status(with), 401);
  EXPECT_FALSE(has_cors_headers(*with));
  EXPECT_EQ(with->header("content-type"), without->header("content-type"));
  EXPECT_EQ(with->body.size(), without->body.size());
}

TEST_F(Cors, ABadOriginIsABadHeader) {
  for (const char* bad :
       {"https://app.example.com/", "https://app.example.com/path", "app.example.com",
        "https://user@app.example.com", "https://app.example.com:99999", "https://app example.com",
        "HTTPS://APP.EXAMPLE.COM", "https://app.example.com:443", "*", ""}) {
    auto r = http_request(port(), "GET", "/healthz", std::string("Origin: ") + bad + "\r\n");
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_FALSE(has_cors_headers(*r)) << bad;
    if (r->status == 400) {
      EXPECT_EQ(problem(*r).at("errors").at(0).at("field"), "Origin");
    }
  }
  auto twice = http_request(port(), "GET", "/healthz",
                            std::string("Origin: ") + kApp + "\r\nOrigin: " + kApp + "\r\n");
  EXPECT_EQ(status(twice), 400);
  auto long_origin = "https://" + std::string(600, 'a') + ".example.com";
  EXPECT_EQ(status(http_request(port(), "GET", "/healthz", "Origin: " + long_origin + "\r\n")),
            400);
}

// The org's own front ends: allowed on that org's routes only, within a second of the change, in
// every process, without a database round trip on the preflight.
TEST_F(Cors, AnOrgsOwnOriginsAllowItsRoutesOnly) {
  auto t = new_tenant(port(), "cors-org");
  auto other = new_tenant(port(), "cors-org-other");
  const std::string front = "https://front.cors-org.example";
  auto origins_path = "/v1/orgs/" + t.org + "/cors-origins";
  auto get = send_json(port(), "GET", origins_path, t.owner.token);
  ASSERT_EQ(status(get), 200);
  EXPECT_EQ(json_of(*get).at("origins").as_array().size(), 0u);

  OwnServer second;  // another process on the same database
  auto set =
      send_json(port(), "PUT", origins_path, t.owner.token,
                body_of(json::object{{"origins", json::array{"HTTPS://Front.cors-org.example:443",
                                                             front, "http://localhost:3000"}}}));
  ASSERT_EQ(status(set), 200) << set->body;
  EXPECT_EQ(json::serialize(json_of(*set).at("origins")),
            R"(["https://front.cors-org.example","http://localhost:3000"])");

  auto allowed_on = [&](unsigned short p, const std::string& path) {
    return header_or(preflight(p, path, front, "POST", "authorization, content-type"),
                     "access-control-allow-origin") == front;
  };
  auto within_a_second = [&](unsigned short p, const std::string& path, bool want) {
    for (auto end = std::chrono::steady_clock::now() + 1s;; std::this_thread::sleep_for(20ms)) {
      if (allowed_on(p, path) == want) return true;
      if (std::chrono::steady_clock::now() > end) return false;
    }
  };
  for (auto p : {port(), second.port()}) {
    EXPECT_TRUE(within_a_second(p, t.base + "/tickets/records", true)) << p;
    EXPECT_TRUE(allowed_on(p, "/v1/orgs/" + t.org));
    EXPECT_FALSE(allowed_on(p, other.base)) << "another org's routes";
    EXPECT_FALSE(allowed_on(p, "/v1/me")) << "a route of no org";
    EXPECT_FALSE(allowed_on(p, "/v1/orgs/not-an-id/collections"));
  }
  // An actual answer too, with the org's data behind its token as usual.
  auto listed =
      http_request(port(), "GET", t.base,
                   "Origin: " + front + "\r\nAuthorization: Bearer " + t.owner.token + "\r\n");
  ASSERT_EQ(status(listed), 200);
  EXPECT_EQ(listed->header("access-control-allow-origin"), front);

  // Audited, with what it was and what it became.
  auto audit = send_json(
      port(), "GET", "/v1/orgs/" + t.org + "/audit?action=org.cors_origins_changed", t.owner.token);
  ASSERT_EQ(status(audit), 200);
  auto events = json_of(*audit).at("events").as_array();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("before").at("origins").as_array().size(), 0u);
  EXPECT_EQ(events[0].at("after").at("origins").as_array().size(), 2u);

  // Emptied: refused again, everywhere.
  ASSERT_EQ(status(send_json(port(), "PUT", origins_path, t.owner.token, R"({"origins":[]})")),
            200);
  for (auto p : {port(), second.port()}) {
    EXPECT_TRUE(within_a_second(p, t.base + "/tickets/records", false)) << p;
  }
  // A deleted org's origins go with it.
  ASSERT_EQ(status(send_json(port(), "PUT", origins_path, t.owner.token,
                             body_of(json::object{{"origins", json::array{front}}}))),
            200);
  ASSERT_TRUE(within_a_second(port(), t.base, true));
  ASSERT_EQ(status(send_json(port(), "DELETE", "/v1/orgs/" + t.org, t.owner.token)), 200);
  EXPECT_TRUE(within_a_second(port(), t.base, false));
}

TEST_F(Cors, OnlyAnAdminSetsTheOrgsOriginsAndEachMustBeAnOrigin) {
  auto t = new_tenant(port(), "cors-rules");
  auto path = "/v1/orgs/" + t.org + "/cors-origins";
  auto put = [&](const std::string& token, const std::string& body) {
    return send_json(port(), "PUT", path, token, body);
  };
  auto field_of = [](const std::optional<HttpResponse>& r) {
    return r && r->status == 422
               ? std::string(problem(*r).at("errors").at(0).at("field").as_string())
               : "";
  };
  EXPECT_EQ(field_of(put(t.owner.token, R"({"origins":["*"]})")), "origins[0]");
  EXPECT_EQ(field_of(put(t.owner.token, R"({"origins":["https://ok.example","null"]})")),
            "origins[1]");
  EXPECT_EQ(field_of(put(t.owner.token, R"({"origins":["https://a.example/path"]})")),
            "origins[0]");
  EXPECT_EQ(field_of(put(t.owner.token, R"({"origins":"https://a.example"})")), "origins");
  EXPECT_EQ(field_of(put(t.owner.token, R"({"origins":[1]})")), "origins");
  EXPECT_EQ(field_of(put(t.owner.token, R"({})")), "origins");
  json::array many;
  for (int i = 0; i < 21; ++i)
    many.push_back(json::value("https://f" + std::to_string(i) + ".example"));
  EXPECT_EQ(field_of(put(t.owner.token, body_of(json::object{{"origins", many}}))), "origins");
  EXPECT_EQ(status(put(t.owner.token, R"({"origins":[],"extra":1})")), 400);
  EXPECT_EQ(status(put(t.owner.token, "not json")), 400);

  auto member = sign_up(port(), "cors-member");
  add_member(t, member, "member");
  EXPECT_EQ(status(put(member.token, R"({"origins":["https://m.example"]})")), 403);
  EXPECT_EQ(status(send_json(port(), "GET", path, member.token)), 200);
  auto stranger = sign_up(port(), "cors-stranger");
  EXPECT_EQ(status(put(stranger.token, R"({"origins":["https://s.example"]})")), 404);
  EXPECT_EQ(status(send_json(port(), "GET", path, stranger.token)), 404);
  EXPECT_EQ(status(put("", R"({"origins":[]})")), 401);
  auto unchanged = send_json(port(), "GET", path, t.owner.token);
  ASSERT_EQ(status(unchanged), 200);
  EXPECT_EQ(json_of(*unchanged).at("origins").as_array().size(), 0u);
}

TEST_F(Cors, AnyOriginIsAnsweredWithAStar) {
  OwnServer any(Server::Env{{"LIFTOFF_CORS_ORIGINS", "*"}});
  auto r = preflight(any.port(), "/v1/auth/login", kOther, "POST", "content-type");
  ASSERT_EQ(status(r), 204);
  EXPECT_EQ(r->header("access-control-allow-origin"), "*");
  EXPECT_EQ(r->header("access-control-allow-credentials"), "");
  auto ok = http_request(any.port(), "GET", "/healthz", "Origin: null\r\n");
  EXPECT_EQ(header_or(ok, "access-control-allow-origin"), "*");
}

TEST_F(Cors, ABadSettingStopsTheStartNamingTheKey) {
  for (const char* bad : {"*,https://a.example", "https://a.example/", "a.example", "null"}) {
    Server server(Server::Env{{"LIFTOFF_CORS_ORIGINS", bad}});
    EXPECT_FALSE(server.wait_ready()) << bad;
    EXPECT_EQ(server.process->wait(10s), std::optional<int>(2)) << bad;
    EXPECT_NE(server.process->log().find("cors_origins"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace liftoff::testing
