#pragma once
// /v1/auth/*, /v1/me and /v1/sessions: HTTP in and out; the rules live in
// identity::IdentityService.
#include "liftoff/http/router.hpp"

namespace liftoff::identity {
class IdentityService;
}

namespace liftoff::db {
class Database;
}

namespace liftoff::api {

class RateLimits;

void add_identity_routes(http::Router& router, identity::IdentityService& service,
                         db::Database& database, RateLimits& limits);

}  // namespace liftoff::api
