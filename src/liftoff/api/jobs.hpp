#pragma once
// An org's background jobs, for its admins: GET /v1/orgs/{org}/jobs (newest first, by state and
// queue), GET .../jobs/{job}, and POST .../jobs/{job}/retry | cancel | discard.
#include "liftoff/http/router.hpp"

namespace liftoff::identity {
class IdentityService;
}
namespace liftoff::db {
class Database;
}
namespace liftoff::jobs {
class Queue;
}

namespace liftoff::api {

class RateLimits;

void add_job_routes(http::Router& router, identity::IdentityService& identity, jobs::Queue& queue,
                    db::Database& database, RateLimits& limits);

}  // namespace liftoff::api
