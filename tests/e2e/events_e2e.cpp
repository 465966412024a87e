// End-to-end: a collection's record changes as Server-Sent Events, against the real server(s) and
// database.
#include <boost/json/array.hpp>
#include <cstdio>
#include <set>

#include "e2e/e2e.hpp"
#include "e2e/records_support.hpp"
#include "support/event_stream.hpp"
#include "support/redis.hpp"

namespace liftoff::testing {
namespace {

// A server with a short heartbeat and a small replay limit, so both show within a test.
// No fallback poll: a change from another process arrives by NOTIFY or Redis, or not at all.
const Server::Env kEventsEnv = {{"LIFTOFF_EVENTS_HEARTBEAT", "300ms"},
                                {"LIFTOFF_EVENTS_MAX_REPLAY", "20"},
                                {"LIFTOFF_EVENTS_POLL_INTERVAL", "0s"}};

class Events : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new Server(kEventsEnv);
    ASSERT_TRUE(server_->wait_ready()) << server_->process->log();
  }
  static void TearDownTestSuite() {
    server_->process->signal(SIGTERM);
    EXPECT_EQ(server_->process->wait(15s), 0) << server_->process->log();
    delete server_;
  }
  static unsigned short port() { return server_->port; }
  static inline Server* server_ = nullptr;
};

std::string events_path(const Tenant& t, const std::string& filter = "") {
  return t.base + "/tickets/events" + (filter.empty() ? "" : "?filter=" + encode(filter));
}

json::object data_of(const ServerSentEvent& e) {
  return json::parse(e.data).as_object();
}

std::string record_id(const std::optional<HttpResponse>& created) {
  EXPECT_EQ(status(created), 201) << (created ? created->body : "no response");
  return created ? std::string(json_of(*created).at("id").as_string()) : "";
}

json::object ticket(const std::string& title, const std::string& state, int priority) {
  return {{"title", title}, {"status", state}, {"priority", priority}};
}

// The events a stream sends before its next heartbeat. On a stream just opened with Last-Event-ID
// that is its whole replay: the server writes the replay first, and a heartbeat only once it has
// caught up and nothing happens (300 ms here). No quiet window to guess at: a slow server makes
// this wait longer, never cut the replay short.
std::vector<ServerSentEvent> until_heartbeat(EventStream& stream) {
  std::vector<ServerSentEvent> out;
  auto before = stream.comments();
  for (auto end = std::chrono::steady_clock::now() + 30s;
       stream.comments() == before && std::chrono::steady_clock::now() < end;) {
    if (auto e = stream.next(50ms)) out.push_back(std::move(*e));
  }
  EXPECT_GT(stream.comments(), before) << "no heartbeat after the replay";
  return out;
}

// The events a stream sends up to and including the first about record `id` (changes arrive in
// commit order, so a last change made by the test marks the end of what it waits for).
std::vector<ServerSentEvent> through(EventStream& stream, const std::string& id) {
  std::vector<ServerSentEvent> out;
  for (auto end = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < end;) {
    auto e = stream.next(1s);
    if (!e) continue;
    out.push_back(std::move(*e));
    if (json::parse(out.back().data).as_object().at("id") == id.c_str()) return out;
  }
  ADD_FAILURE() << "no event about " << id;
  return out;
}

