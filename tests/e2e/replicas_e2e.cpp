// Two Liftoff nodes over a primary and two streaming replicas that apply every commit a second
// late: reads go to the replicas, yet a client reads its own writes on either node (issue 17;
// docs/decisions/0010-read-your-writes.md).
#include <gtest/gtest.h>

#include "e2e/e2e.hpp"
#include "e2e/records_support.hpp"
#include "support/postgres.hpp"

namespace liftoff::testing {
namespace {

class ReplicasE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = start_cluster("liftoff_replicas_e2e", 2).release();
    ASSERT_TRUE(cluster_);
    std::string replicas;
    for (const auto& url : cluster_->replica_urls())
      replicas += (replicas.empty() ? "" : ",") + url;
    Server::Env env{{"LIFTOFF_DATABASE_URL", cluster_->pg->url()},
                    {"LIFTOFF_DATABASE_REPLICA_URLS", replicas},
                    {"LIFTOFF_MAX_REPLICA_LAG", "60s"},
                    {"LIFTOFF_REPLICA_PROBE_INTERVAL", "20ms"}};
    a_ = new OwnServer(env);  // applies the migrations
    b_ = new OwnServer(env);
    delay_replay(*cluster_->pg, "1s");
  }
  static void TearDownTestSuite() {
    delete b_;
    delete a_;
    delete cluster_;
  }
  void SetUp() override {
    ASSERT_TRUE(cluster_ && a_ && b_);
    for (auto* node : {a_, b_}) {
      for (const auto* replica : {"replica-1", "replica-2"}) {
        ASSERT_TRUE(eventually([&] {
          return metric(node->port(),
                        std::string("db_replica_in_rotation{database=\"") + replica + "\"}") == 1;
        }));
      }
    }
  }

  static std::optional<HttpResponse> get(unsigned short port, const Tenant& t,
                                         const std::string& path, const std::string& token = "") {
    std::string headers = "Authorization: Bearer " + t.owner.token + "\r\n";
    if (!token.empty()) headers += "Liftoff-Consistency: " + token + "\r\n";
    return http_request(port, "GET", path, headers);
  }

  static inline OwnCluster* cluster_ = nullptr;
  static inline OwnServer* a_ = nullptr;
  static inline OwnServer* b_ = nullptr;
};

TEST_F(ReplicasE2E, AWriteIsReadBackOnEitherNodeWhileEveryReplicaLags) {
  auto t = new_tenant(a_->port(), "replicas");
  create_tickets(t);
  int stale_elsewhere = 0;
  constexpr int kPairs = 100;
  for (int i = 0; i < kPairs; ++i) {
    auto created = create(
        t, json::object{{"title", "t" + std::to_string(i)}, {"status", "open"}, {"priority", i}});
    ASSERT_EQ(status(created), 201) << (created ? created->body : "no answer");
    auto token = created->header("liftoff-consistency");
    ASSERT_TRUE(db::Lsn::parse(token)) << "'" << token << "'";
    auto id = std::string(json_of(*created).at("id").as_string());
    auto one = t.base + "/tickets/records/" + id;
    auto listed = t.base + "/tickets/records?filter=" + encode("priority = " + std::to_string(i));

    // On the other node, with the token: the record, and a list that has it.
    auto got = get(b_->port(), t, one, token);
    ASSERT_EQ(status(got), 200) << "pair " << i;
    EXPECT_GE(db::Lsn::parse(got->header("liftoff-consistency")), db::Lsn::parse(token));
    auto list = get(b_->port(), t, listed, token);
    ASSERT_EQ(status(list), 200);
    EXPECT_NE(list->body.find(id), std::string::npos) << "pair " << i;
    // On the node that took the write, without the token: it remembers its writer.
    EXPECT_EQ(status(get(a_->port(), t, one)), 200) << "pair " << i;
    // On the other node without the token, a replica answers: a second behind, it has not the
    // record yet (the lag the token bridges is real).
    if (i < 10 && status(get(b_->port(), t, one)) == 404) ++stale_elsewhere;
  }
  EXPECT_GT(stale_elsewhere, 0);
  EXPECT_GT(metric(b_->port(), "db_reads_total{database=\"replica-1\"}") +
                metric(b_->port(), "db_reads_total{database=\"replica-2\"}"),
            0);
  EXPECT_GT(metric(b_->port(), "db_primary_reads_total{reason=\"replicas_behind\"}"), 0);
}

TEST_F(ReplicasE2E, AReadWithoutWritesIsServedByAReplicaAndCarriesNoToken) {
  auto t = new_tenant(a_->port(), "replica-reads");
  create_tickets(t);
  std::this_thread::sleep_for(1500ms);  // the replicas apply the collection
  auto before = metric(b_->port(), "db_reads_total{database=\"replica-1\"}") +
                metric(b_->port(), "db_reads_total{database=\"replica-2\"}");
  auto list = get(b_->port(), t, t.base + "/tickets/records");
  ASSERT_EQ(status(list), 200) << list->body;
  EXPECT_EQ(list->header("liftoff-consistency"), "");
  EXPECT_GT(metric(b_->port(), "db_reads_total{database=\"replica-1\"}") +
                metric(b_->port(), "db_reads_total{database=\"replica-2\"}"),
            before);
}

TEST_F(ReplicasE2E, AMalformedTokenIsRefusedNamingTheHeader) {
  auto t = new_tenant(a_->port(), "bad-token");
  for (const std::string bad : {"yesterday", "0/", "1/2/3", "123456789/0"}) {
    auto r = get(a_->port(), t, "/v1/orgs/" + t.org, bad);
    ASSERT_EQ(status(r), 400) << bad;
    EXPECT_EQ(problem(*r).at("errors").at(0).at("field"), "Liftoff-Consistency");
  }
  auto twice = http_request(a_->port(), "GET", "/v1/orgs/" + t.org,
                            "Authorization: Bearer " + t.owner.token +
                                "\r\nLiftoff-Consistency: 0/1\r\nLiftoff-Consistency: 0/2\r\n");
  EXPECT_EQ(status(twice), 400);
}

}  // namespace
}  // namespace liftoff::testing
