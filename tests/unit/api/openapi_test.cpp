// The OpenAPI document stays true: every route the server registers is documented with its method,
// and the document is valid JSON.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/parse.hpp>

#include "liftoff/api/rate_limits.hpp"
#include "liftoff/api/routes.hpp"
#include "liftoff/core/metrics.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/service.hpp"
#include "liftoff/jobs/queue.hpp"
#include "liftoff/notify/hub.hpp"
#include "liftoff/notify/notifications.hpp"
#include "liftoff/records/events.hpp"
#include "liftoff/records/service.hpp"
#include "liftoff/usage/meter.hpp"
#include "liftoff/webhooks/service.hpp"

namespace liftoff::api {
namespace {

TEST(OpenApi, DocumentsEveryRegisteredRoute) {
  core::Registry metrics;
  db::Database database({}, metrics, 1);  // never connects: only routes are inspected
  identity::PasswordHasher hasher({1, 8 * 1024, 1, 1});
  identity::IdentityStore store(database);
  identity::IdentityService service(store, hasher, {});
  identity::OrgService orgs(database, {});
  records::RecordService records(database, {});
  records::EventHub events(database, {}, {});
  http::Router router;
  jobs::Queue job_queue(database);
  webhooks::WebhookService hooks(database, job_queue, metrics, {});
  notify::Notifications notifications(database);
  notify::Hub hub({}, {});
  RateLimits limits(nullptr, {});
  usage::Meter meter(database, {}, nullptr);
  std::atomic<bool> leaving{false};
  add_routes(router, {{database, metrics, 1, leaving},
                      service,
                      orgs,
                      records,
                      {},
                      events,
                      {},
                      job_queue,
                      hooks,
                      notifications,
                      hub,
                      {},
                      limits,
                      meter});

  auto document = boost::json::parse(kOpenApiDocument).as_object();
  EXPECT_EQ(document.at("openapi").as_string(), "3.1.0");
  const auto& paths = document.at("paths").as_object();
  for (const auto& route : router.routes()) {
    if (route.pattern == "/healthz" || route.pattern == "/readyz" || route.pattern == "/metrics") {
      EXPECT_TRUE(paths.contains(route.pattern)) << route.pattern;
      continue;
    }
    ASSERT_TRUE(paths.contains(route.pattern)) << route.pattern << " is not in docs/openapi.json";
    for (const auto& [verb, handler, cost] : route.handlers) {
      std::string method(http::beast_http::to_string(verb));
      std::transform(method.begin(), method.end(), method.begin(), ::tolower);
      const auto& path = paths.at(route.pattern).as_object();
      EXPECT_TRUE(path.contains(method)) << method << " " << route.pattern;
      // A heavy route can be refused while the server is short of memory: it says so.
      if (cost == http::Cost::heavy && path.contains(method)) {
        EXPECT_TRUE(path.at(method).at("responses").as_object().contains("503"))
            << method << " " << route.pattern << " does not document its 503";
      }
    }
  }
}

}  // namespace
}  // namespace liftoff::api
