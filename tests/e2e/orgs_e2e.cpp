// End-to-end: organizations, members and roles, invitations, API keys and the audit log, against
// the real server and database.
#include <boost/json/array.hpp>
#include <set>

#include "e2e/e2e.hpp"
#include "support/async.hpp"

namespace liftoff::testing {
namespace {
namespace json = boost::json;

class Orgs : public E2E {
 public:
  using E2E::port;
};

std::string body_of(json::object object) {
  return json::serialize(object);
}

// A new org owned by `owner`; its id.
std::string create_org(const TestUser& owner, const std::string& name = "Acme") {
  auto r = send_json(Orgs::port(), "POST", "/v1/orgs", owner.token, body_of({{"name", name}}));
  EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no response");
  return r && r->status == 201 ? std::string(json_of(*r).at("id").as_string()) : "";
}

// Invites `user` with `role` and has them accept; the accept response.
std::optional<HttpResponse> join(const std::string& org, const TestUser& inviter,
                                 const TestUser& user, const std::string& role) {
  auto invited = send_json(Orgs::port(), "POST", "/v1/orgs/" + org + "/invitations", inviter.token,
                           body_of({{"email", user.email}, {"role", role}}));
  EXPECT_TRUE(invited && invited->status == 201) << (invited ? invited->body : "no response");
  if (!invited || invited->status != 201) return std::nullopt;
  std::string token(json_of(*invited).at("token").as_string());
  return accept_invitation(Orgs::port(), token, user.token);
}

std::string role_of(const std::string& org, const TestUser& reader, const std::string& user_id) {
  auto r = send_json(Orgs::port(), "GET", "/v1/orgs/" + org + "/members", reader.token);
  if (!r || r->status != 200) return "";
  auto body = json_of(*r);
  for (const auto& m : body.at("members").as_array()) {
    if (m.at("user").at("id").as_string() == user_id) return std::string(m.at("role").as_string());
  }
  return "";
}

// Runs SQL on the test database as its superuser (what only an operator could do).
void run_sql_as_superuser(const std::string& sql) {
  SqlSession().run(sql);
}

TEST_F(Orgs, CreatorIsOwnerAndTheOrgShowsInMeAndMyList) {
  auto ada = sign_up(port(), "creator");
  auto r = send_json(port(), "POST", "/v1/orgs", ada.token,
                     body_of({{"name", "Robert'); DROP TABLE orgs;-- \xF0\x9F\x9A\x80"}}));
  ASSERT_EQ(status(r), 201) << r->body;
  auto org = json_of(*r);
  EXPECT_EQ(org.at("role").as_string(), "owner");
  EXPECT_EQ(org.at("name").as_string(), "Robert'); DROP TABLE orgs;-- \xF0\x9F\x9A\x80");
  std::string id(org.at("id").as_string());

  auto me = send_json(port(), "GET", "/v1/me", ada.token);
  ASSERT_EQ(status(me), 200);
  auto memberships = json_of(*me).at("memberships").as_array();
  ASSERT_EQ(memberships.size(), 1u);
  EXPECT_EQ(memberships[0].at("org_id").as_string(), id);
  EXPECT_EQ(memberships[0].at("org_name").as_string(), org.at("name").as_string());
  EXPECT_EQ(memberships[0].at("role").as_string(), "owner");

  auto mine = send_json(port(), "GET", "/v1/orgs", ada.token);
  ASSERT_EQ(status(mine), 200);
  ASSERT_EQ(json_of(*mine).at("orgs").as_array().size(), 1u);

  auto renamed =
      send_json(port(), "PATCH", "/v1/orgs/" + id, ada.token, body_of({{"name", "Acme Inc"}}));
  ASSERT_EQ(status(renamed), 200) << renamed->body;
  EXPECT_EQ(json_of(*send_json(port(), "GET", "/v1/orgs/" + id, ada.token)).at("name"), "Acme Inc");
  EXPECT_EQ(json_of(*send_json(port(), "GET", "/v1/me", ada.token))
                .at("memberships")
                .as_array()[0]
                .at("org_name"),
            "Acme Inc");
}

// Per-tenant metrics: the organizations with the most requests (and server errors, and database
// time) are in /metrics by id, a bounded number of them however many organizations there are.
TEST(OrgsMetrics, TheBusiestOrganizationsAreCountedByIdAndTheRestAreNot) {
  OwnServer own(Server::Env{{"LIFTOFF_TENANT_METRICS", "2"}});
  auto owner = sign_up(own.port(), "tenant-metrics");
  auto org_of = [&](const std::string& name) {
    auto r = send_json(own.port(), "POST", "/v1/orgs", owner.token, body_of({{"name", name}}));
    EXPECT_EQ(status(r), 201);
    return std::string(json_of(*r).at("id").as_string());
  };
  auto busy = org_of("Busy");
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(status(send_json(own.port(), "GET", "/v1/orgs/" + busy, owner.token)), 200);
  std::vector<std::string> quiet;
  for (int i = 0; i < 6; ++i) {
    quiet.push_back(org_of("Quiet " + std::to_string(i)));
    EXPECT_EQ(status(send_json(own.port(), "GET", "/v1/orgs/" + quiet.back(), owner.token)), 200);
  }
  auto text = http_request(own.port(), "GET", "/metrics")->body;
  EXPECT_EQ(metric_in(http_request(own.port(), "GET", "/metrics"),
                      "tenant_requests_total{org=\"" + busy + "\"}"),
            12);
  EXPECT_GT(metric_in(http_request(own.port(), "GET", "/metrics"),
                      "tenant_database_seconds_total{org=\"" + busy + "\"}"),
            0);
  // Two by requests, two by database time (no server errors): at most four of the seven.
  std::size_t series = 0;
  for (auto at = text.find("\ntenant_requests_total{org="); at != std::string::npos;
       at = text.find("\ntenant_requests_total{org=", at + 1))
    ++series;
  EXPECT_GE(series, 1U);
  EXPECT_LE(series, 4U) << text;
}

TEST_F(Orgs, BadBodiesGetPrecise4xx) {
  auto ada = sign_up(port(), "badbody");
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs", ada.token, R"({"name":"A","x":1})")), 400);
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs", ada.token, R"({"name":7})")), 422);
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs", ada.token, R"({"name":""})")), 422);
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs", ada.token, R"({"name":)")), 400);
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs", "", R"({"name":"A"})")), 401);
  auto org = create_org(ada);
  auto bad_role = send_json(port(), "POST", "/v1/orgs/" + org + "/invitations", ada.token,
                            body_of({{"email", "x@example.com"}, {"role", "superuser"}}));
  ASSERT_EQ(status(bad_role), 422);
  EXPECT_EQ(problem(*bad_role).at("errors").as_array()[0].at("field"), "role");
  auto bad_email = send_json(port(), "POST", "/v1/orgs/" + org + "/invitations", ada.token,
                             body_of({{"email", "not an email"}, {"role", "member"}}));
  EXPECT_EQ(status(bad_email), 422);
}

TEST_F(Orgs, OutsidersGet404AndSmallRolesGet403) {
  auto owner = sign_up(port(), "owner"), outsider = sign_up(port(), "outsider"),
       viewer = sign_up(port(), "viewer");
  auto org = create_org(owner);
  ASSERT_EQ(status(join(org, owner, viewer, "viewer")), 200);

  for (const std::string& path : {"/v1/orgs/" + org, "/v1/orgs/" + org + "/members",
                                  "/v1/orgs/" + org + "/audit", "/v1/orgs/" + org + "/api-keys"}) {
    auto r = send_json(port(), "GET", path, outsider.token);
    ASSERT_EQ(status(r), 404) << path;
    EXPECT_EQ(problem(*r).at("detail"), "no such organization") << path;
  }
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/0190b5b0-0000-7000-8000-000000000000",
                             owner.token)),
            404);
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/not-a-uuid", owner.token)), 404);
  EXPECT_EQ(status(send_json(port(), "DELETE", "/v1/orgs/" + org, outsider.token)), 404);

  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org + "/members", viewer.token)), 200);
  EXPECT_EQ(status(send_json(port(), "PATCH", "/v1/orgs/" + org, viewer.token,
                             body_of({{"name", "Mine now"}}))),
            403);
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org + "/audit", viewer.token)), 403);
  EXPECT_EQ(status(send_json(port(), "PATCH", "/v1/orgs/" + org + "/members/" + viewer.id,
                             viewer.token, body_of({{"role", "owner"}}))),
            403);
}

