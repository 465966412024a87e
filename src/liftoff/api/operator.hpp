#pragma once
// /v1/operator/...: what the operators' console reads (docs/decisions/0025-operators-console.md),
// for platform operators only: who they are, organizations and users found by name, email or id,
// and the business figures. HTTP in and out; the reading lives in identity::PlatformService.
#include "liftoff/http/router.hpp"

namespace liftoff::db {
class Database;
}
namespace liftoff::identity {
class IdentityService;
}

namespace liftoff::api {

class RateLimits;

void add_operator_routes(http::Router& router, identity::IdentityService& identity,
                         db::Database& database, RateLimits& limits);

}  // namespace liftoff::api
