// End-to-end: plans and their limits. The catalogue, an org's plan with its usage, seats refused
// with a 402 that names the limit, an owner's upgrade and refused downgrade, and the operator's
// command that sets Enterprise with a contract's limits.
#include <boost/json/array.hpp>

#include "e2e/e2e.hpp"

namespace liftoff::testing {
namespace {
namespace json = boost::json;

class Plans : public E2E {};

std::string create_org(unsigned short port, const TestUser& owner) {
  auto r = send_json(port, "POST", "/v1/orgs", owner.token, R"({"name":"Plans Inc"})");
  EXPECT_EQ(status(r), 201) << (r ? r->body : "no response");
  return r && r->status == 201 ? std::string(json_of(*r).at("id").as_string()) : "";
}

std::optional<HttpResponse> invite(unsigned short port, const std::string& org,
                                   const TestUser& inviter, const std::string& email) {
  return send_json(port, "POST", "/v1/orgs/" + org + "/invitations", inviter.token,
                   json::serialize(json::object{{"email", email}, {"role", "viewer"}}));
}

TEST_F(Plans, TheCatalogueIsPublic) {
  auto r = http_request(port(), "GET", "/v1/plans");
  ASSERT_EQ(status(r), 200) << r->body;
  const auto plans = json_of(*r).at("plans").as_array();
  ASSERT_EQ(plans.size(), 4u);
  EXPECT_EQ(plans[0].at("name"), "free");
  EXPECT_EQ(plans[1].at("name"), "starter");
  EXPECT_EQ(plans[1].at("monthly_price_cents"), 2900);
  EXPECT_EQ(plans[1].at("limits").at("seats"), 100);
  EXPECT_EQ(plans[2].at("limits").at("seats"), 1000);
  EXPECT_EQ(plans[3].at("name"), "enterprise");
  EXPECT_EQ(plans[3].at("self_serve"), false);
}

TEST_F(Plans, SeatsRunOutWithA402NamingTheLimitAndAnUpgradeLiftsIt) {
  auto ann = sign_up(port(), "plans-owner");
  auto org = create_org(port(), ann);
  auto plan = send_json(port(), "GET", "/v1/orgs/" + org + "/plan", ann.token);
  ASSERT_EQ(status(plan), 200) << plan->body;
  EXPECT_EQ(json_of(*plan).at("plan"), "free");
  EXPECT_EQ(json_of(*plan).at("limits").at("seats"), 5);
  EXPECT_EQ(json_of(*plan).at("usage").at("seats"), 1);

  // The owner and four pending invitations fill the free plan's five seats.
  for (int i = 0; i < 4; ++i) {
    auto r = invite(port(), org, ann, unique_email("plans-seat"));
    ASSERT_EQ(status(r), 201) << r->body;
  }
  auto over = invite(port(), org, ann, unique_email("plans-over"));
  ASSERT_EQ(status(over), 402) << over->body;
  auto body = problem(*over);
  EXPECT_EQ(body.at("type"), "urn:liftoff:problem:plan-limit-reached");
  EXPECT_EQ(body.at("limit").at("name"), "seats");
  EXPECT_EQ(body.at("limit").at("value"), 5);
  EXPECT_EQ(body.at("limit").at("plan"), "free");
  EXPECT_EQ(body.at("limit").at("lifted_by"), "starter");

  auto up =
      send_json(port(), "PUT", "/v1/orgs/" + org + "/plan", ann.token, R"({"plan":"starter"})");
  ASSERT_EQ(status(up), 200) << up->body;
  EXPECT_EQ(json_of(*up).at("plan"), "starter");
  EXPECT_EQ(status(invite(port(), org, ann, unique_email("plans-after"))), 201);

  // Bad input: an unknown plan, a missing field, Enterprise (the operator's).
  auto unknown =
      send_json(port(), "PUT", "/v1/orgs/" + org + "/plan", ann.token, R"({"plan":"platinum"})");
  ASSERT_EQ(status(unknown), 422);
  EXPECT_EQ(problem(*unknown).at("errors").at(0).at("field"), "plan");
  EXPECT_EQ(status(send_json(port(), "PUT", "/v1/orgs/" + org + "/plan", ann.token, "{}")), 422);
  EXPECT_EQ(status(send_json(port(), "PUT", "/v1/orgs/" + org + "/plan", ann.token,
                             R"({"plan":"enterprise"})")),
            403);
}

TEST_F(Plans, OnlyAdminsSeeThePlanAndOnlyOwnersChangeIt) {
  auto ann = sign_up(port(), "plans-owner2");
  auto org = create_org(port(), ann);
  for (const auto& [role, sees] : {std::pair{"admin", 200}, std::pair{"member", 403}}) {
    auto user = sign_up(port(), std::string("plans-") + role);
    auto invited = send_json(port(), "POST", "/v1/orgs/" + org + "/invitations", ann.token,
                             json::serialize(json::object{{"email", user.email}, {"role", role}}));
    ASSERT_EQ(status(invited), 201) << invited->body;
    auto token = std::string(json_of(*invited).at("token").as_string());
    ASSERT_EQ(status(accept_invitation(port(), token, user.token)), 200);
    EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org + "/plan", user.token)), sees);
    EXPECT_EQ(status(send_json(port(), "PUT", "/v1/orgs/" + org + "/plan", user.token,
                               R"({"plan":"pro"})")),
              403);
  }
  auto outsider = sign_up(port(), "plans-outsider");
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org + "/plan", outsider.token)), 404);
}

