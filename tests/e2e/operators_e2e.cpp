// End-to-end: the operators' console and its API (docs/decisions/0025-operators-console.md). A
// platform operator is made and unmade from the command line; only an operator reads
// /v1/operator/..., which finds organizations and users by name, email or id and counts the
// business; the console's files are public, with their security headers.
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <limits>
#include <thread>

#include "e2e/e2e.hpp"
#include "liftoff/core/time.hpp"

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

// A new platform operator, and an org named `name` that another new user owns.
struct OperatorAndOrg {
  TestUser op;
  TestUser owner;
  std::string org;
};
OperatorAndOrg operator_and_org(unsigned short port, const std::string& tag,
                                const std::string& name) {
  OperatorAndOrg made{sign_up(port, "operator-" + tag), sign_up(port, tag + "-owner"), {}};
  grant_operator(made.op.email);
  auto created = send_json(port, "POST", "/v1/orgs", made.owner.token,
                           boost::json::serialize(json::object{{"name", name}}));
  EXPECT_EQ(status(created), 201) << (created ? created->body : "no response");
  if (status(created) == 201) made.org = json_of(*created).at("id").as_string();
  return made;
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
  // Each of the last 12 months' organizations, by the plan they are on now; this month's last.
  const auto cohorts = figures.at("cohorts").as_array();
  ASSERT_EQ(cohorts.size(), 12u) << business->body;
  const auto this_month =
      core::format_rfc3339(
          std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()))
          .substr(0, 7);
  EXPECT_EQ(cohorts.back().at("month").as_string(), this_month);
  EXPECT_LT(cohorts.front().at("month").as_string(), cohorts.back().at("month").as_string());
  const auto& now = cohorts.back().as_object();
  EXPECT_GE(now.at("orgs").as_int64(), 1);
  std::int64_t live = 0;
  for (const auto& [plan, orgs] : now.at("plans").as_object()) live += orgs.as_int64();
  EXPECT_EQ(live + now.at("deleted").as_int64(), now.at("orgs").as_int64()) << business->body;
  EXPECT_LE(now.at("paid").as_int64(), live);

  auto [revoked, revoked_out] = operators_command({"revoke", "--email", ann.email}, "op-revoke");
  ASSERT_EQ(revoked, 0) << revoked_out;
  EXPECT_NE(revoked_out.find("is no longer a platform operator"), std::string::npos) << revoked_out;
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/operator/me", ann.token)), 403);
}

// An operator suspends an organization: its members' sessions and its API keys are refused on
// its routes at once (their cached memberships reload), its audit log says so without the
// reason, and lifting the suspension gives the routes back.
TEST_F(Operators, ASuspendedOrganizationsMembersAndKeysAreRefusedUntilItIsLifted) {
  const auto [olga, owner, org] = operator_and_org(port(), "suspended", "Shady Ltd");
  ASSERT_FALSE(org.empty());
  auto key_made = send_json(port(), "POST", "/v1/orgs/" + org + "/api-keys", owner.token,
                            R"({"name":"ci","role":"viewer"})");
  ASSERT_EQ(status(key_made), 201) << key_made->body;
  const std::string key(json_of(*key_made).at("key").as_string());
  const auto org_path = "/v1/orgs/" + org;
  // Both credentials are checked (and cached) before the suspension.
  ASSERT_EQ(status(send_json(port(), "GET", org_path, owner.token)), 200);
  ASSERT_EQ(status(send_json(port(), "GET", org_path + "/collections", key)), 200);

  const auto path = "/v1/operator/orgs/" + org + "/suspension";
  // Bad input: no reason, an empty one, an unknown field, a member's own session, no such org.
  EXPECT_EQ(status(send_json(port(), "POST", path, olga.token, "{}")), 422);
  auto empty = send_json(port(), "POST", path, olga.token, R"({"reason":""})");
  ASSERT_EQ(status(empty), 422);
  EXPECT_EQ(problem(*empty).at("errors").at(0).at("field"), "reason");
  EXPECT_EQ(status(send_json(port(), "POST", path, olga.token, R"({"reason":"x","why":"y"})")),
            400);
  EXPECT_EQ(status(send_json(port(), "POST", path, owner.token, R"({"reason":"x"})")), 403);
  EXPECT_EQ(status(send_json(port(), "POST",
                             "/v1/operator/orgs/0190b5b0-0000-7000-8000-000000000000/suspension",
                             olga.token, R"({"reason":"x"})")),
            404);

  auto suspended = send_json(port(), "POST", path, olga.token, R"({"reason":"chargeback fraud"})");
  ASSERT_EQ(status(suspended), 200) << suspended->body;
  EXPECT_FALSE(json_of(*suspended).at("suspended_at").is_null());
  EXPECT_EQ(json_of(*suspended).at("suspended_reason"), "chargeback fraud");
  for (const auto& [credential, route] :
       {std::pair{owner.token, org_path}, {key, org_path + "/collections"}}) {
    auto refused = send_json(port(), "GET", route, credential);
    ASSERT_EQ(status(refused), 403) << route << ": " << refused->body;
    EXPECT_EQ(problem(*refused).at("detail"),
              "this organization is suspended; its owners may contact support");
  }
  auto listed = send_json(port(), "GET", "/v1/operator/orgs?q=" + org, olga.token);
  ASSERT_EQ(status(listed), 200);
  EXPECT_EQ(json_of(*listed).at("orgs").at(0).at("suspended_reason"), "chargeback fraud");

  auto lifted = send_json(port(), "DELETE", path, olga.token);
  ASSERT_EQ(status(lifted), 200) << lifted->body;
  EXPECT_TRUE(json_of(*lifted).at("suspended_at").is_null());
  EXPECT_TRUE(json_of(*lifted).at("suspended_reason").is_null());
  EXPECT_EQ(status(send_json(port(), "DELETE", path, olga.token)), 200);  // nothing to lift
  ASSERT_EQ(status(send_json(port(), "GET", org_path, owner.token)), 200);

  auto audit = send_json(port(), "GET", org_path + "/audit", owner.token);
  ASSERT_EQ(status(audit), 200) << audit->body;
  const auto events = json_of(*audit).at("events").as_array();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].at("action"), "org.unsuspended");
  EXPECT_EQ(events[1].at("action"), "org.suspended");
  EXPECT_EQ(events[1].at("actor").at("id").as_string(), olga.id);
  EXPECT_EQ(events[1].at("after").at("suspended"), true);
  EXPECT_EQ(audit->body.find("chargeback"), std::string::npos) << "the reason is the operators'";
}