TEST_F(Events, StreamCreatesUpdatesAndDeletesInCommitOrder) {
  auto t = new_tenant(port(), "ev-order");
  create_tickets(t);
  EventStream stream(port(), events_path(t), bearer(t.owner.token));
  ASSERT_TRUE(stream.open()) << (stream.response() ? stream.response()->body : "no response");
  EXPECT_EQ(stream.response()->header("content-type"), "text/event-stream");
  EXPECT_EQ(stream.response()->header("transfer-encoding"), "chunked");

  auto id = record_id(create(t, ticket("Printer", "open", 1)));
  auto path = t.base + "/tickets/records/" + id;
  ASSERT_EQ(status(send_json(port(), "PATCH", path, t.owner.token, R"({"status":"closed"})")), 200);
  ASSERT_EQ(status(send_json(port(), "DELETE", path, t.owner.token)), 204);
  auto batch = send_json(
      port(), "POST", t.base + "/tickets/records:batch", t.owner.token,
      body_of(json::object{
          {"operations", json::array{
                             json::object{{"op", "create"}, {"data", ticket("B", "open", 2)}},
                             json::object{{"op", "create"}, {"data", ticket("C", "open", 3)}},
                         }}}));
  ASSERT_EQ(status(batch), 200) << batch->body;

  auto created = stream.next();
  ASSERT_TRUE(created);
  EXPECT_EQ(stream.retry(), "2000");
  EXPECT_EQ(created->event, "created");
  auto c = data_of(*created);
  EXPECT_EQ(c.at("id"), id.c_str());
  EXPECT_EQ(c.at("record").at("data").at("title"), "Printer");
  EXPECT_EQ(c.at("record").at("version"), 1);
  EXPECT_FALSE(c.contains("previous"));

  auto updated = stream.next();
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->event, "updated");
  auto u = data_of(*updated);
  EXPECT_EQ(u.at("record").at("data").at("status"), "closed");
  EXPECT_EQ(u.at("record").at("version"), 2);
  EXPECT_EQ(u.at("previous").at("data").at("status"), "open");
  EXPECT_EQ(u.at("previous").at("version"), 1);

  auto deleted = stream.next();
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->event, "deleted");
  auto d = data_of(*deleted);
  EXPECT_EQ(d.at("id"), id.c_str());
  EXPECT_EQ(d.at("previous").at("version"), 2);
  EXPECT_FALSE(d.contains("record"));

  // One batch: one audit entry, so one seq; its changes are numbered within it.
  auto b0 = stream.next(), b1 = stream.next();
  ASSERT_TRUE(b0 && b1);
  EXPECT_EQ(b0->event, "created");
  EXPECT_EQ(data_of(*b0).at("record").at("data").at("title"), "B");
  EXPECT_EQ(data_of(*b1).at("record").at("data").at("title"), "C");
  auto seq = [](const std::string& id) { return std::stoll(id.substr(0, id.find('-'))); };
  EXPECT_LT(seq(created->id), seq(updated->id));
  EXPECT_LT(seq(updated->id), seq(deleted->id));
  // Each record of the batch has its own event, in the batch's order.
  EXPECT_EQ(b0->id, std::to_string(seq(deleted->id) + 1));
  EXPECT_EQ(b1->id, std::to_string(seq(deleted->id) + 2));
  // Nothing else came: the next event is about a change made after all of these.
  auto marker = record_id(create(t, ticket("marker", "open", 1)));
  auto after = stream.next();
  ASSERT_TRUE(after);
  EXPECT_EQ(data_of(*after).at("id"), marker.c_str()) << "an event nobody caused";
}

TEST_F(Events, FilterNarrowsTheStreamAndAgreesWithTheList) {
  auto t = new_tenant(port(), "ev-filter");
  create_tickets(t);
  EventStream filtered(port(), events_path(t, "status = 'open' and priority >= 2"),
                       bearer(t.owner.token));
  EventStream everything(port(), events_path(t), bearer(t.owner.token));
  ASSERT_TRUE(filtered.open() && everything.open());

  auto wanted = record_id(create(t, ticket("wanted", "open", 3)));
  record_id(create(t, ticket("closed", "closed", 5)));
  auto low = record_id(create(t, ticket("low", "open", 1)));
  // Leaves the view: delivered, so the client can drop it.
  ASSERT_EQ(status(send_json(port(), "PATCH", t.base + "/tickets/records/" + wanted, t.owner.token,
                             R"({"status":"closed"})")),
            200);
  // Never in view: not delivered.
  ASSERT_EQ(status(send_json(port(), "PATCH", t.base + "/tickets/records/" + low, t.owner.token,
                             R"({"title":"still low"})")),
            200);
  auto last = record_id(create(t, ticket("last", "open", 9)));

  auto got = through(filtered, last);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].event, "created");
  EXPECT_EQ(data_of(got[0]).at("id"), wanted.c_str());
  EXPECT_EQ(got[1].event, "updated");
  EXPECT_EQ(data_of(got[1]).at("id"), wanted.c_str());
  EXPECT_EQ(got[2].event, "created");
  EXPECT_EQ(data_of(got[2]).at("id"), last.c_str());
  auto all = through(everything, last);
  ASSERT_EQ(all.size(), 6u);

  // The in-memory filter agrees with the SQL one: replay every creation through a filtered stream
  // and compare with the list under the same filter.
  auto start = all.front().id;  // the first creation; replays start after it
  std::vector<json::object> varied = {
      {{"title", "Alpha beta"}, {"status", "open"}, {"priority", 2}, {"tags", json::array{"x"}}},
      {{"title", "alphabet"},
       {"status", "closed"},
       {"priority", 7},
       {"due", "2026-01-02T00:00:00Z"}},
      {{"title", "Gamma"}, {"status", "open"}, {"priority", 4}, {"urgent", true}},
      {{"title", "delta ALPHA"}, {"status", "open"}, {"priority", 10}, {"code", "D-1"}},
      {{"title", "epsilon"},
       {"status", "closed"},
       {"priority", 0},
       {"tags", json::array{"x", "y"}}},
  };
  for (const auto& v : varied) record_id(create(t, v));
  for (std::string filter :
       {"priority > 3", "not (priority > 3)", "title contains 'alpha'", "title prefix 'Al'",
        "status in ('closed')", "due is null", "due is not null", "due < '2027-01-01T00:00:00Z'",
        "not (due < '2027-01-01T00:00:00Z')", "urgent = true", "urgent != true", "code != 'D-1'",
        "tags contains 'x'", "not (tags contains 'y')",
        "(status = 'open' or priority = 0) and not title contains 'gamma'"}) {
    auto list =
        send_json(port(), "GET", t.base + "/tickets/records?limit=200&filter=" + encode(filter),
                  t.owner.token);
    ASSERT_EQ(status(list), 200) << filter << ": " << list->body;
    std::set<std::string> listed;
    auto page = json_of(*list);
    for (const auto& r : page.at("records").as_array()) {
      if (r.at("id") != wanted.c_str()) listed.insert(std::string(r.at("id").as_string()));
    }
    EventStream replay(port(), events_path(t, filter),
                       bearer(t.owner.token) + "Last-Event-ID: " + start + "\r\n");
    ASSERT_TRUE(replay.open()) << filter;
    // Replayed creations whose record matches now (none of them changed since, except `wanted`,
    // which is left out of both sides).
    std::set<std::string> streamed;
    for (const auto& e : until_heartbeat(replay)) {
      auto id = std::string(data_of(e).at("id").as_string());
      if (e.event == "created" && id != wanted && id != low) streamed.insert(id);
      if (e.event == "updated" && id == low) streamed.insert(id);
    }
    EXPECT_EQ(streamed, listed) << filter;
  }
}

