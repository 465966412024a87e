#pragma once
// Every route of the API, registered in one place (the server and the OpenAPI test use this).
#include "liftoff/api/events.hpp"
#include "liftoff/api/notifications.hpp"
#include "liftoff/api/system.hpp"
#include "liftoff/http/json_body.hpp"
#include "liftoff/http/router.hpp"

namespace liftoff::identity {
class IdentityService;
class OrgService;
}  // namespace liftoff::identity
namespace liftoff::records {
class EventHub;
class RecordService;
}  // namespace liftoff::records

namespace liftoff::jobs {
class Queue;
}
namespace liftoff::webhooks {
class WebhookService;
}

namespace liftoff::usage {
class Meter;
}

namespace liftoff::api {

struct Services {
  SystemDeps system;
  identity::IdentityService& identity;
  identity::OrgService& orgs;
  records::RecordService& records;
  http::JsonLimits json_limits;  // for record bodies
  records::EventHub& events;
  EventStreamOptions event_streams;
  jobs::Queue& jobs;
  webhooks::WebhookService& webhooks;
  notify::Notifications& notifications;
  notify::Hub& notification_hub;
  NotificationStreamOptions notification_streams;
  RateLimits& rate_limits;
  usage::Meter& meter;
};

void add_routes(http::Router& router, const Services& services);

}  // namespace liftoff::api
