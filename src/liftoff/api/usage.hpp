#pragma once
// /v1/orgs/{org}/usage and /v1/orgs/{org}/invoices/{month}: what an organization used per hour,
// day or month (JSON or CSV), and its monthly invoice (JSON or HTML). HTTP in and out; the
// counting lives in usage::Meter, the reading and the invoice in usage/report.hpp.
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

void add_usage_routes(http::Router& router, identity::IdentityService& identity,
                      identity::OrgService& orgs, db::Database& database, RateLimits& limits);

}  // namespace liftoff::api
