#include "liftoff/api/routes.hpp"

#include "liftoff/api/console.hpp"
#include "liftoff/api/identity.hpp"
#include "liftoff/api/jobs.hpp"
#include "liftoff/api/operator.hpp"
#include "liftoff/api/orgs.hpp"
#include "liftoff/api/plans.hpp"
#include "liftoff/api/records.hpp"
#include "liftoff/api/usage.hpp"
#include "liftoff/api/webhooks.hpp"

namespace liftoff::api {

void add_routes(http::Router& router, const Services& services) {
  add_system_routes(router, services.system);
  auto& database = services.system.database;
  add_identity_routes(router, services.identity, database, services.rate_limits);
  add_org_routes(router, services.identity, services.orgs, database, services.rate_limits,
                 services.records);
  add_plan_routes(router, services.identity, services.orgs, database, services.rate_limits);
  add_usage_routes(router, services.identity, services.orgs, database, services.rate_limits);
  add_record_routes(router, services.identity, services.records, services.json_limits, database,
                    services.rate_limits, services.meter);
  add_event_routes(router, services.identity, services.records, services.events,
                   services.event_streams, database, services.rate_limits);
  add_job_routes(router, services.identity, services.jobs, database, services.rate_limits);
  add_webhook_routes(router, services.identity, services.webhooks, database, services.rate_limits);
  add_operator_routes(router, services.identity, services.orgs, database, services.rate_limits);
  add_console_routes(router);
  add_notification_routes(router, services.identity, services.orgs, services.notifications,
                          services.notification_hub, services.notification_streams, database,
                          services.rate_limits);
}

}  // namespace liftoff::api