TEST_F(Events, LastEventIdResumesExactlyOnce) {
  auto t = new_tenant(port(), "ev-resume");
  create_tickets(t);
  std::vector<ServerSentEvent> first;
  {
    EventStream stream(port(), events_path(t), bearer(t.owner.token));
    ASSERT_TRUE(stream.open());
    for (int i = 0; i < 3; ++i) record_id(create(t, ticket("r" + std::to_string(i), "open", i)));
    for (int i = 0; i < 3; ++i) {
      auto e = stream.next();
      ASSERT_TRUE(e);
      first.push_back(*e);
    }
  }
  // While nobody listens.
  for (int i = 3; i < 5; ++i) record_id(create(t, ticket("r" + std::to_string(i), "open", i)));

  EventStream resumed(port(), events_path(t),
                      bearer(t.owner.token) + "Last-Event-ID: " + first[1].id + "\r\n");
  ASSERT_TRUE(resumed.open());
  auto replayed = until_heartbeat(resumed);
  ASSERT_EQ(replayed.size(), 3u);
  EXPECT_EQ(replayed[0].id, first[2].id);
  EXPECT_EQ(replayed[0].data, first[2].data);
  EXPECT_EQ(data_of(replayed[1]).at("record").at("data").at("title"), "r3");
  EXPECT_EQ(data_of(replayed[2]).at("record").at("data").at("title"), "r4");
  record_id(create(t, ticket("live", "open", 1)));
  auto live = resumed.next();
  ASSERT_TRUE(live);
  EXPECT_EQ(data_of(*live).at("record").at("data").at("title"), "live");
  auto marker = record_id(create(t, ticket("marker", "open", 1)));
  auto after = resumed.next();
  ASSERT_TRUE(after);
  EXPECT_EQ(data_of(*after).at("id"), marker.c_str()) << "an event twice";

  // Within a batch.
  ASSERT_EQ(
      status(send_json(port(), "POST", t.base + "/tickets/records:batch", t.owner.token,
                       body_of(json::object{
                           {"operations",
                            json::array{
                                json::object{{"op", "create"}, {"data", ticket("b0", "open", 1)}},
                                json::object{{"op", "create"}, {"data", ticket("b1", "open", 1)}},
                                json::object{{"op", "create"}, {"data", ticket("b2", "open", 1)}},
                            }}}))),
      200);
  auto b0 = resumed.next();
  ASSERT_TRUE(b0);
  EventStream mid_batch(port(), events_path(t),
                        bearer(t.owner.token) + "Last-Event-ID: " + b0->id + "\r\n");
  auto rest = until_heartbeat(mid_batch);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(data_of(rest[0]).at("record").at("data").at("title"), "b1");
  EXPECT_EQ(data_of(rest[1]).at("record").at("data").at("title"), "b2");
}