TEST_F(Operators, AnOperatorReadsAnOrgsPlanAndUsageAndSetsItsPlan) {
  const auto [oscar, owner, org] = operator_and_org(port(), "contract", "Contract Co");
  ASSERT_FALSE(org.empty());
  const auto path = "/v1/operator/orgs/" + org;

  auto detail = send_json(port(), "GET", path, oscar.token);
  ASSERT_EQ(status(detail), 200) << detail->body;
  const auto page = json_of(*detail);
  EXPECT_EQ(page.at("org").at("name"), "Contract Co");
  EXPECT_EQ(page.at("plan").at("plan"), "free");
  EXPECT_EQ(page.at("plan").at("usage").at("seats"), 1);
  EXPECT_EQ(page.at("plan").at("limits").at("seats"), 5);
  EXPECT_EQ(page.at("usage").at("org_id").as_string(), org);
  EXPECT_EQ(page.at("usage").at("granularity"), "day");
  EXPECT_TRUE(page.at("usage").at("usage").is_array());
  EXPECT_EQ(status(send_json(port(), "GET", path, owner.token)), 403);
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/operator/orgs/not-an-id", oscar.token)), 404);
  EXPECT_EQ(
      status(send_json(port(), "GET", "/v1/operator/orgs/0190b5b0-0000-7000-8000-000000000000",
                       oscar.token)),
      404);

  // Bad input: each a precise 4xx naming the field.
  const auto plan_path = path + "/plan";
  const auto field_of = [&](const std::string& body) {
    auto r = send_json(port(), "PUT", plan_path, oscar.token, body);
    EXPECT_EQ(status(r), 422) << body << ": " << (r ? r->body : "no response");
    if (status(r) != 422) return std::string();
    return std::string(problem(*r).at("errors").at(0).at("field").as_string());
  };
  EXPECT_EQ(field_of(R"({"plan":"platinum"})"), "plan");
  EXPECT_EQ(field_of(R"({"plan":7})"), "plan");
  EXPECT_EQ(field_of(R"({"plan":"pro","limits":[1]})"), "limits");
  EXPECT_EQ(field_of(R"({"plan":"pro","limits":{"seats":-1}})"), "limits.seats");
  EXPECT_EQ(field_of(R"({"plan":"pro","limits":{"parking_spots":3}})"), "limits.parking_spots");
  EXPECT_EQ(field_of(R"({"plan":"pro","force":"yes"})"), "force");
  EXPECT_EQ(status(send_json(port(), "PUT", plan_path, oscar.token, R"({"plan":"pro","x":1})")),
            400);
  EXPECT_EQ(status(send_json(port(), "PUT", plan_path, oscar.token, "{")), 400);
  EXPECT_EQ(status(send_json(port(), "PUT", plan_path, owner.token, R"({"plan":"pro"})")), 403);

  // The contract: Enterprise with 500 seats; the owner sees it at once.
  auto set = send_json(port(), "PUT", plan_path, oscar.token,
                       R"({"plan":"enterprise","limits":{"seats":500}})");
  ASSERT_EQ(status(set), 200) << set->body;
  EXPECT_EQ(json_of(*set).at("plan"), "enterprise");
  EXPECT_EQ(json_of(*set).at("limits").at("seats"), 500);
  EXPECT_EQ(json_of(*set).at("overrides").at("seats"), 500);
  auto owners_view = send_json(port(), "GET", "/v1/orgs/" + org + "/plan", owner.token);
  ASSERT_EQ(status(owners_view), 200) << owners_view->body;
  EXPECT_EQ(json_of(*owners_view).at("plan"), "enterprise");
  EXPECT_EQ(json_of(*owners_view).at("limits").at("seats"), 500);

  // Fewer seats than the org fills is refused, unless forced.
  auto over =
      send_json(port(), "PUT", plan_path, oscar.token, R"({"plan":"free","limits":{"seats":0}})");
  ASSERT_EQ(status(over), 409) << over->body;
  EXPECT_EQ(problem(*over).at("errors").at(0).at("field"), "seats");
  auto forced = send_json(port(), "PUT", plan_path, oscar.token,
                          R"({"plan":"free","limits":{"seats":0},"force":true})");
  ASSERT_EQ(status(forced), 200) << forced->body;
  EXPECT_EQ(json_of(*forced).at("limits").at("seats"), 0);

  auto audit = send_json(port(), "GET", "/v1/orgs/" + org + "/audit", owner.token);
  ASSERT_EQ(status(audit), 200) << audit->body;
  const auto events = json_of(*audit).at("events").as_array();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].at("action"), "org.plan_changed");
  EXPECT_EQ(events[0].at("actor").at("id").as_string(), oscar.id);
  EXPECT_EQ(events[0].at("after").at("plan"), "free");
  EXPECT_EQ(events[1].at("after").at("plan"), "enterprise");
}