TEST_F(Orgs, RolesCannotBeRaisedAboveOnesOwn) {
  auto owner = sign_up(port(), "esc-owner"), admin = sign_up(port(), "esc-admin"),
       member = sign_up(port(), "esc-member");
  auto org = create_org(owner);
  ASSERT_EQ(status(join(org, owner, admin, "admin")), 200);
  ASSERT_EQ(status(join(org, owner, member, "member")), 200);
  auto members = "/v1/orgs/" + org + "/members/";

  // An admin cannot make anyone (themselves included) an owner, nor touch an owner.
  EXPECT_EQ(status(send_json(port(), "PATCH", members + admin.id, admin.token,
                             body_of({{"role", "owner"}}))),
            403);
  EXPECT_EQ(status(send_json(port(), "PATCH", members + member.id, admin.token,
                             body_of({{"role", "owner"}}))),
            403);
  EXPECT_EQ(status(send_json(port(), "PATCH", members + owner.id, admin.token,
                             body_of({{"role", "viewer"}}))),
            403);
  EXPECT_EQ(status(send_json(port(), "DELETE", members + owner.id, admin.token)), 403);
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs/" + org + "/invitations", admin.token,
                             body_of({{"email", "boss@example.com"}, {"role", "owner"}}))),
            403);
  // ... but may manage those at or below their role.
  auto promoted =
      send_json(port(), "PATCH", members + member.id, admin.token, body_of({{"role", "admin"}}));
  ASSERT_EQ(status(promoted), 200) << promoted->body;
  EXPECT_EQ(role_of(org, owner, member.id), "admin");
  // A member cannot manage keys or invitations.
  auto demoted =
      send_json(port(), "PATCH", members + member.id, owner.token, body_of({{"role", "member"}}));
  ASSERT_EQ(status(demoted), 200);
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs/" + org + "/api-keys", member.token,
                             body_of({{"name", "ci"}, {"role", "viewer"}}))),
            403);
  EXPECT_EQ(status(send_json(port(), "PATCH", members + "0190b5b0-0000-7000-8000-000000000000",
                             owner.token, body_of({{"role", "member"}}))),
            404);
}