// A stream opens with its position as an id without data: a client that reconnects before its
// first event resumes from there, and misses nothing that came meanwhile.
TEST_F(Events, AStreamOpensWithItsPositionSoAnEarlyReconnectMissesNothing) {
  auto t = new_tenant(port(), "ev-opening");
  create_tickets(t);
  std::string opened_at;
  {
    EventStream stream(port(), events_path(t), bearer(t.owner.token));
    ASSERT_TRUE(stream.open());
    EXPECT_FALSE(stream.next(300ms)) << "no change yet, so no event";
    opened_at = stream.last_event_id();
    ASSERT_FALSE(opened_at.empty()) << "the stream did not say where it opened";
  }  // gone before its first event
  auto id = record_id(create(t, ticket("while away", "open", 1)));
  EventStream resumed(port(), events_path(t),
                      bearer(t.owner.token) + "Last-Event-ID: " + opened_at + "\r\n");
  ASSERT_TRUE(resumed.open());
  auto e = resumed.next(10s);
  ASSERT_TRUE(e) << "the change made after the stream opened was missed";
  EXPECT_EQ(e->event, "created");
  EXPECT_EQ(data_of(*e).at("id"), id.c_str());
}

TEST_F(Events, PositionsThatCannotBeReplayedGetAReset) {
  auto t = new_tenant(port(), "ev-reset");
  create_tickets(t);
  // An id this org never reached.
  EventStream future(port(), events_path(t),
                     bearer(t.owner.token) + "Last-Event-ID: 999999999\r\n");
  auto reset = future.next();
  ASSERT_TRUE(reset);
  EXPECT_EQ(reset->event, "reset");
  EXPECT_TRUE(data_of(*reset).contains("reason"));

  // More changes than a stream replays (events_max_replay is 20 on this server).
  std::string start;
  {
    EventStream stream(port(), events_path(t), bearer(t.owner.token));
    record_id(create(t, ticket("first", "open", 1)));
    auto e = stream.next();
    ASSERT_TRUE(e);
    start = e->id;
  }
  for (int i = 0; i < 25; ++i) record_id(create(t, ticket("n" + std::to_string(i), "open", 1)));
  // Events are sealed just after their commits (decision 0020); the audit listing's first page
  // seals the org's committed ones, so the reset below stands after all 25.
  ASSERT_EQ(status(with_token(port(), "GET", "/v1/orgs/" + t.org + "/audit", t.owner.token)), 200);
  EventStream late(port(), events_path(t),
                   bearer(t.owner.token) + "Last-Event-ID: " + start + "\r\n");
  auto lost = late.next();
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->event, "reset");
  // The stream goes on from the reset's position.
  record_id(create(t, ticket("after reset", "open", 1)));
  auto next = late.next();
  ASSERT_TRUE(next);
  EXPECT_EQ(data_of(*next).at("record").at("data").at("title"), "after reset");
  EXPECT_GT(std::stoll(next->id), std::stoll(lost->id));
}

TEST_F(Events, BadRequestsGetPreciseErrors) {
  auto t = new_tenant(port(), "ev-bad");
  create_tickets(t);
  auto status_of = [&](const std::string& target, const std::string& headers) {
    EventStream s(port(), target, headers);
    return s.response() ? s.response()->status : 0;
  };
  auto owner = bearer(t.owner.token);
  EXPECT_EQ(status_of(events_path(t), ""), 401);
  EXPECT_EQ(status_of(events_path(t), owner + "Last-Event-ID: abc\r\n"), 400);
  EXPECT_EQ(status_of(events_path(t), owner + "Last-Event-ID: 12-x\r\n"), 400);
  EXPECT_EQ(status_of(events_path(t), owner + "Last-Event-ID: -3\r\n"), 400);
  EXPECT_EQ(status_of(t.base + "/tickets/events?since=1", owner), 400);
  EXPECT_EQ(status_of(t.base + "/nope/events", owner), 404);
  EventStream syntax(port(), events_path(t, "priority >"), owner);
  ASSERT_TRUE(syntax.response());
  EXPECT_EQ(syntax.response()->status, 400);
  EXPECT_NE(syntax.response()->body.find("position"), std::string::npos);
  EXPECT_EQ(status_of(events_path(t, "nope = 1"), owner), 400);
  EXPECT_EQ(status_of(events_path(t, "priority = 'high'"), owner), 400);
  EXPECT_EQ(status_of(events_path(t, "title = 'x'; DROP TABLE records"), owner), 400);

  auto stranger = sign_up(port(), "ev-stranger");
  EXPECT_EQ(status_of(events_path(t), bearer(stranger.token)), 404);
  auto viewer = sign_up(port(), "ev-viewer");
  add_member(t, viewer, "viewer");
  EXPECT_EQ(status_of(events_path(t), bearer(viewer.token)), 200);
}

// A stream ticket for the tenant's tickets collection, as `who`; its body ({ticket, expires_at,
// url}).
json::object stream_ticket(const Tenant& t, const std::string& token,
                           const std::string& collection = "tickets") {
  auto r = send_json(t.port, "POST", t.base + "/" + collection + "/events/tickets", token);
  EXPECT_EQ(status(r), 201) << (r ? r->body : "no answer");
  return status(r) == 201 ? json_of(*r) : json::object{};
}