TEST_F(Plans, TheOperatorSetsEnterpriseWithTheContractsLimitsAndADowngradeOverThemIsRefused) {
  auto ann = sign_up(port(), "plans-enterprise");
  auto org = create_org(port(), ann);
  auto operate = [&](std::vector<std::string> args, const std::string& log) {
    std::vector<std::string> argv = {LIFTOFF_BINARY, "orgs", "plan", "--org", org};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv, {{"LIFTOFF_DATABASE_URL", test_database_url()}}, log_path(log));
    auto code = p.wait(30s);
    return std::pair{code.value_or(-1), p.log()};
  };
  auto [code, out] = operate({"--plan", "enterprise", "--limits", R"({"seats": 2})"}, "plan-set");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("plan enterprise"), std::string::npos) << out;
  auto plan = send_json(port(), "GET", "/v1/orgs/" + org + "/plan", ann.token);
  ASSERT_EQ(status(plan), 200);
  EXPECT_EQ(json_of(*plan).at("plan"), "enterprise");
  EXPECT_EQ(json_of(*plan).at("limits").at("seats"), 2);
  EXPECT_EQ(json_of(*plan).at("overrides").at("seats"), 2);
  EXPECT_EQ(status(invite(port(), org, ann, unique_email("plans-e1"))), 201);
  auto over = invite(port(), org, ann, unique_email("plans-e2"));
  ASSERT_EQ(status(over), 402);
  EXPECT_EQ(problem(*over).at("limit").at("lifted_by"), "enterprise");

  // Bad operator input: a usage error naming the limit, nothing changed.
  auto [bad, bad_out] = operate({"--plan", "enterprise", "--limits", R"({"sets": 2})"}, "plan-bad");
  EXPECT_EQ(bad, 2) << bad_out;
  EXPECT_NE(bad_out.find("limits.sets"), std::string::npos) << bad_out;

  // Two members on a one-seat contract: refused, naming seats, unless forced.
  auto [raised, raised_out] =
      operate({"--plan", "enterprise", "--limits", R"({"seats": 3})"}, "plan-raised");
  ASSERT_EQ(raised, 0) << raised_out;
  auto bob = sign_up(port(), "plans-bob");
  auto invited = send_json(port(), "POST", "/v1/orgs/" + org + "/invitations", ann.token,
                           json::serialize(json::object{{"email", bob.email}, {"role", "viewer"}}));
  ASSERT_EQ(status(invited), 201) << invited->body;
  ASSERT_EQ(status(accept_invitation(port(), std::string(json_of(*invited).at("token").as_string()),
                                     bob.token)),
            200);
  auto [refused, refused_out] =
      operate({"--plan", "enterprise", "--limits", R"({"seats": 1})"}, "plan-refused");
  EXPECT_EQ(refused, 1) << refused_out;
  EXPECT_NE(refused_out.find("seats: 2 in use; the plan allows 1"), std::string::npos)
      << refused_out;
  auto [forced, forced_out] =
      operate({"--plan", "enterprise", "--limits", R"({"seats": 1})", "--force"}, "plan-forced");
  EXPECT_EQ(forced, 0) << forced_out;
  EXPECT_EQ(count_of("SELECT count(*) FROM audit_events WHERE org_id = $1::uuid "
                     "AND action = 'org.plan_changed' AND actor_type = 'system'",
                     db::Params(org)),
            3);
}

}  // namespace
}  // namespace liftoff::testing

namespace liftoff::testing {
namespace {

TEST_F(Plans, CollectionsPastThePlanAre402) {
  auto ann = sign_up(port(), "plans-collections");
  auto org = create_org(port(), ann);
  const auto allowed = 10;  // free
  for (int i = 0; i < allowed; ++i) {
    auto r = send_json(port(), "POST", "/v1/orgs/" + org + "/collections", ann.token,
                       R"({"name":"c)" + std::to_string(i) + R"(","fields":[]})");
    ASSERT_EQ(status(r), 201) << r->body;
  }
  auto over = send_json(port(), "POST", "/v1/orgs/" + org + "/collections", ann.token,
                        R"({"name":"one_more","fields":[]})");
  ASSERT_EQ(status(over), 402) << over->body;
  auto body = problem(*over);
  EXPECT_EQ(body.at("limit").at("name"), "collections");
  EXPECT_EQ(body.at("limit").at("value"), allowed);
  EXPECT_EQ(body.at("limit").at("lifted_by"), "starter");
  auto plan = send_json(port(), "GET", "/v1/orgs/" + org + "/plan", ann.token);
  ASSERT_EQ(status(plan), 200);
  EXPECT_EQ(json_of(*plan).at("usage").at("collections"), allowed);
  EXPECT_EQ(json_of(*plan).at("usage").at("records"), 0);
  // Upgraded, the org may have more.
  ASSERT_EQ(status(send_json(port(), "PUT", "/v1/orgs/" + org + "/plan", ann.token,
                             R"({"plan":"starter"})")),
            200);
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs/" + org + "/collections", ann.token,
                             R"({"name":"one_more","fields":[]})")),
            201);
  // And a downgrade back is refused, naming collections.
  auto down =
      send_json(port(), "PUT", "/v1/orgs/" + org + "/plan", ann.token, R"({"plan":"free"})");
  ASSERT_EQ(status(down), 409) << down->body;
  EXPECT_EQ(problem(*down).at("errors").at(0).at("field"), "collections");
}

}  // namespace
}  // namespace liftoff::testing
