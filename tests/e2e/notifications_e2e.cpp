// End-to-end: in-app notifications through the real server: what membership changes and an org's
// app put in members' feeds, the feed's routes (pages, unread count, marking read, each user's
// own only), and its Server-Sent Events stream (pushed as they commit, from any process; resumed
// with Last-Event-ID; opened with a ticket; ended with its session; limited per user).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "e2e/e2e.hpp"
#include "support/event_stream.hpp"

namespace liftoff::testing {
namespace {
namespace json = boost::json;

const Server::Env kNotificationsEnv = {{"LIFTOFF_EVENTS_HEARTBEAT", "300ms"},
                                       {"LIFTOFF_NOTIFICATIONS_MAX_STREAMS_PER_USER", "3"}};

json::object data_of(const ServerSentEvent& e) {
  return json::parse(e.data).as_object();
}

// The next event of the stream that is not an `unread` one (which follow every change).
std::optional<ServerSentEvent> next_notification(EventStream& stream) {
  for (int i = 0; i < 10; ++i) {
    auto e = stream.next();
    if (!e || e->event != "unread") return e;
  }
  return std::nullopt;
}

// The next `unread` event's count; -1 when none came.
std::int64_t next_unread(EventStream& stream) {
  for (int i = 0; i < 10; ++i) {
    auto e = stream.next();
    if (!e) return -1;
    if (e->event == "unread") return data_of(*e).at("unread").as_int64();
  }
  return -1;
}

class Notifications : public E2E {
 protected:
  static void SetUpTestSuite() { start(kNotificationsEnv); }

