// End-to-end: usage metering and quotas. API requests served by two processes, one of them
// restarted gracefully in the middle, are counted to the request; jobs match the jobs enqueued;
// usage reads back by hour or as CSV; the month's invoice prorates a plan change; the records
// quota answers 402 once the org's measured holdings plus what was stored since reach the plan's.
#include <fmt/chrono.h>

#include <boost/json/array.hpp>
#include <thread>

#include "e2e/e2e.hpp"
#include "support/event_stream.hpp"

namespace liftoff::testing {
namespace {
namespace json = boost::json;

// Usage written every 100 ms; mail configured (to a port where nothing listens: the jobs are
// enqueued, which is what is counted, and fail to send, which does not matter here).
const Server::Env kFastUsage{{"LIFTOFF_USAGE_FLUSH", "100ms"},
                             {"LIFTOFF_SMTP_HOST", "127.0.0.1"},
                             {"LIFTOFF_SMTP_PORT", "9"},
                             {"LIFTOFF_SMTP_SECURITY", "none"},
                             {"LIFTOFF_MAIL_FROM", "no-reply@usage.test"}};

std::string create_org(unsigned short port, const TestUser& owner, const std::string& name) {
  auto r = send_json(port, "POST", "/v1/orgs", owner.token,
                     json::serialize(json::object{{"name", name}}));
  EXPECT_EQ(status(r), 201) << (r ? r->body : "no response");
  return r && r->status == 201 ? std::string(json_of(*r).at("id").as_string()) : "";
}

std::int64_t stored_sum(const std::string& column, const std::string& org) {
  return count_of("SELECT coalesce(sum(" + column +
                      "), 0)::int8 FROM usage_hourly "
                      "WHERE org_id = $1::uuid",
                  db::Params(org));
}

// `n` reads of the org from `threads` threads at once; each must answer 200.
void read_org(unsigned short port, const TestUser& user, const std::string& org, int n,
              int threads = 4) {
  std::vector<std::thread> running;
  std::atomic<int> ok = 0;
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&, t] {
      for (int i = t; i < n; i += threads) {
        if (status(send_json(port, "GET", "/v1/orgs/" + org, user.token)) == 200) ++ok;
      }
    });
  }
  for (auto& t : running) t.join();
  EXPECT_EQ(ok.load(), n);
}

TEST(Usage, RequestsAcrossTwoProcessesAndAGracefulRestartAreCountedToTheRequest) {
  std::string org;
  TestUser owner;
  {
    OwnServer first(kFastUsage);
    OwnServer second(kFastUsage);
    owner = sign_up(first.port(), "usage-exact");
    org = create_org(first.port(), owner, "Metered");
    // Invitations enqueue one email job each, for the org.
    for (int i = 0; i < 3; ++i) {
      auto r = send_json(first.port(), "POST", "/v1/orgs/" + org + "/invitations", owner.token,
                         json::serialize(json::object{{"email", unique_email("usage-invitee")},
                                                      {"role", "viewer"}}));
      ASSERT_EQ(status(r), 201) << r->body;
    }
    std::thread other([&] { read_org(second.port(), owner, org, 150); });
    read_org(first.port(), owner, org, 200);
    other.join();
    // Both stop (SIGTERM): each writes its last batch on the way out.
  }
  {
    OwnServer restarted(kFastUsage);
    read_org(restarted.port(), owner, org, 50);
  }
  // 3 invitations + 200 + 150 + 50 reads: every admitted request on the org's routes.
  EXPECT_EQ(stored_sum("api_requests", org), 3 + 200 + 150 + 50);
  EXPECT_EQ(stored_sum("jobs", org),
            count_of("SELECT count(*) FROM jobs WHERE org_id = $1::uuid", db::Params(org)));
  EXPECT_EQ(stored_sum("jobs", org), 3);
}