TEST_F(Orgs, TheLastOwnerCannotLeaveOrBeDemoted) {
  auto owner = sign_up(port(), "last-owner"), second = sign_up(port(), "second-owner");
  auto org = create_org(owner);
  auto members = "/v1/orgs/" + org + "/members/";
  auto demote =
      send_json(port(), "PATCH", members + owner.id, owner.token, body_of({{"role", "admin"}}));
  ASSERT_EQ(status(demote), 409);
  EXPECT_EQ(problem(*demote).at("type"), "urn:liftoff:problem:conflict");
  EXPECT_EQ(status(send_json(port(), "DELETE", members + owner.id, owner.token)), 409);

  ASSERT_EQ(status(join(org, owner, second, "owner")), 200);
  EXPECT_EQ(status(send_json(port(), "DELETE", members + owner.id, owner.token)), 204);  // leaves
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org, owner.token)), 404);
  EXPECT_EQ(status(send_json(port(), "DELETE", members + second.id, second.token)), 409);
}

TEST_F(Orgs, ConcurrentDemotionsAlwaysLeaveAnOwner) {
  auto a = sign_up(port(), "race-a"), b = sign_up(port(), "race-b");
  auto org = create_org(a);
  ASSERT_EQ(status(join(org, a, b, "owner")), 200);
  auto members = "/v1/orgs/" + org + "/members/";
  for (int round = 0; round < 8; ++round) {
    // Each owner demotes the other at the same moment: at most one may win.
    std::optional<HttpResponse> ra, rb;
    std::thread ta([&] {
      ra = send_json(port(), "PATCH", members + b.id, a.token, body_of({{"role", "admin"}}));
    });
    std::thread tb([&] {
      rb = send_json(port(), "PATCH", members + a.id, b.token, body_of({{"role", "admin"}}));
    });
    ta.join();
    tb.join();
    ASSERT_TRUE(ra && rb);
    int wins = (ra->status == 200) + (rb->status == 200);
    EXPECT_EQ(wins, 1) << ra->body << " / " << rb->body;
    for (const auto& r : {*ra, *rb})
      EXPECT_TRUE(r.status == 200 || r.status == 409 || r.status == 403) << r.body;
    auto role_a = role_of(org, a, a.id), role_b = role_of(org, a, b.id);
    ASSERT_TRUE(role_a == "owner" || role_b == "owner") << role_a << " " << role_b;
    // The winner promotes the loser back for the next round.
    const auto& winner = role_a == "owner" ? a : b;
    const auto& loser = role_a == "owner" ? b : a;
    ASSERT_EQ(status(send_json(port(), "PATCH", members + loser.id, winner.token,
                               body_of({{"role", "owner"}}))),
              200);
  }
}

