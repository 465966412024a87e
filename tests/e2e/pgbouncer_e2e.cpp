// Liftoff behind a real PgBouncer in transaction mode (issue 17): statements go unnamed, LISTEN and
// migrations go direct, and the suite's core flows work while two server connections carry every
// client connection of the node.
#include <gtest/gtest.h>

#include "e2e/e2e.hpp"
#include "e2e/records_support.hpp"
#include "support/pgbouncer.hpp"

namespace liftoff::testing {
namespace {

constexpr std::size_t kServerConnections = 2;

class PgBouncerE2E : public E2E {
 protected:
  static void SetUpTestSuite() {
    // The role and time zone Liftoff would set at connect, set by the pooler for each of its
    // server connections.
    bouncer_ = new TestPgBouncer(test_postgres(), "liftoff_test", kServerConnections,
                                 "SET ROLE liftoff_app; SET TimeZone TO UTC");
    ASSERT_TRUE(bouncer_->running());
    start({{"LIFTOFF_DATABASE_URL", bouncer_->url()},
           {"LIFTOFF_DATABASE_POOLER", "transaction"},
           {"LIFTOFF_DATABASE_DIRECT_URL", test_database_url()}});
  }
  static void TearDownTestSuite() {
    E2E::TearDownTestSuite();
    delete bouncer_;
  }
  // Server backends of the pooler: it reaches PostgreSQL over TCP, everything else here over the
  // Unix socket.
  static std::int64_t pooler_backends() {
    return count_of(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'liftoff_test' AND client_addr IS "
        "NOT NULL");
  }
  static inline TestPgBouncer* bouncer_ = nullptr;
};

TEST_F(PgBouncerE2E, CoreFlowsRunThroughTheTransactionModePooler) {
  auto t = new_tenant(port(), "pooled");
  create_tickets(t);
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    auto created = create(t, json::object{{"title", "t" + std::to_string(i)},
                                          {"status", i % 2 ? "open" : "closed"},
                                          {"priority", i}});
    ASSERT_EQ(status(created), 201) << (created ? created->body : "no answer");
    ids.emplace_back(json_of(*created).at("id").as_string());
  }
  auto auth = "Authorization: Bearer " + t.owner.token + "\r\n";
  auto path = t.base + "/tickets/records/" + ids.front();
  auto patched = http_request(port(), "PATCH", path,
                              auth +
                                  "Content-Type: application/merge-patch+json\r\nIf-Match: "
                                  "\"1\"\r\n",
                              R"({"status":"open"})");
  ASSERT_EQ(status(patched), 200) << patched->body;
  EXPECT_EQ(json_of(*patched).at("version"), 2);
  auto list = send_json(port(), "GET",
                        t.base + "/tickets/records?filter=" + encode("status = 'open'") +
                            "&sort=priority&count=exact",
                        t.owner.token);
  ASSERT_EQ(status(list), 200) << list->body;
  EXPECT_EQ(json_of(*list).at("records").as_array().size(), 11u);
  EXPECT_EQ(json_of(*list).at("count"), 11);
  EXPECT_EQ(status(http_request(port(), "DELETE", path, auth + "If-Match: \"2\"\r\n")), 204);
  EXPECT_EQ(status(send_json(port(), "GET", path, t.owner.token)), 404);
  auto audit = send_json(port(), "GET", "/v1/orgs/" + t.org + "/audit?limit=5", t.owner.token);
  ASSERT_EQ(status(audit), 200);
  EXPECT_EQ(json_of(*audit).at("events").as_array().front().at("action"), "record.deleted");

  // A member joins through an invitation; a session ends at logout (revocations reach the
  // session cache through LISTEN on the direct connection).
  auto member = sign_up(port(), "pooled-member");
  add_member(t, member, "viewer");
  EXPECT_EQ(status(send_json(port(), "GET", t.base, member.token)), 200);
  EXPECT_EQ(status(post_json(port(), "/v1/auth/logout", "", member.token)), 204);
  EXPECT_TRUE(
      eventually([&] { return status(send_json(port(), "GET", "/v1/me", member.token)) == 401; }));

  // Every statement of the node went through the pooler's few server connections.
  auto backends = pooler_backends();
  EXPECT_GT(backends, 0);
  EXPECT_LE(backends, static_cast<std::int64_t>(kServerConnections));
}

// Without the pooler setting the role, serve refuses to start rather than write as the owner.
TEST(PgBouncerStart, RefusesAPoolerWhoseSessionsDoNotActAsTheDatabaseRole) {
  TestPgBouncer bouncer(test_postgres(), "liftoff_test", 1, "");
  ASSERT_TRUE(bouncer.running());
  Server server({{"LIFTOFF_DATABASE_URL", bouncer.url()},
                 {"LIFTOFF_DATABASE_POOLER", "transaction"},
                 {"LIFTOFF_DATABASE_DIRECT_URL", test_database_url()}});
  EXPECT_EQ(server.process->wait(30s), 1) << server.process->log();
  EXPECT_NE(server.process->log().find("not database_role 'liftoff_app'"), std::string::npos)
      << server.process->log();
}

TEST(PgBouncerStart, ATransactionPoolerNeedsADirectUrl) {
  Server server(
      {{"LIFTOFF_DATABASE_URL", test_database_url()}, {"LIFTOFF_DATABASE_POOLER", "transaction"}});
  EXPECT_EQ(server.process->wait(30s), 2);
  EXPECT_NE(server.process->log().find("database_direct_url"), std::string::npos)
      << server.process->log();
}

}  // namespace
}  // namespace liftoff::testing