  static std::string new_org(const TestUser& owner) {
    auto r = post_json(port(), "/v1/orgs", R"({"name":"Acme"})", owner.token);
    EXPECT_EQ(status(r), 201) << (r ? r->body : "");
    return r && r->status == 201 ? std::string(json_of(*r).at("id").as_string()) : "";
  }
  // `who` joins `org` (of `owner`) with `role`.
  static void join(const std::string& org, const TestUser& owner, const TestUser& who,
                   const std::string& role) {
    auto invited =
        post_json(port(), "/v1/orgs/" + org + "/invitations",
                  json::serialize(json::object{{"email", who.email}, {"role", role}}), owner.token);
    ASSERT_EQ(status(invited), 201) << (invited ? invited->body : "");
    auto token = std::string(json_of(*invited).at("token").as_string());
    ASSERT_EQ(status(accept_invitation(port(), token, who.token)), 200);
  }
  static std::string api_key(const std::string& org, const TestUser& owner,
                             const std::string& role) {
    auto r = post_json(port(), "/v1/orgs/" + org + "/api-keys",
                       json::serialize(json::object{{"name", "app"}, {"role", role}}), owner.token);
    EXPECT_EQ(status(r), 201) << (r ? r->body : "");
    return r && r->status == 201 ? std::string(json_of(*r).at("key").as_string()) : "";
  }
  static std::optional<HttpResponse> notify(const std::string& org, const std::string& token,
                                            const json::object& body) {
    return post_json(port(), "/v1/orgs/" + org + "/notifications", json::serialize(body), token);
  }
  static json::object feed(const TestUser& who, const std::string& query = "") {
    auto r = with_token(port(), "GET", "/v1/me/notifications" + query, who.token);
    EXPECT_EQ(status(r), 200) << (r ? r->body : "");
    return r && r->status == 200 ? json_of(*r) : json::object{};
  }
};

TEST_F(Notifications, MembershipChangesReachTheFeedAndTheOpenStream) {
  auto ann = sign_up(port(), "ann");
  auto bob = sign_up(port(), "bob");
  auto org = new_org(ann);
  EventStream stream(port(), "/v1/me/notifications/events", bearer(ann.token));
  ASSERT_TRUE(stream.open()) << (stream.response() ? stream.response()->body : "no response");
  EXPECT_EQ(stream.response()->headers.at("content-type"), "text/event-stream");
  EXPECT_EQ(next_unread(stream), 0);  // the badge, at once

  join(org, ann, bob, "member");
  auto joined = next_notification(stream);
  ASSERT_TRUE(joined);
  EXPECT_EQ(joined->event, "notification");
  EXPECT_EQ(joined->id, "1");
  auto n = data_of(*joined);
  EXPECT_EQ(n.at("kind").as_string(), "liftoff.member.joined");
  EXPECT_EQ(n.at("org_id").as_string(), org);
  EXPECT_EQ(n.at("seq").as_int64(), 1);
  EXPECT_EQ(n.at("data").as_object().at("user_id").as_string(), bob.id);
  EXPECT_TRUE(n.at("read_at").is_null());
  EXPECT_EQ(next_unread(stream), 1);

  auto changed = send_json(port(), "PATCH", "/v1/orgs/" + org + "/members/" + bob.id, ann.token,
                           R"({"role":"admin"})");
  ASSERT_EQ(status(changed), 200) << (changed ? changed->body : "");
  auto bobs = feed(bob);
  ASSERT_EQ(bobs.at("notifications").as_array().size(), 1u);
  const auto& role_changed = bobs.at("notifications").as_array()[0].as_object();
  EXPECT_EQ(role_changed.at("kind").as_string(), "liftoff.member.role_changed");
  EXPECT_EQ(role_changed.at("data").as_object().at("role").as_string(), "admin");
  EXPECT_EQ(bobs.at("unread").as_int64(), 1);
  EXPECT_TRUE(bobs.at("next_cursor").is_null());

  auto removed = send_json(port(), "DELETE", "/v1/orgs/" + org + "/members/" + bob.id, ann.token);
  ASSERT_EQ(status(removed), 204);
  bobs = feed(bob);
  EXPECT_EQ(bobs.at("notifications").as_array()[0].as_object().at("kind").as_string(),
            "liftoff.member.removed");
  EXPECT_EQ(bobs.at("unread").as_int64(), 2);
}

TEST_F(Notifications, AnAppNotifiesItsMembersWithAnApiKeyAndNoOneElse) {
  auto ann = sign_up(port(), "ann");
  auto bob = sign_up(port(), "bob");
  auto eve = sign_up(port(), "eve");
  auto org = new_org(ann);
  auto other = new_org(eve);
  join(org, ann, bob, "member");
  auto key = api_key(org, ann, "admin");
  EventStream stream(port(), "/v1/me/notifications/events", bearer(bob.token));
  ASSERT_TRUE(stream.open());
  EXPECT_EQ(next_unread(stream), 0);

  json::object body{{"kind", "report.ready"},      {"title", "Your report is ready"},
                    {"body", "Q3, all regions."},  {"link", "/reports/42"},
                    {"data", {{"report_id", 42}}}, {"user_ids", json::array{bob.id.c_str()}}};
  auto sent = notify(org, key, body);
  ASSERT_EQ(status(sent), 201) << (sent ? sent->body : "");
  EXPECT_EQ(json_of(*sent).at("recipients").as_int64(), 1);
  auto pushed = next_notification(stream);
  ASSERT_TRUE(pushed);
  auto n = data_of(*pushed);
  EXPECT_EQ(n.at("title").as_string(), "Your report is ready");
  EXPECT_EQ(n.at("link").as_string(), "/reports/42");
  EXPECT_EQ(n.at("data").as_object().at("report_id").as_int64(), 42);

  // By role: the owner and the member.
  json::object to_all{
      {"kind", "maintenance"}, {"title", "Down at 2am"}, {"roles", json::array{"owner", "member"}}};
  auto everyone = notify(org, ann.token, to_all);
  ASSERT_EQ(status(everyone), 201);
  EXPECT_EQ(json_of(*everyone).at("recipients").as_int64(), 2);

  auto refused = [&](const json::object& b, int code, const std::string& field,
                     const std::string& token, const std::string& in_org) {
    auto r = notify(in_org, token, b);
    EXPECT_EQ(status(r), code) << json::serialize(b) << " " << (r ? r->body : "");
    if (!field.empty() && r && r->status == code) {
      EXPECT_NE(r->body.find("\"" + field + "\""), std::string::npos) << r->body;
    }
  };
  auto with = [&](const char* name, json::value v) {
    auto b = body;
    b[name] = std::move(v);
    return b;
  };
  refused(with("user_ids", json::array{eve.id.c_str()}), 422, "user_ids[0]", key, org);
  refused(with("user_ids", json::array{"not-a-uuid"}), 422, "user_ids[0]", key, org);
  refused(with("user_ids", json::array{}), 422, "user_ids", key, org);
  refused(with("kind", "liftoff.member.removed"), 422, "kind", key, org);
  refused(with("link", "javascript:alert(1)"), 422, "link", key, org);
  refused(with("title", ""), 422, "title", key, org);
  refused(with("data", "text"), 422, "data", key, org);
  refused(with("roles", json::array{"emperor"}), 422, "roles[0]", key, org);
  refused(with("sender", "me"), 400, "sender", key, org);
  refused(body, 403, "", api_key(org, ann, "member"), org);  // too small a role
  refused(body, 403, "", bob.token, org);                    // a member
  refused(body, 404, "", key, other);                        // a key is of its own org only
  EXPECT_TRUE(feed(eve).at("notifications").as_array().empty());
  // A feed is a user's: an API key has none.
  EXPECT_EQ(status(with_token(port(), "GET", "/v1/me/notifications", key)), 403);
}

TEST_F(Notifications, TheFeedPagesAndMarksReadOnlyItsOwnUsersNotifications) {
  auto ann = sign_up(port(), "ann");
  auto bob = sign_up(port(), "bob");
  auto org = new_org(ann);
  auto bobs_org = new_org(bob);
  for (int i = 1; i <= 5; ++i) {
    json::object b{
        {"kind", "tick"}, {"title", "n" + std::to_string(i)}, {"roles", json::array{"owner"}}};
    ASSERT_EQ(status(notify(org, ann.token, b)), 201);
  }
  json::object to_bob{{"kind", "tick"}, {"title", "bob's"}, {"roles", json::array{"owner"}}};
  ASSERT_EQ(status(notify(bobs_org, bob.token, to_bob)), 201);

  auto first = feed(ann, "?limit=2");
  const auto& items = first.at("notifications").as_array();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].as_object().at("title").as_string(), "n5");
  EXPECT_EQ(first.at("unread").as_int64(), 5);
  EXPECT_EQ(first.at("seq").as_int64(), 5);
  auto cursor = std::string(first.at("next_cursor").as_string());
  auto rest = feed(ann, "?limit=50&cursor=" + cursor);
  ASSERT_EQ(rest.at("notifications").as_array().size(), 3u);
  EXPECT_EQ(rest.at("notifications").as_array()[0].as_object().at("seq").as_int64(), 3);