TEST_F(Orgs, InvitationsAreSingleUseForTheInvitedAddressAndExpire) {
  auto owner = sign_up(port(), "inv-owner"), invitee = sign_up(port(), "invitee"),
       stranger = sign_up(port(), "stranger");
  auto org = create_org(owner);
  auto invited = send_json(port(), "POST", "/v1/orgs/" + org + "/invitations", owner.token,
                           body_of({{"email", invitee.email}, {"role", "member"}}));
  ASSERT_EQ(status(invited), 201) << invited->body;
  auto invitation = json_of(*invited);
  std::string token(invitation.at("token").as_string());
  EXPECT_EQ(token.rfind("li_", 0), 0u);
  // Pending: listed without its token; a second invitation to the same address conflicts.
  auto pending = send_json(port(), "GET", "/v1/orgs/" + org + "/invitations", owner.token);
  ASSERT_EQ(status(pending), 200);
  ASSERT_EQ(json_of(*pending).at("invitations").as_array().size(), 1u);
  EXPECT_FALSE(json_of(*pending).at("invitations").as_array()[0].as_object().contains("token"));
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs/" + org + "/invitations", owner.token,
                             body_of({{"email", invitee.email}, {"role", "viewer"}}))),
            409);

  EXPECT_EQ(status(accept_invitation(port(), token, stranger.token)), 403);  // not their address
  auto accepted = accept_invitation(port(), token, invitee.token);
  ASSERT_EQ(status(accepted), 200) << accepted->body;
  EXPECT_EQ(json_of(*accepted).at("role"), "member");
  EXPECT_EQ(role_of(org, owner, invitee.id), "member");
  EXPECT_EQ(status(accept_invitation(port(), token, invitee.token)), 409);  // used already
  EXPECT_EQ(status(accept_invitation(port(), "li_guessed", invitee.token)), 404);
  // The token belongs in the body: the old path form is no route.
  EXPECT_EQ(
      status(send_json(port(), "POST", "/v1/invitations/" + token + "/accept", invitee.token)),
      404);

  // Revoked, then expired: 410 Gone.
  auto again = send_json(port(), "POST", "/v1/orgs/" + org + "/invitations", owner.token,
                         body_of({{"email", stranger.email}, {"role", "viewer"}}));
  ASSERT_EQ(status(again), 201);
  std::string id(json_of(*again).at("id").as_string());
  std::string token2(json_of(*again).at("token").as_string());
  EXPECT_EQ(
      status(send_json(port(), "DELETE", "/v1/orgs/" + org + "/invitations/" + id, owner.token)),
      204);
  EXPECT_EQ(status(accept_invitation(port(), token2, stranger.token)), 410);
  auto third = send_json(port(), "POST", "/v1/orgs/" + org + "/invitations", owner.token,
                         body_of({{"email", stranger.email}, {"role", "viewer"}}));
  ASSERT_EQ(status(third), 201);
  std::string id3(json_of(*third).at("id").as_string());
  run_sql_as_superuser(
      "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = '" + id3 + "'");
  auto expired = accept_invitation(port(), std::string(json_of(*third).at("token").as_string()),
                                   stranger.token);
  ASSERT_EQ(status(expired), 410);
  EXPECT_EQ(problem(*expired).at("type"), "urn:liftoff:problem:gone");
  // An expired invitation does not block a new one.
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs/" + org + "/invitations", owner.token,
                             body_of({{"email", stranger.email}, {"role", "viewer"}}))),
            201);
}

