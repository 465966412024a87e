// Webhooks through the real binary: an org's admin registers an endpoint over the API, the org's
// record writes arrive at a real receiver signed with the secret the API showed once, and the
// admin sees the deliveries; members and other orgs cannot see or change endpoints; bad input is
// named field by field; a server without webhook_key answers 503.
#include "e2e/e2e.hpp"
#include "e2e/records_support.hpp"
#include "liftoff/core/trace_context.hpp"
#include "support/run_dir.hpp"
#include "support/webhook_receiver.hpp"

namespace liftoff::testing {
namespace {

class WebhooksE2E : public E2E {};

// A server that delivers webhooks to loopback receivers at once, with `more` settings.
Server::Env delivering(Server::Env more = {}) {
  // A key of 32 zero bytes: the server only needs one to seal secrets with.
  Server::Env env{{"LIFTOFF_WEBHOOK_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
                  {"LIFTOFF_WEBHOOK_ALLOW_PRIVATE", "true"},
                  {"LIFTOFF_JOB_POLL_INTERVAL", "100ms"}};
  env.insert(more.begin(), more.end());
  return env;
}

TEST_F(WebhooksE2E, AnAdminsEndpointReceivesTheOrgsRecordEventsSigned) {
  auto dir = make_temp_dir("/tmp/liftoff-webhooks-e2e-");
  WebhookReceiver receiver(dir, "receiver");
  ASSERT_NE(receiver.port(), 0);
  OwnServer server(delivering());
  auto tenant = new_tenant(server.port(), "hooks-admin");
  auto other = new_tenant(server.port(), "hooks-other");
  auto member = sign_up(server.port(), "hooks-member");
  add_member(tenant, member, "member");
  create_tickets(tenant);
  auto hooks = "/v1/orgs/" + tenant.org + "/webhooks";

  auto created = send_json(server.port(), "POST", hooks, tenant.owner.token,
                           body_of(json::object{{"url", receiver.url("/tickets/")},
                                                {"description", "ticket sync"},
                                                {"event_types", json::array{"record.*"}}}));
  ASSERT_EQ(status(created), 201) << (created ? created->body : "");
  auto endpoint = json_of(*created);
  auto secret = std::string(endpoint.at("secret").as_string());
  auto one = hooks + "/" + std::string(endpoint.at("id").as_string());
  EXPECT_TRUE(endpoint.at("enabled").as_bool());

  auto record = create(tenant, {{"title", "Broken login"}, {"status", "open"}, {"priority", 2}});
  ASSERT_EQ(status(record), 201) << (record ? record->body : "");
  auto record_id = std::string(json_of(*record).at("id").as_string());
  ASSERT_TRUE(eventually([&] { return !receiver.received("/tickets/").empty(); }));
  auto got = receiver.received("/tickets/");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(verifies(got[0], secret));
  // The delivery passes its trace on (W3C Trace Context), so the receiver's spans can join it.
  const auto& headers = got[0].at("headers").as_object();
  ASSERT_TRUE(headers.contains("traceparent")) << json::serialize(headers);
  EXPECT_TRUE(core::parse_traceparent(headers.at("traceparent").as_string()))
      << headers.at("traceparent");
  auto body = json::parse(got[0].at("body").as_string()).as_object();
  EXPECT_EQ(body.at("type"), "record.created");
  EXPECT_EQ(body.at("data").at("target").at("id").as_string(), record_id);
  EXPECT_EQ(body.at("data").at("after").at("data").at("title"), "Broken login");

  // The admin sees the endpoint (never its secret) and its deliveries.
  auto shown = send_json(server.port(), "GET", one, tenant.owner.token);
  ASSERT_EQ(status(shown), 200);
  EXPECT_FALSE(json_of(*shown).contains("secret"));
  EXPECT_EQ(shown->body.find(secret.substr(6)), std::string::npos);
  auto listed = send_json(server.port(), "GET", hooks, tenant.owner.token);
  ASSERT_EQ(status(listed), 200);
  EXPECT_EQ(json_of(*listed).at("webhooks").as_array().size(), 1u);
  ASSERT_TRUE(eventually([&] {
    auto d = send_json(server.port(), "GET", one + "/deliveries", tenant.owner.token);
    return status(d) == 200 && json_of(*d).at("deliveries").as_array().size() == 1;
  }));
  auto deliveries = send_json(server.port(), "GET", one + "/deliveries", tenant.owner.token);
  auto delivery = json_of(*deliveries).at("deliveries").as_array()[0].as_object();
  EXPECT_EQ(delivery.at("status"), 200);
  EXPECT_EQ(delivery.at("event_type"), "record.created");
  auto redelivered =
      send_json(server.port(), "POST",
                one + "/deliveries/" + std::string(delivery.at("id").as_string()) + "/redeliver",
                tenant.owner.token);
  EXPECT_EQ(status(redelivered), 202);
  EXPECT_TRUE(eventually([&] { return receiver.received("/tickets/").size() >= 2; }));

  // Rotation shows a new secret once; both sign for a while.
  auto rotated = send_json(server.port(), "POST", one + "/rotate-secret", tenant.owner.token);
  ASSERT_EQ(status(rotated), 200);
  auto new_secret = std::string(json_of(*rotated).at("secret").as_string());
  EXPECT_NE(new_secret, secret);

  // Disabled, it receives nothing; the audit log has the changes.
  auto disabled =
      send_json(server.port(), "PATCH", one, tenant.owner.token, R"({"enabled": false})");
  ASSERT_EQ(status(disabled), 200);
  EXPECT_EQ(json_of(*disabled).at("disabled_reason"), "disabled by an admin");
  auto audit =
      send_json(server.port(), "GET", "/v1/orgs/" + tenant.org + "/audit?action=webhook.updated",
                tenant.owner.token);
  ASSERT_EQ(status(audit), 200);
  EXPECT_EQ(json_of(*audit).at("events").as_array().size(), 1u);

  // Members and other orgs: no.
  EXPECT_EQ(status(send_json(server.port(), "GET", hooks, member.token)), 403);
  EXPECT_EQ(status(send_json(server.port(), "POST", hooks, member.token,
                             body_of(json::object{{"url", receiver.url("/m/")}}))),
            403);
  EXPECT_EQ(status(send_json(
                server.port(), "GET",
                "/v1/orgs/" + other.org + "/webhooks/" + std::string(endpoint.at("id").as_string()),
                other.owner.token)),
            404);
  EXPECT_EQ(status(send_json(server.port(), "DELETE", one, other.owner.token)), 404);

  // Bad input, named.
  auto invalid = send_json(server.port(), "POST", hooks, tenant.owner.token,
                           R"({"url": "http://10.0.0.1/x", "event_types": ["Not A Type"]})");
  EXPECT_EQ(status(invalid), 422);
  EXPECT_NE(invalid->body.find("event_types[0]"), std::string::npos) << invalid->body;
  auto unknown = send_json(server.port(), "POST", hooks, tenant.owner.token,
                           R"({"url": "https://example.com/", "secret": "mine"})");
  EXPECT_EQ(status(unknown), 400);
  auto missing = send_json(server.port(), "POST", hooks, tenant.owner.token, R"({})");
  EXPECT_EQ(status(missing), 422);
  EXPECT_EQ(
      status(send_json(server.port(), "PATCH", one, tenant.owner.token, R"({"enabled": "yes"})")),
      422);

  EXPECT_EQ(status(send_json(server.port(), "DELETE", one, tenant.owner.token)), 204);
  EXPECT_EQ(status(send_json(server.port(), "GET", one, tenant.owner.token)), 404);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// The plan's jobs per day: once the org's deliveries of the day reach it, the next event waits
// (nothing is dropped) until the operator raises the limit.
TEST_F(WebhooksE2E, DeliveriesPastThePlansJobsPerDayWaitUntilTheLimitRises) {
  auto dir = make_temp_dir("/tmp/liftoff-webhooks-e2e-");
  WebhookReceiver receiver(dir, "receiver");
  ASSERT_NE(receiver.port(), 0);
  OwnServer server(
      delivering({{"LIFTOFF_USAGE_FLUSH", "100ms"}, {"LIFTOFF_JOB_QUOTA_REFRESH", "100ms"}}));
  auto tenant = new_tenant(server.port(), "hooks-quota");
  create_tickets(tenant);
  set_plan(tenant.org, "enterprise", R"({"jobs_per_day": 1})");
  auto hooks = "/v1/orgs/" + tenant.org + "/webhooks";
  auto created = send_json(server.port(), "POST", hooks, tenant.owner.token,
                           body_of(json::object{{"url", receiver.url("/quota/")},
                                                {"event_types", json::array{"record.created"}}}));
  ASSERT_EQ(status(created), 201) << (created ? created->body : "");

  // One delivery job (it sends every event its endpoint has waiting) reaches the day's quota.
  auto first = create(tenant, {{"title", "within"}, {"status", "open"}, {"priority", 1}});
  ASSERT_EQ(status(first), 201) << (first ? first->body : "");
  ASSERT_TRUE(eventually([&] { return receiver.received("/quota/").size() == 1; }));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto third = create(tenant, {{"title", "past the quota"}, {"status", "open"}, {"priority", 1}});
  ASSERT_EQ(status(third), 201) << (third ? third->body : "");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(receiver.received("/quota/").size(), 1u);
  auto jobs = send_json(server.port(), "GET", "/v1/orgs/" + tenant.org + "/jobs?state=ready",
                        tenant.owner.token);
  ASSERT_EQ(status(jobs), 200) << (jobs ? jobs->body : "");
  // The event waits with its endpoint: the dispatcher claims no endpoint of a held org, so no
  // delivery job piles up behind the hold.
  EXPECT_EQ(json_of(*jobs).at("jobs").as_array().size(), 0u) << jobs->body;

  set_plan(tenant.org, "enterprise", R"({"jobs_per_day": 10})");
  ASSERT_TRUE(eventually([&] { return receiver.received("/quota/").size() == 2; }));
  auto body = json::parse(receiver.received("/quota/")[1].at("body").as_string()).as_object();
  EXPECT_EQ(body.at("data").at("after").at("data").at("title"), "past the quota");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// A suspended org's webhook deliveries (like all its jobs) wait, from each worker's next refresh,
// until an operator restores it: nothing is dropped.
TEST_F(WebhooksE2E, ASuspendedOrgsDeliveriesWaitUntilItIsRestored) {
  auto dir = make_temp_dir("/tmp/liftoff-webhooks-e2e-");
  WebhookReceiver receiver(dir, "receiver");
  ASSERT_NE(receiver.port(), 0);
  OwnServer server(delivering({{"LIFTOFF_JOB_QUOTA_REFRESH", "100ms"}}));
  auto tenant = new_tenant(server.port(), "hooks-suspended");
  auto operator_user = sign_up(server.port(), "hooks-operator");
  grant_operator(operator_user.email);
  auto created =
      send_json(server.port(), "POST", "/v1/orgs/" + tenant.org + "/webhooks", tenant.owner.token,
                body_of(json::object{{"url", receiver.url("/plans/")},
                                     {"event_types", json::array{"org.plan_changed"}}}));
  ASSERT_EQ(status(created), 201) << (created ? created->body : "");

  const auto operator_path = "/v1/operator/orgs/" + tenant.org;
  auto suspended = send_json(server.port(), "POST", operator_path + "/suspension",
                             operator_user.token, R"({"reason":"abuse report"})");
  ASSERT_EQ(status(suspended), 200) << (suspended ? suspended->body : "");
  ASSERT_TRUE(eventually([&] { return metric(server.port(), "orgs_suspended") == 1; }));
  // An event while suspended (the operator's plan change): due, but not sent.
  auto changed = send_json(server.port(), "PUT", operator_path + "/plan", operator_user.token,
                           R"({"plan":"pro"})");
  ASSERT_EQ(status(changed), 200) << (changed ? changed->body : "");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_TRUE(receiver.received("/plans/").empty());

  auto restored =
      send_json(server.port(), "DELETE", operator_path + "/suspension", operator_user.token);
  ASSERT_EQ(status(restored), 200) << (restored ? restored->body : "");
  ASSERT_TRUE(eventually([&] { return receiver.received("/plans/").size() == 1; }));
  auto body = json::parse(receiver.received("/plans/")[0].at("body").as_string()).as_object();
  EXPECT_EQ(body.at("type"), "org.plan_changed") << body;
  EXPECT_EQ(metric(server.port(), "orgs_suspended"), 0);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST_F(WebhooksE2E, AServerWithoutAWebhookKeyAnswers503) {
  auto tenant = new_tenant(port(), "hooks-off");
  auto r = send_json(port(), "POST", "/v1/orgs/" + tenant.org + "/webhooks", tenant.owner.token,
                     R"({"url": "https://example.com/hook"})");
  EXPECT_EQ(status(r), 503);
  EXPECT_NE(r->body.find("webhook_key"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace liftoff::testing
