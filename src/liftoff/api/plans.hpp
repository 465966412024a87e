#pragma once
// /v1/plans and /v1/orgs/{org}/plan: the plan catalogue, and an organization's plan, its limits
// and what it holds of them. HTTP in and out; the rules live in identity::OrgService and plans::.
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

void add_plan_routes(http::Router& router, identity::IdentityService& identity,
                     identity::OrgService& orgs, db::Database& database, RateLimits& limits);

}  // namespace liftoff::api