TEST_F(Orgs, ApiKeysActForTheirOrgWithTheirRole) {
  auto owner = sign_up(port(), "key-owner");
  auto org = create_org(owner), other = create_org(owner, "Other");
  auto created = send_json(port(), "POST", "/v1/orgs/" + org + "/api-keys", owner.token,
                           body_of({{"name", "ci"}, {"role", "viewer"}}));
  ASSERT_EQ(status(created), 201) << created->body;
  std::string key(json_of(*created).at("key").as_string());
  std::string key_id(json_of(*created).at("id").as_string());
  EXPECT_EQ(key.rfind("lk_", 0), 0u);
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs/" + org + "/api-keys", owner.token,
                             body_of({{"name", "root"}, {"role", "owner"}}))),
            422);

  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org + "/members", key)), 200);
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + other, key)), 404);  // not its org
  EXPECT_EQ(
      status(send_json(port(), "PATCH", "/v1/orgs/" + org, key, body_of({{"name", "pwned"}}))),
      403);                                                         // a viewer key
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/me", key)), 403);  // users only
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs", key, body_of({{"name", "x"}}))), 403);

  // The first use is recorded (in the next batch of credential uses: 100 ms in these tests).
  boost::json::array keys;
  EXPECT_TRUE(eventually([&] {
    auto listed = send_json(port(), "GET", "/v1/orgs/" + org + "/api-keys", owner.token);
    keys =
        status(listed) == 200 ? json_of(*listed).at("api_keys").as_array() : boost::json::array{};
    return keys.size() != 1 || keys[0].at("last_used_at").is_string();
  }));
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_FALSE(keys[0].as_object().contains("key"));
  EXPECT_TRUE(keys[0].at("last_used_at").is_string());

  // Another org's ids in this org's paths are not found, even for an owner of both.
  EXPECT_EQ(
      status(send_json(port(), "DELETE", "/v1/orgs/" + other + "/api-keys/" + key_id, owner.token)),
      404);
  auto invited = send_json(port(), "POST", "/v1/orgs/" + org + "/invitations", owner.token,
                           body_of({{"email", "someone@example.com"}, {"role", "viewer"}}));
  ASSERT_EQ(status(invited), 201);
  EXPECT_EQ(status(send_json(port(), "DELETE",
                             "/v1/orgs/" + other + "/invitations/" +
                                 std::string(json_of(*invited).at("id").as_string()),
                             owner.token)),
            404);
  EXPECT_EQ(
      status(send_json(port(), "DELETE", "/v1/orgs/" + org + "/api-keys/" + key_id, owner.token)),
      204);
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org + "/members", key)), 401);
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org + "/members",
                             "lk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
            401);
}

TEST_F(Orgs, DeletionIsSoftAndAnOwnerCanRestore) {
  auto owner = sign_up(port(), "del-owner"), admin = sign_up(port(), "del-admin");
  auto org = create_org(owner);
  ASSERT_EQ(status(join(org, owner, admin, "admin")), 200);
  EXPECT_EQ(status(send_json(port(), "DELETE", "/v1/orgs/" + org, admin.token)), 403);
  auto deleted = send_json(port(), "DELETE", "/v1/orgs/" + org, owner.token);
  ASSERT_EQ(status(deleted), 200) << deleted->body;
  EXPECT_TRUE(json_of(*deleted).at("purge_after").is_string());
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org, owner.token)), 404);
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org, admin.token)), 404);
  EXPECT_TRUE(json_of(*send_json(port(), "GET", "/v1/me", admin.token))
                  .at("memberships")
                  .as_array()
                  .empty());
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/orgs/" + org + "/restore", admin.token)), 403);
  ASSERT_EQ(status(send_json(port(), "POST", "/v1/orgs/" + org + "/restore", owner.token)), 200);
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org, admin.token)), 200);
}