// Slow statements and index advice for operators: a login whose user lookup waits on a lock the
// test holds is slow; the operators' list shows it with its count, times and plan, whose constants
// (the email the plan was made for) are redacted. Index advice and the statements with the most
// time (pg_stat_statements) answer for every cluster.
TEST(OperatorsDatabase, SlowStatementsWithRedactedPlansStatementTotalsAndIndexAdvice) {
  Server server(Server::Env{{"LIFTOFF_SLOW_STATEMENT_THRESHOLD", "150ms"}});
  ASSERT_TRUE(server.wait_ready()) << server.process->log();
  auto olive = sign_up(server.port, "operator-olive");
  grant_operator(olive.email);
  auto slow_user = sign_up(server.port, "slow-reader");

  {
    SqlSession lock;
    ASSERT_TRUE(lock.run("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE"));
    std::thread release([&lock] {
      std::this_thread::sleep_for(400ms);
      EXPECT_TRUE(lock.run("COMMIT"));
    });
    auto login = post_json(server.port, "/v1/auth/login",
                           boost::json::serialize(boost::json::object{
                               {"email", slow_user.email}, {"password", "a sturdy passphrase"}}));
    release.join();
    ASSERT_TRUE(login);
    EXPECT_EQ(login->status, 200) << login->body;
  }

  // The plan follows the slow statement, off the request path.
  json::object by_email;
  std::string answer;
  for (int i = 0; i < 100 && (by_email.empty() || by_email.at("plan").is_null()); ++i) {
    auto slow = send_json(server.port, "GET", "/v1/operator/slow-statements", olive.token);
    ASSERT_EQ(status(slow), 200) << (slow ? slow->body : "no response");
    answer = slow->body;
    const auto body = json_of(*slow);
    EXPECT_EQ(body.at("threshold_ms"), 150);
    for (const auto& item : body.at("statements").as_array())
      if (item.at("statement") == "identity.user_by_email") by_email = item.as_object();
    if (by_email.empty() || by_email.at("plan").is_null()) std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(by_email.empty()) << answer;
  EXPECT_EQ(by_email.at("node"), "primary");
  EXPECT_GE(by_email.at("count").to_number<std::int64_t>(), 1);
  EXPECT_GE(by_email.at("max_ms").to_number<double>(), 150.0);
  EXPECT_NE(by_email.at("sql").as_string().find("WHERE email = $1"), std::string::npos);
  ASSERT_FALSE(by_email.at("plan").is_null()) << answer;
  const auto plan = json::serialize(by_email.at("plan"));
  EXPECT_NE(plan.find("Node Type"), std::string::npos) << plan;
  EXPECT_NE(plan.find("email = ?"), std::string::npos) << plan;
  EXPECT_EQ(answer.find(slow_user.email), std::string::npos) << "the email is redacted: " << answer;
  EXPECT_EQ(status(send_json(server.port, "GET", "/v1/operator/slow-statements", slow_user.token)),
            403);

  // Index advice on every cluster (it creates pg_stat_statements and hypopg where missing).
  auto advice = send_json(server.port, "POST", "/v1/operator/index-advice", olive.token);
  ASSERT_EQ(status(advice), 200) << (advice ? advice->body : "no response");
  const auto advised = json_of(*advice).at("clusters").as_array();
  ASSERT_EQ(advised.size(), 1u) << advice->body;
  EXPECT_EQ(advised[0].at("cluster"), "main");
  EXPECT_FALSE(advised[0].as_object().contains("problem")) << advice->body;
  EXPECT_GE(advised[0].at("statements").to_number<std::int64_t>(), 1) << advice->body;
  EXPECT_TRUE(advised[0].at("indexes").is_array());
  EXPECT_EQ(status(send_json(server.port, "POST", "/v1/operator/index-advice", slow_user.token)),
            403);

  // Bad input, then the statements with the most time: normalized, so no value is in them.
  for (const auto* query : {"?limit=0", "?limit=101", "?limit=ten", "?top=5"})
    EXPECT_EQ(status(send_json(server.port, "GET", std::string("/v1/operator/statements") + query,
                               olive.token)),
              400)
        << query;
  auto totals = send_json(server.port, "GET", "/v1/operator/statements?limit=50", olive.token);
  ASSERT_EQ(status(totals), 200) << (totals ? totals->body : "no response");
  const auto clusters = json_of(*totals).at("clusters").as_array();
  ASSERT_EQ(clusters.size(), 1u);
  EXPECT_FALSE(clusters[0].as_object().contains("problem")) << totals->body;
  const auto statements = clusters[0].at("statements").as_array();
  ASSERT_FALSE(statements.empty()) << totals->body;
  EXPECT_LE(statements.size(), 50u);
  double previous = std::numeric_limits<double>::max();
  for (const auto& statement : statements) {
    EXPECT_GE(statement.at("calls").to_number<std::int64_t>(), 1);
    const double total = statement.at("total_ms").to_number<double>();
    EXPECT_LE(total, previous) << "most time first";
    previous = total;
    const double share = statement.at("share").to_number<double>();
    EXPECT_TRUE(share >= 0 && share <= 1) << share;
  }
  EXPECT_EQ(totals->body.find(slow_user.email), std::string::npos) << totals->body;
  server.process->signal(SIGTERM);
  EXPECT_EQ(server.process->wait(15s), 0);
}

TEST_F(Operators, TheConsoleIsServedWithItsSecurityHeadersAndRevalidated) {
  auto page = http_request(port(), "GET", "/console");
  ASSERT_EQ(status(page), 200);
  EXPECT_EQ(page->header("content-type"), "text/html; charset=utf-8");
  // The page names its script by a URL with the script's version, cached for a year; the page
  // itself is revalidated on every load.
  const std::string script_tag = "<script type=\"module\" src=\"/console/console.js?v=";
  const auto tag_at = page->body.find(script_tag);
  ASSERT_NE(tag_at, std::string::npos) << page->body;
  const auto version_at = tag_at + script_tag.size() - 2;  // at "v="
  const auto version = page->body.substr(version_at, page->body.find('"', version_at) - version_at);
  EXPECT_EQ(version.size(), 18u) << version;
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

  auto script = http_request(port(), "GET", "/console/console.js?" + version);
  ASSERT_EQ(status(script), 200);
  EXPECT_EQ(script->header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(script->header("cache-control"), "public, max-age=31536000, immutable");
  EXPECT_NE(script->body.find("parseMetrics"), std::string::npos);
  // Another version (an old page's) or none: the same script, revalidated on every load.
  for (const auto* query : {"?v=0000000000000000", ""}) {
    auto other = http_request(port(), "GET", std::string("/console/console.js") + query);
    ASSERT_EQ(status(other), 200) << query;
    EXPECT_EQ(other->header("cache-control"), "no-cache") << query;
  }
  auto style = http_request(port(), "GET", "/console/console.css");
  ASSERT_EQ(status(style), 200);
  EXPECT_EQ(style->header("content-type"), "text/css; charset=utf-8");
  EXPECT_EQ(status(http_request(port(), "GET", "/console/nothing.js")), 404);
}

}  // namespace
}  // namespace liftoff::testing