// What a browser's EventSource does: no Authorization, the ticket in the URL; and when it opens a
// new stream to resume, a new ticket and ?last_event_id=.
TEST_F(Events, AStreamTicketOpensItsOneStreamOnceWithoutAuthorization) {
  auto t = new_tenant(port(), "ev-ticket");
  create_tickets(t);
  auto issued = stream_ticket(t, t.owner.token);
  ASSERT_TRUE(issued.contains("ticket"));
  std::string url(issued.at("url").as_string());
  std::string secret(issued.at("ticket").as_string());
  EXPECT_EQ(url, events_path(t) + "?ticket=" + secret);
  EXPECT_TRUE(secret.starts_with("lt_"));

  std::vector<ServerSentEvent> seen;
  {
    EventStream stream(port(), url, "");
    ASSERT_TRUE(stream.open()) << (stream.response() ? stream.response()->body : "no answer");
    for (int i = 0; i < 3; ++i) record_id(create(t, ticket("t" + std::to_string(i), "open", i)));
    for (int i = 0; i < 3; ++i) {
      auto e = stream.next();
      ASSERT_TRUE(e);
      seen.push_back(*e);
    }
  }
  // Used up: the same URL again (what EventSource's own reconnect would send) is refused.
  EventStream again(port(), url, "Last-Event-ID: " + seen[2].id + "\r\n");
  ASSERT_TRUE(again.response());
  EXPECT_EQ(again.response()->status, 401);
  EXPECT_EQ(again.response()->header("www-authenticate"), "Bearer");

  // A new ticket resumes where the client stopped, with ?last_event_id=.
  record_id(create(t, ticket("while away", "open", 1)));
  auto renewed = stream_ticket(t, t.owner.token);
  EventStream resumed(
      port(), std::string(renewed.at("url").as_string()) + "&last_event_id=" + seen[0].id, "");
  ASSERT_TRUE(resumed.open());
  auto replayed = until_heartbeat(resumed);
  ASSERT_EQ(replayed.size(), 3u);
  EXPECT_EQ(replayed[0].id, seen[1].id);
  EXPECT_EQ(replayed[1].id, seen[2].id);
  EXPECT_EQ(data_of(replayed[2]).at("record").at("data").at("title"), "while away");

  // The ticket is never written to the log, not even in part of the URL.
  EXPECT_EQ(server_->process->log().find(secret), std::string::npos);
}

TEST_F(Events, AStreamTicketIsForItsOwnStreamOnly) {
  auto t = new_tenant(port(), "ev-ticket-scope");
  create_tickets(t);
  ASSERT_EQ(status(send_json(port(), "POST", t.base, t.owner.token,
                             R"({"name":"notes","fields":[{"name":"text","type":"text"}]})")),
            201);
  auto other = new_tenant(port(), "ev-ticket-other");
  create_tickets(other);
  auto status_of = [&](const std::string& target, const std::string& headers = "") {
    EventStream s(port(), target, headers);
    return s.response() ? s.response()->status : 0;
  };
  auto secret = [](const json::object& issued) {
    return std::string(issued.at("ticket").as_string());
  };
  // Another collection, another org: refused, and the ticket is spent.
  auto for_tickets = stream_ticket(t, t.owner.token);
  EXPECT_EQ(status_of(t.base + "/notes/events?ticket=" + secret(for_tickets)), 401);
  EXPECT_EQ(status_of(std::string(for_tickets.at("url").as_string())), 401);
  EXPECT_EQ(status_of(events_path(other) + "?ticket=" + secret(stream_ticket(t, t.owner.token))),
            401);
  // Made up, or not ticket-shaped.
  EXPECT_EQ(status_of(events_path(t) + "?ticket=lt_" + std::string(43, 'A')), 401);
  EXPECT_EQ(status_of(events_path(t) + "?ticket=nope"), 401);
  // A ticket and Authorization together: which one?
  EXPECT_EQ(status_of(std::string(stream_ticket(t, t.owner.token).at("url").as_string()),
                      bearer(t.owner.token)),
            400);
  // Unknown parameters are refused before the ticket is spent.
  auto kept = stream_ticket(t, t.owner.token);
  EXPECT_EQ(status_of(std::string(kept.at("url").as_string()) + "&since=1"), 400);
  EXPECT_EQ(status_of(std::string(kept.at("url").as_string())), 200);
  EXPECT_EQ(status_of(std::string(stream_ticket(t, t.owner.token).at("url").as_string()) +
                      "&last_event_id=x"),
            400);

  // Only a reader of the collection gets a ticket; a stranger learns nothing.
  auto stranger = sign_up(port(), "ev-ticket-stranger");
  EXPECT_EQ(status(send_json(port(), "POST", t.base + "/tickets/events/tickets", stranger.token)),
            404);
  EXPECT_EQ(status(send_json(port(), "POST", t.base + "/nope/events/tickets", t.owner.token)), 404);
  EXPECT_EQ(status(send_json(port(), "POST", t.base + "/tickets/events/tickets", "")), 401);

  // A ticket stands for its credential: once the member is gone, it opens nothing.
  auto viewer = sign_up(port(), "ev-ticket-viewer");
  add_member(t, viewer, "viewer");
  auto viewers = stream_ticket(t, viewer.token);
  ASSERT_EQ(status(send_json(port(), "DELETE", "/v1/orgs/" + t.org + "/members/" + viewer.id,
                             t.owner.token)),
            204);
  EXPECT_EQ(status_of(std::string(viewers.at("url").as_string())), 404);
}