TEST(Housekeeping, PurgesOrgsPastTheirGracePeriodKeepingTheAuditLogAndForgetsOldIdempotencyKeys) {
  Server server(
      Server::Env{{"LIFTOFF_ORG_DELETION_GRACE", "0ms"}, {"LIFTOFF_ORG_PURGE_INTERVAL", "200ms"}});
  ASSERT_TRUE(server.wait_ready()) << server.process->log();
  auto owner = sign_up(server.port, "purge-owner");
  auto created =
      send_json(server.port, "POST", "/v1/orgs", owner.token, body_of({{"name", "Short-lived"}}));
  ASSERT_EQ(status(created), 201);
  std::string org(json_of(*created).at("id").as_string());
  ASSERT_EQ(status(send_json(server.port, "POST", "/v1/orgs/" + org + "/collections", owner.token,
                             R"({"name":"notes","fields":[{"name":"text","type":"text"}]})")),
            201);
  ASSERT_EQ(status(send_json(server.port, "POST", "/v1/orgs/" + org + "/collections/notes/records",
                             owner.token, R"({"text":"x"})")),
            201);
  ASSERT_EQ(status(send_json(server.port, "DELETE", "/v1/orgs/" + org, owner.token)), 200);
  EXPECT_TRUE(eventually([&] {
    return count_of(
               "SELECT (SELECT count(*) FROM orgs WHERE id = $1::uuid) + "
               "(SELECT count(*) FROM records WHERE org_id = $1::uuid)",
               db::Params(org)) == 0;
  })) << server.process->log();
  EXPECT_EQ(status(send_json(server.port, "POST", "/v1/orgs/" + org + "/restore", owner.token)),
            404);
  // The audit log outlives the org, and its chain still verifies, ending in org.purged.
  Process verify({LIFTOFF_BINARY, "audit", "verify", "--org", org},
                 {{"LIFTOFF_DATABASE_URL", test_database_url()}}, log_path("purge-verify"));
  EXPECT_EQ(verify.wait(30s), 0) << verify.log();
  // Sealed by the server's next round.
  std::string last_action;
  EXPECT_TRUE(eventually([&] {
    block_on([&]() -> boost::asio::awaitable<void> {
      auto conn = co_await connect_test();
      db::Statement last{db::Plane::any, "test.last_audit",
                         "SELECT action FROM audit_events WHERE org_id = $1::uuid "
                         "ORDER BY seq DESC LIMIT 1"};
      db::Params params(org);
      auto rows = co_await conn->query(last, params, db::deadline_after(5s));
      if (rows && !rows->empty()) last_action = rows->front().get<std::string>(0);
    }());
    return last_action == "org.purged";
  })) << last_action;

  // The same housekeeping forgets Idempotency-Keys older than 24 hours.
  run_sql_as_superuser(
      "INSERT INTO idempotency_keys (org_id, key, scope, request_hash, status, body, created_at) "
      "VALUES (gen_random_uuid(), 'old-key', 'POST records', '\\x00', 201, '{}', "
      "now() - interval '25 hours')");
  EXPECT_TRUE(eventually(
      [] { return count_of("SELECT count(*) FROM idempotency_keys WHERE key = 'old-key'") == 0; }));
  server.process->signal(SIGTERM);
  EXPECT_EQ(server.process->wait(15s), 0) << server.process->log();
}

TEST_F(Orgs, EveryMutationIsAuditedAndTheLogPagesAndFilters) {
  auto owner = sign_up(port(), "audit-owner"), member = sign_up(port(), "audit-member");
  auto org = create_org(owner);
  ASSERT_EQ(status(join(org, owner, member, "viewer")), 200);
  ASSERT_EQ(status(send_json(port(), "PATCH", "/v1/orgs/" + org + "/members/" + member.id,
                             owner.token, body_of({{"role", "member"}}))),
            200);
  ASSERT_EQ(
      status(send_json(port(), "PATCH", "/v1/orgs/" + org, owner.token, body_of({{"name", "B"}}))),
      200);
  auto audit = "/v1/orgs/" + org + "/audit";
  auto all = send_json(port(), "GET", audit, owner.token);
  ASSERT_EQ(status(all), 200) << all->body;
  std::vector<std::string> actions;
  auto all_body = json_of(*all);
  for (const auto& e : all_body.at("events").as_array())
    actions.emplace_back(e.at("action").as_string());
  EXPECT_EQ(actions,
            (std::vector<std::string>{"org.renamed", "member.role_changed", "member.joined",
                                      "invitation.created", "org.created"}));
  auto changed = all_body.at("events").as_array()[1].as_object();
  EXPECT_EQ(changed.at("actor").at("id").as_string(), owner.id);
  EXPECT_EQ(changed.at("target").at("id").as_string(), member.id);
  EXPECT_EQ(changed.at("before").at("role"), "viewer");
  EXPECT_EQ(changed.at("after").at("role"), "member");
  EXPECT_FALSE(changed.at("request_id").as_string().empty());

  // Filters and a cursor walk.
  auto filtered = send_json(port(), "GET", audit + "?action=member.role_changed", owner.token);
  ASSERT_EQ(json_of(*filtered).at("events").as_array().size(), 1u);
  auto by_actor = send_json(port(), "GET", audit + "?actor=" + member.id, owner.token);
  ASSERT_EQ(json_of(*by_actor).at("events").as_array().size(), 1u);  // member.joined
  auto future = send_json(port(), "GET", audit + "?since=2999-01-01T00:00:00Z", owner.token);
  EXPECT_TRUE(json_of(*future).at("events").as_array().empty());
  std::vector<std::string> walked;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    auto r =
        send_json(port(), "GET", audit + "?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor),
                  owner.token);
    ASSERT_EQ(status(r), 200);
    auto page_body = json_of(*r);
    for (const auto& e : page_body.at("events").as_array())
      walked.emplace_back(e.at("action").as_string());
    if (json_of(*r).at("next_cursor").is_null()) break;
    cursor = std::string(json_of(*r).at("next_cursor").as_string());
  }
  EXPECT_EQ(walked, actions);

  auto ndjson = send_json(port(), "GET", audit + "/export", owner.token);
  ASSERT_EQ(status(ndjson), 200);
  EXPECT_EQ(ndjson->header("content-type"), "application/x-ndjson");
  EXPECT_EQ(ndjson->header("transfer-encoding"), "chunked");
  EXPECT_EQ(std::count(ndjson->body.begin(), ndjson->body.end(), '\n'), 5);
  EXPECT_EQ(ndjson->header("liftoff-next-cursor"), "");
  // Two of the five: the cursor continues after the second, and the rest follows from it.
  auto first_two = send_json(port(), "GET", audit + "/export?limit=2", owner.token);
  ASSERT_EQ(status(first_two), 200);
  EXPECT_EQ(std::count(first_two->body.begin(), first_two->body.end(), '\n'), 2);
  auto after = first_two->header("liftoff-next-cursor");
  ASSERT_FALSE(after.empty());
  auto rest = send_json(port(), "GET", audit + "/export?cursor=" + after, owner.token);
  ASSERT_EQ(status(rest), 200);
  EXPECT_EQ(first_two->body + rest->body, ndjson->body);

  for (std::string bad : {"?since=yesterday", "?cursor=abc", "?limit=0", "?limit=201",
                          "?actor=nobody", "?colour=blue", "?limit=1&limit=2"}) {
    auto r = send_json(port(), "GET", audit + bad, owner.token);
    ASSERT_EQ(status(r), 400) << bad;
    EXPECT_FALSE(problem(*r).at("errors").as_array().empty()) << bad;
  }
}