// A new user's org on an Enterprise contract of `limits`, with a collection "notes" (title).
std::pair<TestUser, std::string> enterprise_with_notes(unsigned short port, const std::string& tag,
                                                       const std::string& limits) {
  auto owner = sign_up(port, tag);
  auto org = create_org(port, owner, tag);
  set_plan(org, "enterprise", limits);
  auto c = send_json(port, "POST", "/v1/orgs/" + org + "/collections", owner.token,
                     R"({"name":"notes","fields":[{"name":"title","type":"text"}]})");
  EXPECT_EQ(status(c), 201) << (c ? c->body : "no response");
  return {owner, org};
}

class UsageApi : public E2E {
 protected:
  static void SetUpTestSuite() {
    start({{"LIFTOFF_USAGE_FLUSH", "100ms"}, {"LIFTOFF_USAGE_HOLDINGS_REFRESH", "1h"}});
  }
};

TEST_F(UsageApi, ReadsBackByHourAndAsCsv) {
  auto ann = sign_up(port(), "usage-read");
  auto org = create_org(port(), ann, "Readable");
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org, ann.token)), 200);
  ASSERT_TRUE(eventually([&] { return stored_sum("api_requests", org) >= 5; }));
  auto r = send_json(port(), "GET", "/v1/orgs/" + org + "/usage?granularity=hour", ann.token);
  ASSERT_EQ(status(r), 200) << r->body;
  auto body = json_of(*r);
  EXPECT_EQ(body.at("granularity"), "hour");
  const auto& rows = body.at("usage").as_array();
  ASSERT_FALSE(rows.empty());
  std::int64_t requests = 0;
  for (const auto& row : rows) requests += row.at("api_requests").as_int64();
  EXPECT_GE(requests, 5);

  auto csv = send_json(port(), "GET", "/v1/orgs/" + org + "/usage?format=csv", ann.token);
  ASSERT_EQ(status(csv), 200);
  EXPECT_EQ(csv->header("content-type"), "text/csv; charset=utf-8");
  EXPECT_EQ(csv->body.rfind("start,api_requests,events,jobs,records,storage_bytes\r\n", 0), 0u)
      << csv->body;

  // Bad input: precise 400s and 422s.
  auto bad = send_json(port(), "GET", "/v1/orgs/" + org + "/usage?granularity=week", ann.token);
  ASSERT_EQ(status(bad), 400);
  EXPECT_EQ(problem(*bad).at("errors").at(0).at("field"), "granularity");
  auto long_period =
      send_json(port(), "GET",
                "/v1/orgs/" + org +
                    "/usage?granularity=hour&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z",
                ann.token);
  EXPECT_EQ(status(long_period), 422);
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org + "/usage?unknown=1", ann.token)),
            400);
  // Billing is for admins: a viewer of another org cannot read it at all.
  auto outsider = sign_up(port(), "usage-outsider");
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org + "/usage", outsider.token)), 404);
}

TEST_F(UsageApi, TheInvoiceProratesAPlanChangeAndRendersAsHtml) {
  auto ann = sign_up(port(), "usage-invoice");
  auto org = create_org(port(), ann, "Billed <& Co>");
  auto changed =
      send_json(port(), "PUT", "/v1/orgs/" + org + "/plan", ann.token, R"({"plan":"starter"})");
  ASSERT_EQ(status(changed), 200) << changed->body;
  auto now = std::chrono::system_clock::now();
  auto month = fmt::format("{:%Y-%m}", std::chrono::floor<std::chrono::days>(now));
  auto r = send_json(port(), "GET", "/v1/orgs/" + org + "/invoices/" + month, ann.token);
  ASSERT_EQ(status(r), 200) << r->body;
  auto invoice = json_of(*r);
  EXPECT_EQ(invoice.at("status"), "open");
  EXPECT_EQ(invoice.at("currency"), "usd");
  const auto& lines = invoice.at("lines").as_array();
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("item"), "free");
  EXPECT_EQ(lines[0].at("amount_cents"), 0);
  EXPECT_EQ(lines[1].at("item"), "starter");
  // Created this month: the starter plan's share of the month, at most its price.
  auto starter = lines[1].at("amount_cents").as_int64();
  EXPECT_GT(starter, 0);
  EXPECT_LE(starter, 2900);
  EXPECT_EQ(invoice.at("total_cents").as_int64(), starter);

  auto html = send_json(port(), "GET", "/v1/orgs/" + org + "/invoices/" + month + "?format=html",
                        ann.token);
  ASSERT_EQ(status(html), 200);
  EXPECT_EQ(html->header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(html->body.find("Billed &lt;&amp; Co&gt;"), std::string::npos) << html->body;

  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org + "/invoices/2019-01", ann.token)),
            404);  // before the org existed
  EXPECT_EQ(status(send_json(port(), "GET", "/v1/orgs/" + org + "/invoices/soon", ann.token)), 404);
  EXPECT_EQ(status(send_json(port(), "GET",
                             "/v1/orgs/" + org + "/invoices/" + month + "?format=pdf", ann.token)),
            400);
}

