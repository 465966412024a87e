// Webhooks against a real PostgreSQL, real job workers and a real receiver (a Python HTTP server,
// tests/support/webhook_receiver.py, over HTTP and HTTPS): an org's audit events reach its
// endpoint in order, signed so that an independent HMAC (OpenSSL's, not the server's libsodium)
// verifies them; events the endpoint does not subscribe to are skipped; a failing endpoint is
// retried by the schedule, then disabled, and once enabled again receives what it missed; a
// rotated secret signs beside the new one; redelivery; TLS verified against a CA; timeouts; and
// addresses refused against request forgery.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <memory>

#include "integration/services_support.hpp"
#include "liftoff/audit/audit.hpp"
#include "liftoff/jobs/runner.hpp"
#include "liftoff/webhooks/service.hpp"
#include "liftoff/webhooks/signature.hpp"
#include "support/async.hpp"
#include "support/run_dir.hpp"
#include "support/webhook_receiver.hpp"

namespace liftoff::webhooks {
namespace {
// A plan that allows as many endpoints as the deployment does.
const plans::Allowance kAllowance{plans::Limit::webhook_endpoints, 1000, "test"};
namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::block_on;
using testing::sleep_for;

class WebhooksTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world = new testing::ServiceWorld("webhooks_test");
    dir = new fs::path(testing::make_temp_dir("/tmp/liftoff-webhooks-"));
    ASSERT_TRUE(testing::make_certificate(*dir)) << "openssl could not make a certificate";
    plain = new testing::WebhookReceiver(*dir, "plain");
    tls = new testing::WebhookReceiver(
        *dir, "tls", testing::WebhookReceiver::Tls{*dir / "cert.pem", *dir / "key.pem"});
  }
  static void TearDownTestSuite() {
    delete plain;
    delete tls;
    world->database->stop_worker(0);
    delete world;
    std::error_code ec;
    fs::remove_all(*dir, ec);
    delete dir;
  }
  void SetUp() override {
    ASSERT_TRUE(plain && plain->port() && tls && tls->port()) << "the receivers did not start";
  }

  // Inside a coroutine: waits until `count` requests reached `prefix` (true) or 30 s passed.
  static asio::awaitable<bool> receives(const std::string& prefix, std::size_t count) {
    for (auto end = std::chrono::steady_clock::now() + 30s;
         std::chrono::steady_clock::now() < end;) {
      if (plain->received(prefix).size() >= count) co_return true;
      co_await sleep_for(50ms);
    }
    co_return false;
  }

  static WebhookOptions options() {
    static const std::string kKey = SecretBox::generate_key();
    WebhookOptions options;
    options.box = *SecretBox::from_base64(kKey);
    options.sender.allow_private = true;
    options.sender.timeout = 2s;
    options.sender.ca_file = (*dir / "cert.pem").string();
    options.retries = {100ms, 200ms};
    return options;
  }
  static jobs::RunnerOptions runner_options() {
    jobs::RunnerOptions options;
    options.queues = {{std::string(kWebhookQueue), 10}};
    options.poll_interval = 100ms;
    options.lease = 3s;
    options.shutdown_timeout = 200ms;
    return options;
  }

  // The service and its workers running on the suite's loop while `body` runs.
  struct Running {
    jobs::Queue queue{*world->database};
    WebhookService service{*world->database, queue, world->metrics, options()};
    jobs::Runner runner{queue, world->metrics, runner_options()};
    Running() { service.add_to(runner); }
    void run(const std::function<asio::awaitable<void>()>& body) {
      std::atomic<bool> stopping{false};
      runner.start(0, 1, world->io, stopping);
      block_on(world->io, [&]() -> asio::awaitable<void> {
        co_await body();
        stopping = true;
      }());
    }
  };