TEST_F(Events, AStreamTicketExpires) {
  auto env = kEventsEnv;
  env["LIFTOFF_STREAM_TICKET_TTL"] = "1s";
  OwnServer short_lived(env);
  auto t = new_tenant(short_lived.port(), "ev-ticket-expiry");
  create_tickets(t);
  auto issued = stream_ticket(t, t.owner.token);
  ASSERT_TRUE(issued.contains("url"));
  std::this_thread::sleep_for(1500ms);
  EventStream late(short_lived.port(), std::string(issued.at("url").as_string()), "");
  ASSERT_TRUE(late.response());
  EXPECT_EQ(late.response()->status, 401);
}

TEST_F(Events, HeartbeatsKeepAnIdleStreamAlive) {
  auto t = new_tenant(port(), "ev-heartbeat");
  create_tickets(t);
  EventStream stream(port(), events_path(t), bearer(t.owner.token));
  ASSERT_TRUE(stream.open());
  // Nothing happens, but the stream says it is alive (every 300 ms here), again and again.
  for (auto end = std::chrono::steady_clock::now() + 30s;
       stream.comments() < 2 && std::chrono::steady_clock::now() < end;) {
    EXPECT_FALSE(stream.next(50ms)) << "an event on an idle stream";
  }
  EXPECT_GE(stream.comments(), 2);
}

TEST_F(Events, OtherTenantsChangesNeverArrive) {
  auto mine = new_tenant(port(), "ev-mine"), theirs = new_tenant(port(), "ev-theirs");
  create_tickets(mine);
  create_tickets(theirs);
  EventStream stream(port(), events_path(mine), bearer(mine.owner.token));
  ASSERT_TRUE(stream.open());
  for (int i = 0; i < 3; ++i) record_id(create(theirs, ticket("theirs", "open", 1)));
  auto marker = record_id(create(mine, ticket("mine", "open", 1)));
  auto e = stream.next();
  ASSERT_TRUE(e);
  EXPECT_EQ(data_of(*e).at("id"), marker.c_str());  // theirs, made before, never came
}

TEST_F(Events, AStreamEndsWhenItsReaderLosesAccess) {
  auto t = new_tenant(port(), "ev-revoke");
  create_tickets(t);
  auto viewer = sign_up(port(), "ev-leaver");
  add_member(t, viewer, "viewer");
  EventStream stream(port(), events_path(t), bearer(viewer.token));
  ASSERT_TRUE(stream.open());
  record_id(create(t, ticket("seen", "open", 1)));
  ASSERT_TRUE(stream.next());
  ASSERT_EQ(status(send_json(port(), "DELETE", "/v1/orgs/" + t.org + "/members/" + viewer.id,
                             t.owner.token)),
            204);
  record_id(create(t, ticket("not for you", "open", 1)));
  EXPECT_FALSE(stream.next(2s)) << "a removed member got an event";
  EXPECT_TRUE(stream.ends_within(2s));
}

TEST_F(Events, ChangesReachSubscribersOfOtherProcesses) {
  Server other(kEventsEnv);
  ASSERT_TRUE(other.wait_ready()) << other.process->log();
  auto t = new_tenant(port(), "ev-cross");
  create_tickets(t);
  EventStream there(other.port, events_path(t), bearer(t.owner.token));
  EventStream here(port(), events_path(t), bearer(t.owner.token));
  ASSERT_TRUE(there.open() && here.open());

  auto written_here = record_id(create(t, ticket("written here", "open", 1)));
  auto on_other = there.next(5s);
  ASSERT_TRUE(on_other) << "no event on the other process";
  EXPECT_EQ(data_of(*on_other).at("id"), written_here.c_str());

  Tenant via_other = t;
  via_other.port = other.port;
  auto written_there = record_id(create(via_other, ticket("written there", "open", 1)));
  auto a = here.next(5s);
  ASSERT_TRUE(a);
  EXPECT_EQ(data_of(*a).at("id"), written_here.c_str());
  auto b = here.next(5s);
  ASSERT_TRUE(b) << "no event from the other process";
  EXPECT_EQ(data_of(*b).at("id"), written_there.c_str());

  other.process->signal(SIGTERM);
  EXPECT_TRUE(there.ends_within(5s)) << "shutdown left a stream open";
  EXPECT_EQ(other.process->wait(10s), 0) << other.process->log();
}