TEST_F(UsageApi, RecordsPastThePlansQuotaAreRefusedWith402) {
  auto [ann, org] = enterprise_with_notes(port(), "usage-quota", R"({"records": 3})");
  const std::string records = "/v1/orgs/" + org + "/collections/notes/records";
  // The first record is stored before the org's holdings are known; they are measured next.
  auto measured = metric(port(), "usage_holdings_measured_total");
  ASSERT_EQ(status(send_json(port(), "POST", records, ann.token, R"({"title":"1"})")), 201);
  ASSERT_TRUE(
      eventually([&] { return metric(port(), "usage_holdings_measured_total") > measured; }));
  ASSERT_EQ(status(send_json(port(), "POST", records, ann.token, R"({"title":"2"})")), 201);
  const std::string keyed = "Content-Type: application/json\r\nAuthorization: Bearer " + ann.token +
                            "\r\nIdempotency-Key: usage-quota-3\r\n";
  ASSERT_EQ(status(http_request(port(), "POST", records, keyed, R"({"title":"3"})")), 201);
  auto over = send_json(port(), "POST", records, ann.token, R"({"title":"4"})");
  ASSERT_EQ(status(over), 402) << over->body;
  auto body = problem(*over);
  EXPECT_EQ(body.at("limit").at("name"), "records");
  EXPECT_EQ(body.at("limit").at("value"), 3);
  EXPECT_EQ(body.at("limit").at("plan"), "enterprise");
  // A retry of the third create (its answer lost) answers as it did, at the quota or not.
  auto retried = http_request(port(), "POST", records, keyed, R"({"title":"3"})");
  ASSERT_EQ(status(retried), 201) << retried->body;
  EXPECT_EQ(retried->header("idempotent-replayed"), "true");
  // A batch that would create past it is refused whole.
  auto batch = send_json(port(), "POST", records + ":batch", ann.token,
                         R"({"operations":[{"op":"create","data":{"title":"5"}}]})");
  EXPECT_EQ(status(batch), 402);
  EXPECT_EQ(count_of("SELECT count(*) FROM records WHERE org_id = $1::uuid", db::Params(org)), 3);
}

TEST_F(UsageApi, EventStreamsPastThePlansAre402AndDeliveredEventsAreCounted) {
  auto [ann, org] = enterprise_with_notes(port(), "usage-streams", R"({"event_streams": 1})");
  const std::string path = "/v1/orgs/" + org + "/collections/notes/events";
  const std::string auth = "Authorization: Bearer " + ann.token + "\r\n";
  EventStream first(port(), path, auth);
  ASSERT_TRUE(first.open());
  EventStream second(port(), path, auth);
  ASSERT_TRUE(second.response());
  EXPECT_EQ(second.response()->status, 402);
  EXPECT_EQ(problem(*second.response()).at("limit").at("name"), "event_streams");
  // What the open stream delivers counts as the org's events.
  ASSERT_EQ(status(send_json(port(), "POST", "/v1/orgs/" + org + "/collections/notes/records",
                             ann.token, R"({"title":"seen"})")),
            201);
  auto event = first.next();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->event, "created");
  EXPECT_TRUE(eventually([&] { return stored_sum("events", org) == 1; }))
      << stored_sum("events", org);
}

}  // namespace
}  // namespace liftoff::testing