  static asio::awaitable<testing::ServiceWorld::Owner> owner(const std::string& email) {
    co_return co_await world->new_owner(email);
  }
  static db::Scope scope(const testing::ServiceWorld::Owner& owner) {
    return testing::ServiceWorld::scope_of(owner.principal, owner.org.id);
  }
  // One audited change of the org: event `action` on thing `n`.
  static asio::awaitable<void> happen(const db::Scope& scope, const std::string& action, int n) {
    auto tx = co_await world->database->begin(scope);
    CO_ASSERT_TRUE(tx);
    audit::Change change{action, "thing", std::to_string(n), std::nullopt,
                         "{\"n\":" + std::to_string(n) + "}"};
    auto event = co_await audit::append_and_commit(*tx, scope, change);
    EXPECT_TRUE(event) << (event ? "" : event.error().for_log());
    // What a server's sealer does soon after the commit.
    auto sealed = co_await audit::seal_committed(*world->database, scope);
    EXPECT_TRUE(sealed) << (sealed ? "" : sealed.error().for_log());
  }

  static testing::ServiceWorld* world;
  static fs::path* dir;
  static testing::WebhookReceiver* plain;
  static testing::WebhookReceiver* tls;
};
testing::ServiceWorld* WebhooksTest::world = nullptr;
fs::path* WebhooksTest::dir = nullptr;
testing::WebhookReceiver* WebhooksTest::plain = nullptr;
testing::WebhookReceiver* WebhooksTest::tls = nullptr;

TEST_F(WebhooksTest, AnOrgsEventsArriveInOrderSignedAndOnlyThoseItSubscribesTo) {
  Running running;
  running.run([&]() -> asio::awaitable<void> {
    auto org = co_await owner("hooks-order@example.com");
    auto s = scope(org);
    NewEndpoint wanted{plain->url("/order/"), "orders", {"thing.*", "other.exact"}};
    auto created = co_await running.service.create(s, wanted, kAllowance);
    CO_ASSERT_TRUE(created);
    EXPECT_TRUE(created->secret.starts_with("whsec_"));
    co_await happen(s, "thing.created", 1);
    co_await happen(s, "ignored.created", 2);  // not subscribed: skipped
    co_await happen(s, "thing.updated", 3);
    co_await happen(s, "other.exact", 4);
    CO_ASSERT_TRUE(co_await receives("/order/", 3));
    co_await sleep_for(300ms);  // nothing more arrives
    auto got = plain->received("/order/");
    CO_ASSERT_TRUE(got.size() == 3u);
    std::vector<std::string> types;
    std::int64_t last_seq = 0;
    for (const auto& request : got) {
      EXPECT_TRUE(testing::verifies(request, created->secret)) << request;
      auto body = json::parse(request.at("body").as_string()).as_object();
      types.emplace_back(body.at("type").as_string());
      const auto& data = body.at("data").as_object();
      EXPECT_EQ(request.at("headers").at("webhook-id").as_string(), data.at("id").as_string());
      EXPECT_GT(data.at("seq").as_int64(), last_seq);
      last_seq = data.at("seq").as_int64();
      EXPECT_EQ(data.at("target").at("type").as_string(), "thing");
      EXPECT_EQ(data.at("actor").at("type").as_string(), "user");
      EXPECT_EQ(request.at("headers").at("content-type").as_string(), "application/json");
    }
    EXPECT_EQ(types, (std::vector<std::string>{"thing.created", "thing.updated", "other.exact"}));
    // A signature made with another secret does not verify.
    EXPECT_FALSE(testing::verifies(got[0], generate_secret()));

    auto endpoint = co_await running.service.get(s, created->endpoint.id.to_string());
    CO_ASSERT_TRUE(endpoint);
    EXPECT_EQ(endpoint->after_seq, last_seq);
    EXPECT_EQ(endpoint->failures, 0);
    auto deliveries = co_await running.service.deliveries(s, endpoint->id.to_string(), {}, 50);
    CO_ASSERT_TRUE(deliveries);
    CO_ASSERT_TRUE(deliveries->size() == 3u);
    for (const auto& d : *deliveries) {
      EXPECT_EQ(d.attempt.status, 200);
      EXPECT_FALSE(d.attempt.error);
      EXPECT_TRUE(d.attempt.response && d.attempt.response->find("received") != std::string::npos);
    }
    // Redelivery sends a logged event again, with the same webhook-id.
    auto job = co_await running.service.redeliver(s, endpoint->id.to_string(),
                                                  deliveries->back().id.to_string());
    CO_ASSERT_TRUE(job);
    CO_ASSERT_TRUE(co_await receives("/order/", 4));
    auto again = plain->received("/order/");
    EXPECT_EQ(again[3].at("headers").at("webhook-id"), got[0].at("headers").at("webhook-id"));
    EXPECT_TRUE(testing::verifies(again[3], created->secret));
  });
}