  auto newest = std::string(items[0].as_object().at("id").as_string());
  auto read = send_json(port(), "POST", "/v1/me/notifications/" + newest + "/read", ann.token);
  ASSERT_EQ(status(read), 200) << (read ? read->body : "");
  EXPECT_EQ(json_of(*read).at("unread").as_int64(), 4);
  // Bob's notification is not Ann's: it is not found, and stays unread.
  auto bobs = feed(bob);
  auto bobs_id =
      std::string(bobs.at("notifications").as_array()[0].as_object().at("id").as_string());
  EXPECT_EQ(
      status(send_json(port(), "POST", "/v1/me/notifications/" + bobs_id + "/read", ann.token)),
      404);
  EXPECT_EQ(feed(bob).at("unread").as_int64(), 1);
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/me/notifications/nope/read", ann.token)), 404);

  auto upto = send_json(port(), "POST", "/v1/me/notifications/read", ann.token, R"({"up_to":3})");
  ASSERT_EQ(status(upto), 200) << (upto ? upto->body : "");
  EXPECT_EQ(json_of(*upto).at("marked").as_int64(), 3);
  EXPECT_EQ(json_of(*upto).at("unread").as_int64(), 1);
  auto unread = feed(ann, "?unread=true");
  ASSERT_EQ(unread.at("notifications").as_array().size(), 1u);
  EXPECT_EQ(unread.at("notifications").as_array()[0].as_object().at("title").as_string(), "n4");
  auto all = send_json(port(), "POST", "/v1/me/notifications/read", ann.token);
  ASSERT_EQ(status(all), 200);
  EXPECT_EQ(json_of(*all).at("unread").as_int64(), 0);

  // Bad input: a precise 4xx.
  for (const auto* q :
       {"?limit=0", "?limit=201", "?cursor=abc", "?cursor=-1", "?unread=maybe", "?other=1"}) {
    auto r = with_token(port(), "GET", std::string("/v1/me/notifications") + q, ann.token);
    EXPECT_EQ(status(r), 400) << q;
  }
  EXPECT_EQ(
      status(send_json(port(), "POST", "/v1/me/notifications/read", ann.token, R"({"up_to":-1})")),
      422);
  EXPECT_EQ(
      status(send_json(port(), "POST", "/v1/me/notifications/read", ann.token, R"({"up_to":"3"})")),
      422);
  EXPECT_EQ(
      status(send_json(port(), "POST", "/v1/me/notifications/read", ann.token, R"({"all":true})")),
      400);
  EXPECT_EQ(status(http_request(port(), "GET", "/v1/me/notifications")), 401);
}