TEST_F(Orgs, TheServerCannotRewriteTheAuditLogAndVerifyFindsTampering) {
  auto owner = sign_up(port(), "chain-owner");
  auto org = create_org(owner);
  for (const char* name : {"B", "C", "D"}) {
    ASSERT_EQ(status(send_json(port(), "PATCH", "/v1/orgs/" + org, owner.token,
                               body_of({{"name", name}}))),
              200);
  }
  // The role the server runs as may add pending events and have them sealed, never rewrite or
  // remove an event, forge a sealed one or move a chain's head.
  block_on([&]() -> boost::asio::awaitable<void> {
    auto executor = co_await boost::asio::this_coro::executor;
    db::ConnectOptions as_server{test_database_url(), {}, "audit-test", "liftoff_app"};
    auto conn = co_await db::Connection::connect(executor, as_server, db::deadline_after(5s));
    EXPECT_TRUE(conn) << (conn ? "" : conn.error().detail);
    if (!conn) co_return;
    for (std::string sql : {"UPDATE audit_events SET action = 'x' WHERE org_id = '" + org + "'",
                            "DELETE FROM audit_events WHERE org_id = '" + org + "'",
                            std::string("TRUNCATE audit_events"),
                            "INSERT INTO audit_events SELECT * FROM audit_events WHERE org_id = '" +
                                org + "' AND seq = 1",
                            "DELETE FROM audit_pending WHERE org_id = '" + org + "'",
                            "UPDATE audit_chains SET last_seq = 1 WHERE org_id = '" + org + "'"}) {
      auto done = co_await (*conn)->execute_script(sql, db::deadline_after(5s));
      EXPECT_FALSE(done) << sql;
      if (done) continue;
      EXPECT_NE(done.error().cause.find("42501"), std::string::npos) << done.error().cause;
    }
  }());

  auto verify = [&] {
    Process p({LIFTOFF_BINARY, "audit", "verify", "--org", org},
              {{"LIFTOFF_DATABASE_URL", test_database_url()}}, log_path("verify"));
    auto code = p.wait(30s);
    return std::make_pair(code.value_or(-1), p.log());
  };
  // The first page of the log shows every change made before it: they are sealed by then.
  auto listed = with_token(port(), "GET", "/v1/orgs/" + org + "/audit", owner.token);
  ASSERT_EQ(status(listed), 200);
  EXPECT_EQ(json_of(*listed).at("events").as_array().size(), 4u) << listed->body;
  auto [ok_code, ok_out] = verify();
  EXPECT_EQ(ok_code, 0) << ok_out;
  EXPECT_NE(ok_out.find("4 events sealed, hash chain intact; 0 committed events not sealed yet"),
            std::string::npos)
      << ok_out;

  // Someone with the owner's rights edits event 3 behind the server's back: whichever column
  // changes, verification names the event; put back, the chain is whole again.
  std::string event3 = "org_id = '" + org + "' AND seq = 3";
  run_sql_as_superuser("CREATE TABLE audit_backup_" + std::to_string(::getpid()) +
                       " AS SELECT * FROM audit_events WHERE " + event3);
  for (std::string change :
       {"id = gen_random_uuid()", "occurred_at = occurred_at + interval '1 microsecond'",
        "actor_type = 'system'", "actor_id = gen_random_uuid()", "action = 'org.hacked'",
        "target_type = 'x'", "target_id = 'x'", "before = '{\"name\":\"x\"}'",
        "after = '{\"name\":\"Z\"}'", "ip = '6.6.6.6'", "user_agent = 'evil'",
        "request_id = 'r'"}) {
    auto column = change.substr(0, change.find(' '));
    run_sql_as_superuser("UPDATE audit_events SET " + change + " WHERE " + event3);
    auto [bad_code, bad_out] = verify();
    EXPECT_EQ(bad_code, 1) << change << ": " << bad_out;
    EXPECT_NE(bad_out.find("TAMPERED at event 3"), std::string::npos) << change << ": " << bad_out;
    run_sql_as_superuser("UPDATE audit_events e SET " + column + " = b." + column +
                         " FROM audit_backup_" + std::to_string(::getpid()) +
                         " b WHERE e.org_id = b.org_id AND e.seq = b.seq");
  }
  auto [again_code, again_out] = verify();
  EXPECT_EQ(again_code, 0) << again_out;

  run_sql_as_superuser("DELETE FROM audit_events WHERE org_id = '" + org + "' AND seq >= 2");
  auto [gap_code, gap_out] = verify();
  EXPECT_EQ(gap_code, 1) << gap_out;
  EXPECT_NE(gap_out.find("TAMPERED at event 2"), std::string::npos) << gap_out;
}

