// The process's own limits under hostile clients: the memory guard that refuses heavy requests
// above the high-water mark, connections and event streams per client address and per
// organization, and the first-byte timeout of a new connection. Each runs its own server with the
// limit set low.
#include "e2e/records_support.hpp"
#include "support/event_stream.hpp"

namespace liftoff::testing {
namespace {

TEST(Limits, AboveTheMemoryHighWaterHeavyRequestsGet503AndLightOnesAreServed) {
  // Always above: the process holds more than 1 MiB.
  OwnServer own(Server::Env{{"LIFTOFF_MEMORY_HIGH_WATER", "1m"}});
  auto port = own.port();
  ASSERT_TRUE(eventually([&] { return metric(port, "memory_shedding") == 1; }));
  // Light: health, sign-up, an org and a collection.
  auto t = new_tenant(port, "guard");
  create_tickets(t);
  // Heavy: record lists and writes, the audit log.
  auto list = send_json(port, "GET", t.base + "/tickets/records", t.owner.token);
  ASSERT_EQ(status(list), 503);
  EXPECT_EQ(list->header("retry-after"), "1");
  EXPECT_NE(std::string(problem(*list).at("detail").as_string()).find("short of memory"),
            std::string::npos);
  EXPECT_EQ(status(create(t, {{"title", "A"}, {"status", "open"}, {"priority", 1}})), 503);
  EXPECT_EQ(status(send_json(port, "GET", "/v1/orgs/" + t.org + "/audit", t.owner.token)), 503);
  EXPECT_GE(metric(port, "memory_shed_requests_total"), 3);
  EXPECT_GT(metric(port, "memory_watched_bytes"), metric(port, "memory_high_water_bytes"));
  EXPECT_EQ(status(http_request(port, "GET", "/healthz")), 200);
}

TEST(Limits, OneClientAddressHoldsAtMostItsShareOfConnections) {
  OwnServer own(Server::Env{{"LIFTOFF_MAX_CONNECTIONS_PER_CLIENT", "3"},
                            {"LIFTOFF_IDLE_TIMEOUT", "60s"},
                            {"LIFTOFF_FIRST_BYTE_TIMEOUT", "60s"}});
  auto port = own.port();
  std::vector<std::unique_ptr<RawConnection>> held;
  held.push_back(std::make_unique<RawConnection>(port));
  ASSERT_TRUE(held.back()->connected());
  // The connections that asked whether the server was ready are gone once the server counts only
  // this one (the count is given back as each closes, with the client's share).
  ASSERT_TRUE(eventually([&] { return metric(*held.front(), "http_connections_open") == 1; }));
  for (int i = 1; i < 3; ++i) {
    held.push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(held.back()->connected());
  }
  // The three are accepted (each answers), and the fourth is refused with 429.
  for (auto& c : held) {
    ASSERT_TRUE(c->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c->read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  auto refused = http_request(port, "GET", "/healthz");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429);
  EXPECT_EQ(refused->header("retry-after"), "1");
  // One closes: its place is free again.
  held.pop_back();
  EXPECT_TRUE(eventually([&] { return status(http_request(port, "GET", "/healthz")) == 200; }));
  // Counted.
  EXPECT_GE(metric(*held.front(), "http_client_connections_rejected_total"), 1);
}

TEST(Limits, ANewConnectionMustBeginWithinTheFirstByteTimeoutNotTheIdleTimeout) {
  OwnServer own(
      Server::Env{{"LIFTOFF_FIRST_BYTE_TIMEOUT", "300ms"}, {"LIFTOFF_IDLE_TIMEOUT", "60s"}});
  RawConnection silent(own.port());
  ASSERT_TRUE(silent.connected());
  EXPECT_TRUE(silent.closed_by_peer(20s));  // long before the 60 s idle timeout
  // After a request, the idle timeout applies: the connection serves a second one.
  RawConnection used(own.port());
  ASSERT_TRUE(used.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(used.read_response());
  std::this_thread::sleep_for(600ms);  // twice the first-byte timeout, a fiftieth of the idle one
  ASSERT_TRUE(used.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto second = used.read_response();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200);
}

TEST(Limits, EventStreamsAreCappedPerClientAddressAndPerOrganization) {
  OwnServer own(Server::Env{{"LIFTOFF_EVENTS_MAX_STREAMS_PER_CLIENT", "3"},
                            {"LIFTOFF_EVENTS_MAX_STREAMS_PER_ORG", "2"}});
  auto port = own.port();
  auto a = new_tenant(port, "streams-a");
  auto b = new_tenant(port, "streams-b");
  create_tickets(a);
  create_tickets(b);
  auto open = [&](const Tenant& t) {
    return std::make_unique<EventStream>(port, t.base + "/tickets/events",
                                         "Authorization: Bearer " + t.owner.token + "\r\n");
  };
  auto a1 = open(a);
  auto a2 = open(a);
  ASSERT_TRUE(a1->open());
  ASSERT_TRUE(a2->open());
  auto a3 = open(a);  // the org's third
  ASSERT_TRUE(a3->response());
  EXPECT_EQ(a3->response()->status, 429);
  EXPECT_NE(a3->response()->body.find("events_max_streams_per_org"), std::string::npos);
  auto b1 = open(b);  // the client's third
  ASSERT_TRUE(b1->open());
  auto b2 = open(b);  // the client's fourth
  ASSERT_TRUE(b2->response());
  EXPECT_EQ(b2->response()->status, 429);
  EXPECT_NE(b2->response()->body.find("events_max_streams_per_client"), std::string::npos);
  // Closing one frees its place (the stream notices its client left, see events_e2e).
  a1.reset();
  EXPECT_TRUE(eventually([&] { return open(b)->open(); }));
}

TEST(Limits, EventStreamsAreCappedPerProcess) {
  OwnServer own(Server::Env{{"LIFTOFF_EVENTS_MAX_STREAMS", "1"}});
  auto t = new_tenant(own.port(), "streams-process");
  create_tickets(t);
  auto headers = "Authorization: Bearer " + t.owner.token + "\r\n";
  EventStream first(own.port(), t.base + "/tickets/events", headers);
  ASSERT_TRUE(first.open());
  EventStream second(own.port(), t.base + "/tickets/events", headers);
  ASSERT_TRUE(second.response());
  EXPECT_EQ(second.response()->status, 503);
  EXPECT_FALSE(second.response()->header("retry-after").empty());
}

TEST(Limits, AnOrganizationReadingPastItsReadRateGets429WithRetryAfter) {
  // 64 kB at once, then 1 kB a second: the third read of a 40 kB record waits about 16 s.
  OwnServer own(Server::Env{{"LIFTOFF_ORG_READ_RATE", "1k"}, {"LIFTOFF_REQUEST_BUDGET", "64k"}});
  auto port = own.port();
  auto heavy = new_tenant(port, "reader");
  auto other = new_tenant(port, "neighbour");
  create_tickets(heavy);
  create_tickets(other);
  json::object ticket{{"title", "T"},
                      {"status", "open"},
                      {"priority", 1},
                      {"meta", {{"a", std::string(20000, 'x')}, {"b", std::string(20000, 'y')}}}};
  ASSERT_EQ(status(create(heavy, ticket)), 201);
  ASSERT_EQ(status(create(other, ticket)), 201);
  auto list = [&](const Tenant& t) {
    return send_json(port, "GET", t.base + "/tickets/records?limit=10", t.owner.token);
  };
  EXPECT_EQ(status(list(heavy)), 200);
  // The same answer again, from the list cache: no query, but read all the same. Into debt: a
  // read is never cut short.
  EXPECT_EQ(status(list(heavy)), 200);
  auto refused = list(heavy);
  ASSERT_EQ(status(refused), 429);
  auto retry = std::stoi(refused->header("retry-after"));
  EXPECT_GE(retry, 10);
  EXPECT_LE(retry, 17);
  EXPECT_NE(std::string(problem(*refused).at("detail").as_string()).find("read_rate"),
            std::string::npos);
  // The org's other reads draw from the same rate: its audit log, its export, a replay.
  auto org = "/v1/orgs/" + heavy.org;
  EXPECT_EQ(status(send_json(port, "GET", org + "/audit", heavy.owner.token)), 429);
  EXPECT_EQ(status(send_json(port, "GET", org + "/audit/export", heavy.owner.token)), 429);
  auto replay =
      http_request(port, "GET", heavy.base + "/tickets/events",
                   "Authorization: Bearer " + heavy.owner.token + "\r\nLast-Event-ID: 1\r\n");
  EXPECT_EQ(status(replay), 429);
  // The neighbour reads on.
  EXPECT_EQ(status(list(other)), 200);
  EXPECT_EQ(status(send_json(port, "GET", "/v1/orgs/" + other.org + "/audit", other.owner.token)),
            200);
}

}  // namespace
}  // namespace liftoff::testing