// A purged org's endpoints go with their sealed secrets and deliveries (what the org's purge runs
// before its row goes); another org's stay.
TEST_F(WebhooksTest, PurgingAnOrgDeletesItsEndpointsAndTheirDeliveriesOnly) {
  Running running;
  running.run([&]() -> asio::awaitable<void> {
    auto doomed = co_await owner("hooks-purged@example.com");
    auto kept = co_await owner("hooks-kept@example.com");
    for (const auto* org : {&doomed, &kept}) {
      NewEndpoint wanted{plain->url("/purge/"), "", {"thing.*"}};
      auto created = co_await running.service.create(scope(*org), wanted, kAllowance);
      CO_ASSERT_TRUE(created);
    }
    NewEndpoint second{plain->url("/purge/"), "", {"thing.*"}};
    auto also = co_await running.service.create(scope(doomed), second, kAllowance);
    CO_ASSERT_TRUE(also);
    co_await happen(scope(doomed), "thing.created", 1);
    CO_ASSERT_TRUE(co_await receives("/purge/", 2));  // both endpoints of the doomed org

    auto purged = co_await running.service.purge_org(scope(doomed));
    CO_ASSERT_TRUE(purged);
    EXPECT_EQ(*purged, 2);
    auto left = co_await running.service.count(scope(doomed));
    CO_ASSERT_TRUE(left);
    EXPECT_EQ(*left, 0);
    auto deliveries =
        co_await running.service.deliveries(scope(doomed), also->endpoint.id.to_string(), {}, 50);
    EXPECT_FALSE(deliveries) << "the deliveries of a purged endpoint are still listed";
    auto again = co_await running.service.purge_org(scope(doomed));
    CO_ASSERT_TRUE(again);
    EXPECT_EQ(*again, 0);
    auto others = co_await running.service.count(scope(kept));
    CO_ASSERT_TRUE(others);
    EXPECT_EQ(*others, 1);
  });
}

TEST_F(WebhooksTest, AFailingEndpointIsRetriedThenDisabledAndCatchesUpWhenEnabled) {
  Running running;
  running.run([&]() -> asio::awaitable<void> {
    auto org = co_await owner("hooks-failing@example.com");
    auto s = scope(org);
    NewEndpoint wanted{plain->url("/status/503/failing"), "", {"thing.*"}};
    auto created = co_await running.service.create(s, wanted, kAllowance);
    CO_ASSERT_TRUE(created);
    auto id = created->endpoint.id.to_string();
    co_await happen(s, "thing.created", 1);
    co_await happen(s, "thing.created", 2);
    // The first attempt, and one after each of the two retries: then disabled.
    CO_ASSERT_TRUE(co_await receives("/status/503/failing", 3));
    Endpoint endpoint;
    for (auto end = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < end;
         co_await sleep_for(50ms)) {
      auto found = co_await running.service.get(s, id);
      CO_ASSERT_TRUE(found);
      endpoint = *found;
      if (!endpoint.enabled) break;
    }
    EXPECT_FALSE(endpoint.enabled);
    EXPECT_EQ(endpoint.failures, 3);
    CO_ASSERT_TRUE(endpoint.disabled_reason.has_value());
    EXPECT_NE(endpoint.disabled_reason->find("503"), std::string::npos)
        << *endpoint.disabled_reason;
    co_await sleep_for(400ms);  // disabled: no more attempts
    EXPECT_EQ(plain->received("/status/503/failing").size(), 3u);
    auto deliveries = co_await running.service.deliveries(s, id, {}, 50);
    CO_ASSERT_TRUE(deliveries);
    EXPECT_EQ(deliveries->size(), 3u);
    for (const auto& d : *deliveries) EXPECT_EQ(d.attempt.status, 503);

    // Fixed and enabled again: every event it missed arrives, the first one first.
    co_await happen(s, "thing.created", 3);
    EndpointPatch patch;
    patch.url = plain->url("/fixed/");
    patch.enabled = true;
    auto updated = co_await running.service.update(s, id, patch);
    CO_ASSERT_TRUE(updated);
    EXPECT_TRUE(updated->enabled);
    EXPECT_EQ(updated->failures, 0);
    EXPECT_FALSE(updated->disabled_reason);
    CO_ASSERT_TRUE(co_await receives("/fixed/", 3));
    auto got = plain->received("/fixed/");
    std::vector<std::string> targets;
    for (const auto& request : got) {
      auto body = json::parse(request.at("body").as_string()).as_object();
      targets.emplace_back(body.at("data").at("target").at("id").as_string());
    }
    EXPECT_EQ(targets, (std::vector<std::string>{"1", "2", "3"}));
  });
}