TEST_F(Orgs, ARevokedApiKeyIsRefusedByAnotherProcessBeforeItsCacheExpires) {
  Server other(Server::Env{{"LIFTOFF_SESSION_CACHE_TTL", "30s"}});  // only NOTIFY can evict
  ASSERT_TRUE(other.wait_ready()) << other.process->log();
  auto owner = sign_up(port(), "xkey-owner");
  auto org = create_org(owner);
  auto created = send_json(port(), "POST", "/v1/orgs/" + org + "/api-keys", owner.token,
                           body_of({{"name", "ci"}, {"role", "viewer"}}));
  ASSERT_EQ(status(created), 201);
  std::string key(json_of(*created).at("key").as_string());
  std::string key_id(json_of(*created).at("id").as_string());
  EXPECT_EQ(status(send_json(other.port, "GET", "/v1/orgs/" + org, key)), 200);  // cached there
  ASSERT_EQ(
      status(send_json(port(), "DELETE", "/v1/orgs/" + org + "/api-keys/" + key_id, owner.token)),
      204);
  // Well before the other process's 30 s cache would forget it: only the NOTIFY can tell it.
  EXPECT_TRUE(eventually(
      [&] { return status(send_json(other.port, "GET", "/v1/orgs/" + org, key)) == 401; }, 20s));
  other.process->signal(SIGTERM);
  EXPECT_EQ(other.process->wait(15s), 0) << other.process->log();
}

TEST_F(Orgs, ARemovedMemberLosesAccessOnAnotherProcessBeforeItsCacheExpires) {
  Server other(Server::Env{{"LIFTOFF_SESSION_CACHE_TTL", "30s"}});  // only NOTIFY can evict
  ASSERT_TRUE(other.wait_ready()) << other.process->log();
  auto owner = sign_up(port(), "x-owner"), member = sign_up(port(), "x-member");
  auto org = create_org(owner);
  ASSERT_EQ(status(join(org, owner, member, "member")), 200);
  EXPECT_EQ(status(send_json(other.port, "GET", "/v1/orgs/" + org, member.token)), 200);  // cached
  ASSERT_EQ(
      status(send_json(port(), "DELETE", "/v1/orgs/" + org + "/members/" + member.id, owner.token)),
      204);
  EXPECT_TRUE(eventually(
      [&] { return status(send_json(other.port, "GET", "/v1/orgs/" + org, member.token)) == 404; },
      20s));
  other.process->signal(SIGTERM);
  EXPECT_EQ(other.process->wait(15s), 0) << other.process->log();
}

}  // namespace
}  // namespace liftoff::testing
