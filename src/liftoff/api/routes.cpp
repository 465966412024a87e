#include "liftoff/api/routes.hpp"

#include "liftoff/api/identity.hpp"
#include "liftoff/api/jobs.hpp"
#include "liftoff/api/orgs.hpp"
#include "liftoff/api/records.hpp"
#include "liftoff/api/webhooks.hpp"

namespace liftoff::api {

void add_routes(http::Router& router, const Services& services) {
  add_system_routes(router, services.system);
  auto& database = services.system.database;
  add_identity_routes(router, services.identity, database);
  add_org_routes(router, services.identity, services.orgs, services.system.database,
                 services.records);
  add_record_routes(router, services.identity, services.records, services.json_limits, database);
  add_event_routes(router, services.identity, services.records, services.events,
                   services.event_streams, database);
  add_job_routes(router, services.identity, services.jobs, database);
  add_webhook_routes(router, services.identity, services.webhooks, database);
  add_notification_routes(router, services.identity, services.orgs, services.notifications,
                          services.notification_hub, services.notification_streams, database);
}

}  // namespace liftoff::api