TEST_F(WebhooksTest, ARotatedSecretSignsBesideTheNewOneAndChangesAreAudited) {
  Running running;
  running.run([&]() -> asio::awaitable<void> {
    auto org = co_await owner("hooks-rotate@example.com");
    auto s = scope(org);
    NewEndpoint wanted{plain->url("/rotate/"), "", {"thing.*"}};
    auto created = co_await running.service.create(s, wanted, kAllowance);
    CO_ASSERT_TRUE(created);
    auto rotated = co_await running.service.rotate_secret(s, created->endpoint.id.to_string());
    CO_ASSERT_TRUE(rotated);
    EXPECT_NE(rotated->secret, created->secret);
    EXPECT_TRUE(rotated->endpoint.previous_secret_expires_at);
    co_await happen(s, "thing.created", 1);
    CO_ASSERT_TRUE(co_await receives("/rotate/", 1));
    auto got = plain->received("/rotate/");
    EXPECT_TRUE(testing::verifies(got[0], rotated->secret));
    EXPECT_TRUE(testing::verifies(got[0], created->secret));
    // The audit log has the endpoint's changes, never a secret.
    audit::Filter filter;
    filter.limit = 50;
    auto events = co_await audit::list(*world->database, s, filter);
    CO_ASSERT_TRUE(events);
    std::vector<std::string> actions;
    for (const auto& e : *events) {
      if (e.change.action.starts_with("webhook.")) actions.push_back(e.change.action);
      for (const auto& value : {e.change.before, e.change.after}) {
        if (value) {
          EXPECT_EQ(value->find("whsec_"), std::string::npos) << *value;
        }
      }
    }
    EXPECT_EQ(actions, (std::vector<std::string>{"webhook.secret_rotated", "webhook.created"}));
  });
}

TEST_F(WebhooksTest, InvalidEndpointsAreRefusedFieldByField) {
  Running running;
  running.run([&]() -> asio::awaitable<void> {
    auto org = co_await owner("hooks-invalid@example.com");
    auto s = scope(org);
    NewEndpoint wanted{
        "ftp://example.com/", std::string(501, 'x'), {"record.*", "Bad Type", "record.*"}};
    auto bad = co_await running.service.create(s, wanted, kAllowance);
    CO_ASSERT_TRUE(!bad);
    EXPECT_EQ(bad.error().code, Errc::validation_failed);
    std::vector<std::string> fields;
    for (const auto& f : bad.error().fields) fields.push_back(f.field);
    EXPECT_EQ(fields,
              (std::vector<std::string>{"url", "description", "event_types[1]", "event_types[2]"}));
    auto missing = co_await running.service.get(s, "00000000-0000-0000-0000-000000000000");
    EXPECT_TRUE(!missing && missing.error().code == Errc::not_found);
    EndpointPatch nothing;
    auto not_an_id = co_await running.service.update(s, "nope", nothing);
    EXPECT_TRUE(!not_an_id && not_an_id.error().code == Errc::not_found);
  });
}