TEST_F(Events, AStreamEndsWhenItsClientGoesAwayNotAtTheNextHeartbeat) {
  Server server;  // the default heartbeat: 15 s
  ASSERT_TRUE(server.wait_ready()) << server.process->log();
  auto t = new_tenant(server.port, "ev-gone");
  create_tickets(t);
  {
    EventStream stream(server.port, events_path(t), bearer(t.owner.token));
    ASSERT_TRUE(stream.open());
    EXPECT_EQ(metric(server.port, "http_streams_open"), 1);
  }  // the client closes its connection
  // Well before the next heartbeat (15 s), which would find the connection gone anyway.
  EXPECT_TRUE(eventually([&] { return metric(server.port, "http_streams_open") == 0; }, 10s))
      << "a stream outlived its client";
  server.process->signal(SIGTERM);
  EXPECT_EQ(server.process->wait(10s), 0) << server.process->log();
}

// Two processes whose hubs talk through `redis`, both subscribed, on a database of their own: the
// suite's server, which has no Redis, could seal their events first and announce them by NOTIFY,
// which they do not listen to (seen in CI: the event never came).
struct RedisPair {
  std::string database;
  Server writer, reader;
  explicit RedisPair(const TestRedis& redis)
      : database(fresh_database("liftoff_redis_pair")),
        writer(with_redis(redis, database)),
        reader(with_redis(redis, database)) {
    EXPECT_TRUE(writer.wait_ready()) << writer.process->log();
    EXPECT_TRUE(reader.wait_ready()) << reader.process->log();
  }
  static Server::Env with_redis(const TestRedis& redis, const std::string& database) {
    auto env = kEventsEnv;
    env["LIFTOFF_REDIS_URL"] = redis.url();
    env["LIFTOFF_DATABASE_URL"] = database;
    return env;
  }
  ~RedisPair() {
    for (Server* s : {&reader, &writer}) {
      s->process->signal(SIGTERM);
      EXPECT_EQ(s->process->wait(10s), 0) << s->process->log();
    }
  }
};

// Both hubs subscribe to the channel on Redis (and so listen on no database connection).
bool both_subscribed(const TestRedis& redis) {
  return eventually(
      [&] { return redis.cli("PUBSUB NUMSUB liftoff_records").find("\n2") != std::string::npos; });
}

TEST_F(Events, WithRedisConfiguredChangesTravelByPubSub) {
  TestRedis redis;
  ASSERT_TRUE(redis.running());
  RedisPair pair(redis);
  EXPECT_TRUE(both_subscribed(redis)) << redis.cli("PUBSUB NUMSUB liftoff_records");

  auto t = new_tenant(pair.writer.port, "ev-redis");
  create_tickets(t);
  EventStream stream(pair.reader.port, events_path(t), bearer(t.owner.token));
  ASSERT_TRUE(stream.open());
  // Only Redis can carry the news: there is no fallback poll.
  auto id = record_id(create(t, ticket("by redis", "open", 1)));
  auto e = stream.next(10s);
  ASSERT_TRUE(e) << "no event through redis";
  EXPECT_EQ(data_of(*e).at("id"), id.c_str());

  pair.reader.process->signal(SIGTERM);
  EXPECT_TRUE(stream.ends_within(5s));
}

// Redis gone (killed, as a crash leaves it): the writes go on, their news is lost, and when Redis
// is back each hub subscribes again and reads every org it serves, so no change is missed.
TEST_F(Events, ChangesMadeWhileRedisWasDownArriveWhenItIsBack) {
  TestRedis redis;
  ASSERT_TRUE(redis.running());
  RedisPair pair(redis);
  ASSERT_TRUE(both_subscribed(redis));
  auto t = new_tenant(pair.writer.port, "ev-redis-down");
  create_tickets(t);
  EventStream stream(pair.reader.port, events_path(t), bearer(t.owner.token));
  ASSERT_TRUE(stream.open());

  redis.kill();
  auto id = record_id(create(t, ticket("while redis was down", "open", 1)));
  ASSERT_FALSE(id.empty()) << "a write failed because Redis was down";
  ASSERT_TRUE(redis.restart());
  EXPECT_TRUE(both_subscribed(redis)) << redis.cli("PUBSUB NUMSUB liftoff_records");
  auto e = stream.next(30s);
  ASSERT_TRUE(e) << "the change made while Redis was down never arrived";
  EXPECT_EQ(data_of(*e).at("id"), id.c_str());
  // And the news travels by Redis again.
  auto after = record_id(create(t, ticket("after redis came back", "open", 2)));
  auto next = stream.next(10s);
  ASSERT_TRUE(next);
  EXPECT_EQ(data_of(*next).at("id"), after.c_str());
}

