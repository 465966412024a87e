// End-to-end: a server over two clusters, the control database (main, reserved) and shard eu-1
// (docs/decisions/0021-tenant-shards.md). A new org is placed on eu-1; its collections, records and
// audit log live there, and changes of its control-plane rows (rename, members) reach its audit log
// through the outbox before they answer.
#include <boost/json/array.hpp>

#include "e2e/e2e.hpp"
#include "e2e/records_support.hpp"
#include "support/event_stream.hpp"

namespace liftoff::testing {
namespace {
namespace json = boost::json;

TEST(E2EShards, AnOrgPlacedOnAShardIsServedThereAndItsControlChangesAreInItsLog) {
  const auto control = fresh_database("e2e_shards_main");
  const auto shard = fresh_database("e2e_shards_eu");
  OwnServer own({{"LIFTOFF_DATABASE_URL", control},
                 {"LIFTOFF_SHARDS", "eu-1=" + shard},
                 {"LIFTOFF_SHARD_RESERVED", "main"},
                 {"LIFTOFF_ORG_DELETION_GRACE", "0ms"},
                 {"LIFTOFF_ORG_PURGE_INTERVAL", "200ms"}});
  auto t = new_tenant(own.port(), "sharded");
  ASSERT_FALSE(t.org.empty());
  EXPECT_EQ(testing::scalar(control, "SELECT shard FROM orgs WHERE id = '" + t.org + "'"), "eu-1");

  create_tickets(t);
  auto created = create(t, json::object{{"title", "on eu-1"}, {"status", "open"}, {"priority", 1}});
  ASSERT_EQ(status(created), 201) << (created ? created->body : "no answer");
  auto renamed = send_json(own.port(), "PATCH", "/v1/orgs/" + t.org, t.owner.token,
                           R"({"name":"Sharded, renamed"})");
  ASSERT_EQ(status(renamed), 200) << (renamed ? renamed->body : "no answer");
  auto colleague = sign_up(own.port(), "colleague");
  add_member(t, colleague, "member");

  auto records_on = [](const std::string& url) {
    return testing::scalar(url, "SELECT count(*) FROM records");
  };
  EXPECT_EQ(records_on(shard), "1");
  EXPECT_EQ(records_on(control), "0");
  EXPECT_EQ(testing::scalar(control, "SELECT count(*) FROM audit_chains"), "0");
  EXPECT_EQ(testing::scalar(control, "SELECT count(*) FROM shard_outbox"), "0");

  // Newest first, as the API lists them: every change of the org, whichever plane it changed.
  auto audit = send_json(own.port(), "GET", "/v1/orgs/" + t.org + "/audit", t.owner.token);
  ASSERT_EQ(status(audit), 200);
  std::vector<std::string> actions;
  const auto listing = json_of(*audit);
  for (const auto& event : listing.at("events").as_array())
    actions.emplace_back(event.at("action").as_string());
  EXPECT_EQ(actions,
            (std::vector<std::string>{"member.joined", "invitation.created", "org.renamed",
                                      "record.created", "collection.created", "org.created"}));
  // The operator's verification walks the chain on the org's shard: all six events.
  auto verify = [&](const std::string& tag) {
    Process p({LIFTOFF_BINARY, "audit", "verify", "--org", t.org},
              {{"LIFTOFF_DATABASE_URL", control}, {"LIFTOFF_SHARDS", "eu-1=" + shard}},
              log_path(tag));
    EXPECT_EQ(p.wait(30s), 0) << p.log();
    return p.log();
  };
  auto verified = verify("audit-verify-sharded");
  EXPECT_NE(verified.find("6 events sealed, hash chain intact; 0 committed events not sealed yet "
                          "(on shard eu-1)"),
            std::string::npos)
      << verified;

  // Deleted (no grace here) and purged: the directory forgets the org, its chain stays on eu-1,
  // ending in org.purged, and is found there.
  ASSERT_EQ(status(send_json(own.port(), "DELETE", "/v1/orgs/" + t.org, t.owner.token)), 200);
  EXPECT_TRUE(eventually([&] {
    return testing::scalar(control, "SELECT count(*) FROM orgs WHERE id = '" + t.org + "'") ==
               "0" &&
           records_on(shard) == "0";
  })) << own.process().log();
  EXPECT_TRUE(eventually([&] {
    return testing::scalar(
               shard, "SELECT last_seq FROM audit_chains WHERE org_id = '" + t.org + "'") == "8";
  })) << "org.deleted and org.purged, sealed";
  auto after_purge = verify("audit-verify-purged");
  EXPECT_NE(after_purge.find("8 events sealed, hash chain intact; 0 committed events not sealed "
                             "yet (on shard eu-1)"),
            std::string::npos)
      << after_purge;
}

// `liftoff shard move` beside a running server: the org keeps being served, a stream opened
// before the move resumes after it (Last-Event-ID) without losing an event, and the move is in the
// org's audit log.
TEST(E2EShards, AnOrgMovedByTheCommandKeepsServingAndItsStreamResumes) {
  const auto control = fresh_database("e2e_move_main");
  const auto shard = fresh_database("e2e_move_eu");
  const std::map<std::string, std::string> env{{"LIFTOFF_DATABASE_URL", control},
                                               {"LIFTOFF_SHARDS", "eu-1=" + shard}};
  auto server_env = env;
  server_env["LIFTOFF_SHARD_RESERVED"] = "main";
  OwnServer own(server_env);
  auto t = new_tenant(own.port(), "moving");
  ASSERT_FALSE(t.org.empty());
  create_tickets(t);
  for (int i = 0; i < 3; ++i) {
    auto created = create(
        t, json::object{
               {"title", "before " + std::to_string(i)}, {"status", "open"}, {"priority", 1}});
    ASSERT_EQ(status(created), 201) << (created ? created->body : "no answer");
  }
  const auto events = t.base + "/tickets/events";
  EventStream before(own.port(), events, bearer(t.owner.token));
  ASSERT_TRUE(before.open());
  auto created = create(t, json::object{{"title", "seen"}, {"status", "open"}, {"priority", 1}});
  ASSERT_EQ(status(created), 201);
  // Events committed before the stream opened but sealed after it may come first.
  auto seen = before.next();
  while (seen && seen->data.find("\"seen\"") == std::string::npos) seen = before.next();
  ASSERT_TRUE(seen.has_value());

  Process mover({LIFTOFF_BINARY, "shard", "move", "--org", t.org, "--to", "main", "--json"}, env,
                log_path("shard-move"));
  ASSERT_EQ(mover.wait(60s), 0) << mover.log();
  const auto log = mover.log();
  const auto report = json::parse(log.substr(log.find("{\"org\""))).as_object();
  EXPECT_EQ(report.at("source").as_string(), "eu-1");
  EXPECT_EQ(report.at("target").as_string(), "main");
  EXPECT_EQ(report.at("rows").at("records").as_int64(), 4);
  EXPECT_EQ(testing::scalar(control, "SELECT shard FROM orgs WHERE id = '" + t.org + "'"), "main");
  EXPECT_EQ(testing::scalar(shard, "SELECT count(*) FROM records"), "0");

  // Served from main now: read, written, and the stream resumes where it was.
  auto after = create(t, json::object{{"title", "after"}, {"status", "open"}, {"priority", 1}});
  ASSERT_EQ(status(after), 201) << (after ? after->body : "no answer");
  EXPECT_EQ(testing::scalar(control, "SELECT count(*) FROM records"), "5");
  auto listed = send_json(own.port(), "GET", t.base + "/tickets/records", t.owner.token);
  ASSERT_EQ(status(listed), 200);
  const auto page = json_of(*listed);
  EXPECT_EQ(page.at("records").as_array().size(), 5u);
  EventStream resumed(own.port(), events,
                      bearer(t.owner.token) + "Last-Event-ID: " + seen->id + "\r\n");
  ASSERT_TRUE(resumed.open());
  auto next = resumed.next();
  ASSERT_TRUE(next.has_value());
  EXPECT_NE(next->data.find("\"after\""), std::string::npos) << next->data;

  auto audit = send_json(own.port(), "GET", "/v1/orgs/" + t.org + "/audit", t.owner.token);
  ASSERT_EQ(status(audit), 200);
  const auto listing = json_of(*audit);
  std::vector<std::string> actions;
  for (const auto& event : listing.at("events").as_array())
    actions.emplace_back(event.at("action").as_string());
  ASSERT_GE(actions.size(), 2u);
  EXPECT_EQ(actions[0], "record.created");
  EXPECT_EQ(actions[1], "org.moved");
}

}  // namespace
}  // namespace liftoff::testing