// The sender alone: TLS verified against the CA it trusts, timeouts, refused addresses.
TEST_F(WebhooksTest, TheSenderVerifiesTlsTimesOutAndRefusesPrivateAddresses) {
  block_on(world->io, [&]() -> asio::awaitable<void> {
    Sender trusting(options().sender);
    Post to_tls{tls->url("/tls/"), {}, "{}"};
    auto delivered = co_await trusting.post(to_tls);
    EXPECT_TRUE(delivered.delivered()) << delivered.error;
    EXPECT_EQ(delivered.status, 200);

    auto untrusting_options = options().sender;
    untrusting_options.ca_file.clear();
    Sender untrusting(untrusting_options);
    auto refused = co_await untrusting.post(to_tls);
    EXPECT_FALSE(refused.delivered());
    EXPECT_FALSE(refused.status);
    EXPECT_NE(refused.error.find("TLS handshake failed"), std::string::npos) << refused.error;

    // A kept connection carries the next post; one the receiver dropped is made again.
    Sender::Connection kept;
    for (const auto* path : {"/kept/1", "/kept/2", "/drop/1", "/kept/3"}) {
      Post to_kept{plain->url(path), {}, "{}"};
      auto answered = co_await trusting.post(to_kept, &kept);
      EXPECT_TRUE(answered.delivered()) << path << ": " << answered.error;
    }
    auto kept_posts = plain->received("/kept/");
    auto dropped = plain->received("/drop/");
    CO_ASSERT_TRUE(kept_posts.size() == 3u && dropped.size() == 1u);
    auto port_of = [](const json::object& request) { return request.at("client_port").as_int64(); };
    EXPECT_EQ(port_of(kept_posts[0]), port_of(kept_posts[1]));  // one connection
    EXPECT_EQ(port_of(kept_posts[1]), port_of(dropped[0]));
    EXPECT_NE(port_of(dropped[0]), port_of(kept_posts[2]));  // made again after the drop
    Sender::Connection kept_tls;
    for (int i = 0; i < 3; ++i) {
      auto answered = co_await trusting.post(to_tls, &kept_tls);
      EXPECT_TRUE(answered.delivered()) << answered.error;
    }

    auto slow_options = options().sender;
    slow_options.timeout = 300ms;
    Sender impatient(slow_options);
    Post to_slow{plain->url("/slow/3000/x"), {}, "{}"};
    auto slow = co_await impatient.post(to_slow);
    EXPECT_EQ(slow.error, "timed out after 300 ms");
    EXPECT_LT(slow.duration, 3000ms);

    auto strict_options = options().sender;
    strict_options.allow_private = false;
    Sender strict(strict_options);
    Post to_localhost{"http://localhost:" + std::to_string(plain->port()) + "/", {}, "{}"};
    auto loopback = co_await strict.post(to_localhost);
    EXPECT_NE(loopback.error.find("loopback"), std::string::npos) << loopback.error;
    Post to_literal{plain->url("/"), {}, "{}"};
    auto literal = co_await strict.post(to_literal);
    EXPECT_NE(literal.error.find("loopback"), std::string::npos) << literal.error;
    EXPECT_FALSE(parse_target("http://10.1.2.3/hook", false));
    EXPECT_FALSE(parse_target("http://[::1]:8080/", false));
    EXPECT_FALSE(parse_target("http://169.254.169.254/latest/meta-data", false));
    EXPECT_TRUE(parse_target("https://hooks.example.com/a?b=c", false));
    auto target = parse_target("https://Hooks.Example.com:8443/a/b?c=d", false);
    CO_ASSERT_TRUE(target);
    EXPECT_TRUE(target->tls);
    EXPECT_EQ(target->host, "hooks.example.com");
    EXPECT_EQ(target->port, 8443);
    EXPECT_EQ(target->path, "/a/b?c=d");
    EXPECT_FALSE(parse_target("https://user:pw@example.com/", false));
    EXPECT_FALSE(parse_target("https://example.com/#frag", false));
    EXPECT_FALSE(parse_target("not a url", false));
  }());
}

}  // namespace
}  // namespace liftoff::webhooks
