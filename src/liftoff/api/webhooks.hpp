#pragma once
// An org's webhook endpoints, for its admins: POST/GET /v1/orgs/{org}/webhooks, GET/PATCH/DELETE
// .../webhooks/{webhook}, POST .../webhooks/{webhook}/rotate-secret, GET .../deliveries and POST
// .../deliveries/{delivery}/redeliver.
#include "liftoff/http/router.hpp"

namespace liftoff::identity {
class IdentityService;
}
namespace liftoff::db {
class Database;
}
namespace liftoff::webhooks {
class WebhookService;
}

namespace liftoff::api {

class RateLimits;

void add_webhook_routes(http::Router& router, identity::IdentityService& identity,
                        webhooks::WebhookService& webhooks, db::Database& database,
                        RateLimits& limits);

}  // namespace liftoff::api