TEST_F(Notifications, AStreamResumesAfterLastEventIdAndOpensWithATicket) {
  auto ann = sign_up(port(), "ann");
  auto org = new_org(ann);
  for (int i = 1; i <= 3; ++i) {
    json::object b{
        {"kind", "tick"}, {"title", "n" + std::to_string(i)}, {"roles", json::array{"owner"}}};
    ASSERT_EQ(status(notify(org, ann.token, b)), 201);
  }
  {
    EventStream resumed(port(), "/v1/me/notifications/events",
                        bearer(ann.token) + "Last-Event-ID: 1\r\n");
    ASSERT_TRUE(resumed.open());
    auto second = next_notification(resumed);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->id, "2");
    auto third = next_notification(resumed);
    ASSERT_TRUE(third);
    EXPECT_EQ(third->id, "3");
  }
  {
    // Past the feed's head: a reset to it (the client reloads its list).
    EventStream ahead(port(), "/v1/me/notifications/events",
                      bearer(ann.token) + "Last-Event-ID: 99\r\n");
    ASSERT_TRUE(ahead.open());
    auto reset = ahead.next();
    ASSERT_TRUE(reset);
    EXPECT_EQ(reset->event, "reset");
    EXPECT_EQ(reset->id, "3");
  }
  auto bad = http_request(port(), "GET", "/v1/me/notifications/events",
                          bearer(ann.token) + "Last-Event-ID: 1-2\r\n");
  EXPECT_EQ(status(bad), 400);

  auto ticket = send_json(port(), "POST", "/v1/me/notifications/events/tickets", ann.token);
  ASSERT_EQ(status(ticket), 201) << (ticket ? ticket->body : "");
  auto url = std::string(json_of(*ticket).at("url").as_string());
  {
    EventStream by_ticket(port(), url + "&last_event_id=2", "");
    ASSERT_TRUE(by_ticket.open()) << (by_ticket.response() ? by_ticket.response()->body : "");
    auto third = next_notification(by_ticket);
    ASSERT_TRUE(third);
    EXPECT_EQ(third->id, "3");
  }
  EXPECT_EQ(status(http_request(port(), "GET", url)), 401);  // used up
  // A ticket for a collection's event stream does not open a feed, nor the other way round.
  auto collection =
      post_json(port(), "/v1/orgs/" + org + "/collections",
                R"({"name":"notes","fields":[{"name":"title","type":"text"}]})", ann.token);
  ASSERT_EQ(status(collection), 201) << (collection ? collection->body : "");
  auto records_ticket =
      send_json(port(), "POST", "/v1/orgs/" + org + "/collections/notes/events/tickets", ann.token);
  ASSERT_EQ(status(records_ticket), 201);
  auto records_value = std::string(json_of(*records_ticket).at("ticket").as_string());
  EXPECT_EQ(
      status(http_request(port(), "GET", "/v1/me/notifications/events?ticket=" + records_value)),
      401);
  auto feed_ticket = send_json(port(), "POST", "/v1/me/notifications/events/tickets", ann.token);
  auto feed_value = std::string(json_of(*feed_ticket).at("ticket").as_string());
  EXPECT_EQ(
      status(http_request(port(), "GET",
                          "/v1/orgs/" + org + "/collections/notes/events?ticket=" + feed_value)),
      401);
}

TEST_F(Notifications, StreamsAreLimitedPerUserAndEndWithTheSession) {
  auto ann = sign_up(port(), "ann");
  std::vector<std::unique_ptr<EventStream>> streams;
  for (int i = 0; i < 3; ++i) {
    streams.push_back(
        std::make_unique<EventStream>(port(), "/v1/me/notifications/events", bearer(ann.token)));
    ASSERT_TRUE(streams.back()->open());
  }
  auto fourth = http_request(port(), "GET", "/v1/me/notifications/events", bearer(ann.token));
  EXPECT_EQ(status(fourth), 429);
  ASSERT_EQ(status(send_json(port(), "POST", "/v1/auth/logout", ann.token)), 204);
  for (auto& s : streams) EXPECT_TRUE(s->ends_within(5s));
}

TEST_F(Notifications, ANotificationSentThroughAnotherProcessReachesTheStream) {
  OwnServer other(kNotificationsEnv);
  auto ann = sign_up(port(), "ann");
  auto org = new_org(ann);
  EventStream stream(port(), "/v1/me/notifications/events", bearer(ann.token));
  ASSERT_TRUE(stream.open());
  EXPECT_EQ(next_unread(stream), 0);
  json::object b{{"kind", "tick"}, {"title", "from afar"}, {"roles", json::array{"owner"}}};
  auto sent =
      post_json(other.port(), "/v1/orgs/" + org + "/notifications", json::serialize(b), ann.token);
  ASSERT_EQ(status(sent), 201) << (sent ? sent->body : "");
  auto pushed = next_notification(stream);
  ASSERT_TRUE(pushed);
  EXPECT_EQ(data_of(*pushed).at("title").as_string(), "from afar");
  EXPECT_EQ(next_unread(stream), 1);
  // Marked read in the other process: the count follows here.
  ASSERT_EQ(status(send_json(other.port(), "POST", "/v1/me/notifications/read", ann.token)), 200);
  EXPECT_EQ(next_unread(stream), 0);
}

}  // namespace
}  // namespace liftoff::testing
