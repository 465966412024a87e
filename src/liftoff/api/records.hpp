#pragma once
// /v1/orgs/{org}/collections/*: collections and their records. HTTP in and out (ETag, If-Match,
// If-None-Match, Idempotency-Key, query parameters); the rules live in records::RecordService.
#include "liftoff/http/json_body.hpp"
#include "liftoff/http/router.hpp"

namespace liftoff::identity {
class IdentityService;
}
namespace liftoff::records {
class RecordService;
}

namespace liftoff::db {
class Database;
}

namespace liftoff::usage {
class Meter;
}

namespace liftoff::api {

class RateLimits;

void add_record_routes(http::Router& router, identity::IdentityService& identity,
                       records::RecordService& service, http::JsonLimits limits,
                       db::Database& database, RateLimits& rate_limits, usage::Meter& meter);

}  // namespace liftoff::api
