// End-to-end: the operators' console and its API (docs/decisions/0025-operators-console.md). A
// platform operator is made and unmade from the command line; only an operator reads
// /v1/operator/..., which finds organizations and users by name, email or id and counts the
// business; the console's files are public, with their security headers.
#include <boost/json/array.hpp>

#include "e2e/e2e.hpp"

namespace liftoff::testing {
namespace {
namespace json = boost::json;

class Operators : public E2E {};

// `liftoff operators <args...>`: its exit status and output.
std::pair<int, std::string> operators_command(std::vector<std::string> args,
                                              const std::string& log) {
  std::vector<std::string> argv = {LIFTOFF_BINARY, "operators"};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv, {{"LIFTOFF_DATABASE_URL", test_database_url()}}, log_path(log));
  auto code = p.wait(30s);
  return {code.value_or(-1), p.log()};
}

// The names of `key`'s items (orgs or users) that an operator's search finds.
std::vector<std::string> found(const std::optional<HttpResponse>& r, const std::string& key,
                               const std::string& field) {
  std::vector<std::string> names;
  EXPECT_EQ(status(r), 200) << (r ? r->body : "no response");
  if (status(r) != 200) return names;
  const auto body = json_of(*r);
  for (const auto& item : body.at(key).as_array()) names.emplace_back(item.at(field).as_string());
  return names;
}

TEST_F(Operators, OnlyPlatformOperatorsReadTheOperatorApiAndARevokedGrantStopsTheNextRequest) {
  auto ann = sign_up(port(), "operator-ann");
  auto bob = sign_up(port(), "operator-bob");
  EXPECT_EQ(status(http_request(port(), "GET", "/v1/operator/me")), 401);
  auto refused = send_json(port(), "GET", "/v1/operator/orgs", bob.token);
  ASSERT_EQ(status(refused), 403) << refused->body;
  EXPECT_EQ(problem(*refused).at("detail"), "only platform operators may do this");

  auto [granted, granted_out] = operators_command({"grant", "--email", ann.email}, "op-grant");
  ASSERT_EQ(granted, 0) << granted_out;
  EXPECT_NE(granted_out.find(ann.email + " is a platform operator"), std::string::npos)
      << granted_out;
  auto [again, again_out] = operators_command({"grant", "--email", ann.email}, "op-grant-again");
  EXPECT_EQ(again, 0) << again_out;  // one grant
  auto [listed, list_out] = operators_command({"list"}, "op-list");
  EXPECT_EQ(listed, 0) << list_out;
  EXPECT_NE(list_out.find(ann.id + "  " + ann.email), std::string::npos) << list_out;
  auto [unknown, unknown_out] =
      operators_command({"grant", "--email", "nobody.here@example.com"}, "op-unknown");
  EXPECT_EQ(unknown, 2) << unknown_out;
  EXPECT_NE(unknown_out.find("no user has the email nobody.here@example.com"), std::string::npos)
      << unknown_out;

  auto me = send_json(port(), "GET", "/v1/operator/me", ann.token);
  ASSERT_EQ(status(me), 200) << me->body;
  EXPECT_EQ(json_of(*me).at("user").at("email").as_string(), ann.email);
  EXPECT_EQ(json_of(*me).at("operator"), true);
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/operator/me", bob.token)), 403);

  auto org = send_json(port(), "POST", "/v1/orgs", bob.token, R"({"name":"Zebra Crossing Ltd"})");
  ASSERT_EQ(status(org), 201) << org->body;
  const std::string org_id(json_of(*org).at("id").as_string());
  // By a part of the name, in any case; by id; a % in the text is a %, not a wildcard.
  auto by_name = send_json(port(), "GET", "/v1/operator/orgs?q=zEBRA%20cross", ann.token);
  ASSERT_EQ(status(by_name), 200) << by_name->body;
  const auto orgs = json_of(*by_name).at("orgs").as_array();
  ASSERT_EQ(orgs.size(), 1u) << by_name->body;
  EXPECT_EQ(orgs[0].at("id").as_string(), org_id);
  EXPECT_EQ(orgs[0].at("plan"), "free");
  EXPECT_EQ(orgs[0].at("members"), 1);
  EXPECT_EQ(orgs[0].at("shard"), "main");
  EXPECT_TRUE(orgs[0].at("deleted_at").is_null());
  EXPECT_EQ(
      found(send_json(port(), "GET", "/v1/operator/orgs?q=" + org_id, ann.token), "orgs", "name"),
      std::vector<std::string>{"Zebra Crossing Ltd"});
  EXPECT_EQ(
      found(send_json(port(), "GET", "/v1/operator/orgs?q=zebra%25", ann.token), "orgs", "name"),
      std::vector<std::string>{});
  auto users = send_json(port(), "GET", "/v1/operator/users?q=" + bob.email, ann.token);
  ASSERT_EQ(status(users), 200) << users->body;
  const auto user_items = json_of(*users).at("users").as_array();
  ASSERT_EQ(user_items.size(), 1u) << users->body;
  EXPECT_EQ(user_items[0].at("id").as_string(), bob.id);
  EXPECT_EQ(user_items[0].at("orgs"), 1);
  EXPECT_FALSE(user_items[0].at("last_seen_at").is_null());
  // A page at a time.
  EXPECT_EQ(
      found(send_json(port(), "GET", "/v1/operator/users?limit=1", ann.token), "users", "email")
          .size(),
      1u);

  // Bad input: each a 400 naming the parameter.
  for (const auto& [query, field] : {std::pair{"limit=0", "limit"},
                                     {"limit=abc", "limit"},
                                     {"limit=101", "limit"},
                                     {"sort=name", "sort"}}) {
    auto bad = send_json(port(), "GET", std::string("/v1/operator/orgs?") + query, ann.token);
    ASSERT_EQ(status(bad), 400) << query << ": " << bad->body;
    EXPECT_EQ(problem(*bad).at("errors").at(0).at("field"), field) << query;
  }
  auto long_text =
      send_json(port(), "GET", "/v1/operator/users?q=" + std::string(201, 'a'), ann.token);
  ASSERT_EQ(status(long_text), 400);
  EXPECT_EQ(problem(*long_text).at("errors").at(0).at("field"), "q");

  auto business = send_json(port(), "GET", "/v1/operator/business", ann.token);
  ASSERT_EQ(status(business), 200) << business->body;
  auto figures = json_of(*business);
  EXPECT_GE(figures.at("users").as_int64(), 2);
  EXPECT_GE(figures.at("orgs").as_int64(), 1);
  EXPECT_GE(figures.at("active_users").at("day").as_int64(), 2);
  const auto signups = figures.at("signups").as_array();
  ASSERT_EQ(signups.size(), 30u);
  EXPECT_GE(signups.back().at("signups").as_int64(), 2);  // ann and bob, today (UTC)
  bool free_plan = false;
  for (const auto& plan : figures.at("plans").as_array())
    free_plan = free_plan || plan.at("plan") == "free";
  EXPECT_TRUE(free_plan) << business->body;

  auto [revoked, revoked_out] = operators_command({"revoke", "--email", ann.email}, "op-revoke");
  ASSERT_EQ(revoked, 0) << revoked_out;
  EXPECT_NE(revoked_out.find("is no longer a platform operator"), std::string::npos) << revoked_out;
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/operator/me", ann.token)), 403);
}

TEST_F(Operators, TheConsoleIsServedWithItsSecurityHeadersAndRevalidated) {
  auto page = http_request(port(), "GET", "/console");
  ASSERT_EQ(status(page), 200);
  EXPECT_EQ(page->header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<script type=\"module\" src=\"/console/console.js\">"),
            std::string::npos);
  EXPECT_NE(page->header("content-security-policy").find("script-src 'self'"), std::string::npos);
  EXPECT_NE(page->header("content-security-policy").find("frame-ancestors 'none'"),
            std::string::npos);
  EXPECT_EQ(page->header("x-content-type-options"), "nosniff");
  EXPECT_EQ(page->header("cache-control"), "no-cache");
  const auto etag = page->header("etag");
  ASSERT_EQ(etag.rfind("W/\"", 0), 0u) << etag;
  auto again = http_request(port(), "GET", "/console", "If-None-Match: " + etag + "\r\n");
  EXPECT_EQ(status(again), 304);
  EXPECT_TRUE(again->body.empty());

  auto script = http_request(port(), "GET", "/console/console.js");
  ASSERT_EQ(status(script), 200);
  EXPECT_EQ(script->header("content-type"), "text/javascript; charset=utf-8");
  auto style = http_request(port(), "GET", "/console/console.css");
  ASSERT_EQ(status(style), 200);
  EXPECT_EQ(style->header("content-type"), "text/css; charset=utf-8");
  EXPECT_EQ(status(http_request(port(), "GET", "/console/nothing.js")), 404);
}

}  // namespace
}  // namespace liftoff::testing
