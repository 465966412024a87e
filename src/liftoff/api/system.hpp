#pragma once
// Operational endpoints: GET /healthz (alive), GET /readyz (database reachable and migrated),
// GET /metrics (Prometheus text format).
#include "liftoff/http/router.hpp"

namespace liftoff::core {
class Registry;
}
namespace liftoff::db {
class Database;
}

namespace liftoff::api {

struct SystemDeps {
  db::Database& database;
  core::Registry& metrics;
  int known_schema_version;
};

void add_system_routes(http::Router& router, SystemDeps deps);

}  // namespace liftoff::api
