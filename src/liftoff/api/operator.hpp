#pragma once
// /v1/operator/...: what the operators' console reads (docs/decisions/0025-operators-console.md),
// for platform operators only: who they are, organizations and users found by name, email or id,
// an organization's suspension, and the business figures. HTTP in and out; the reading lives in
// identity::PlatformService, the suspension in identity::OrgService.
#include "liftoff/http/router.hpp"

namespace liftoff::db {
class Database;
}
namespace liftoff::identity {
class IdentityService;
class OrgService;
}  // namespace liftoff::identity

namespace liftoff::api {

class RateLimits;

void add_operator_routes(http::Router& router, identity::IdentityService& identity,
                         identity::OrgService& orgs, db::Database& database, RateLimits& limits);

}  // namespace liftoff::api
