// End-to-end: a server over two clusters, the control database (main, reserved) and shard eu-1
// (docs/decisions/0021-tenant-shards.md). A new org is placed on eu-1; its collections, records and
// audit log live there, and changes of its control-plane rows (rename, members) reach its audit log
// through the outbox before they answer.
#include <boost/json/array.hpp>

#include "e2e/e2e.hpp"
#include "e2e/records_support.hpp"

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

}  // namespace
}  // namespace liftoff::testing