// A client that stops reading: the events it has not taken wait on the server only up to
// events_max_backlog; then its stream ends, and it resumes with Last-Event-ID from what it got,
// missing nothing and receiving nothing twice.
TEST(EventBacklog, AClientThatStopsReadingIsDisconnectedAndResumesWithoutLoss) {
  // More than one commit's events (a batch of 20 here, 600 KB), far less than all of them.
  OwnServer own(Server::Env{{"LIFTOFF_EVENTS_MAX_BACKLOG", "1m"},
                            // Writes to the stalled client wait rather than time out.
                            {"LIFTOFF_REQUEST_TIMEOUT", "60s"},
                            {"LIFTOFF_BODY_LIMIT", "1m"},
                            {"LIFTOFF_JSON_MAX_STRING_LENGTH", "64k"},
                            // Events carry what the audit log keeps of a record: all of it here.
                            {"LIFTOFF_AUDIT_VALUE_LIMIT", "2m"}});
  auto t = new_tenant(own.port(), "backlog");
  create_tickets(t);
  // A small receive buffer: what the server cannot send waits on its side (its own send buffer
  // holds at most net.ipv4.tcp_wmem's 4 MB).
  EventStream stalled(own.port(), events_path(t), bearer(t.owner.token), 16 * 1024);
  ASSERT_TRUE(stalled.open());
  // 12 MB of events: far more than the socket buffers between the server and this reader hold, so
  // most of them would wait on the server.
  const std::string filler(30'000, 'x');
  constexpr int kRecords = 400, kPerBatch = 20;
  for (int b = 0; b < kRecords / kPerBatch; ++b) {
    json::array operations;
    for (int i = b * kPerBatch; i < (b + 1) * kPerBatch; ++i) {
      auto data = ticket(std::to_string(i), "open", 1);
      data["meta"] = json::object{{"filler", filler}};
      operations.push_back(json::object{{"op", "create"}, {"data", data}});
    }
    ASSERT_EQ(status(send_json(own.port(), "POST", t.base + "/tickets/records:batch", t.owner.token,
                               body_of(json::object{{"operations", operations}}))),
              200);
  }
  std::vector<int> received;  // the records' numbers, in the order their events came
  auto take = [&](EventStream& stream) {
    while (auto e = stream.next(10s)) {
      received.push_back(
          std::stoi(std::string(data_of(*e).at("record").at("data").at("title").as_string())));
      if (received.size() == kRecords) break;
    }
  };
  take(stalled);
  EXPECT_TRUE(stalled.ended()) << "the stream neither ended nor delivered every event";
  ASSERT_LT(received.size(), static_cast<std::size_t>(kRecords));
  // Where it stood: its last event's id, or, when the first burst of events already passed the
  // backlog (sealed in one round, under load), the id the stream opened with.
  ASSERT_FALSE(stalled.last_event_id().empty());
  EventStream resumed(own.port(), events_path(t),
                      bearer(t.owner.token) + "Last-Event-ID: " + stalled.last_event_id() + "\r\n");
  ASSERT_TRUE(resumed.open());
  take(resumed);
  ASSERT_EQ(received.size(), static_cast<std::size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) EXPECT_EQ(received[i], i);
}

// A position older than events_replay_window gets a reset, not a replay. The window is measured
// against when the events were committed (the database's clock, which no test can drive), so the
// test lets a short window pass.
TEST(EventReplayWindow, APositionOlderThanTheWindowGetsAReset) {
  OwnServer own(Server::Env{{"LIFTOFF_EVENTS_REPLAY_WINDOW", "1s"}});
  auto t = new_tenant(own.port(), "window");
  create_tickets(t);
  std::string first;
  {
    EventStream stream(own.port(), events_path(t), bearer(t.owner.token));
    ASSERT_TRUE(stream.open());
    record_id(create(t, ticket("old", "open", 1)));
    auto e = stream.next();
    ASSERT_TRUE(e);
    first = e->id;
  }
  record_id(create(t, ticket("since", "open", 1)));
  std::optional<ServerSentEvent> answer;
  EXPECT_TRUE(eventually([&] {
    EventStream resumed(own.port(), events_path(t),
                        bearer(t.owner.token) + "Last-Event-ID: " + first + "\r\n");
    answer = resumed.next();
    return answer && answer->event == "reset";
  }));
  ASSERT_TRUE(answer);
  EXPECT_NE(std::string(data_of(*answer).at("reason").as_string()).find("events_replay_window"),
            std::string::npos)
      << answer->data;
}

}  // namespace
}  // namespace liftoff::testing
