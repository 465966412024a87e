#pragma once
// Operational endpoints: GET /healthz (alive), GET /readyz (database reachable and migrated, and
// not shutting down), GET /metrics (Prometheus text format).
#include <atomic>
#include <string_view>

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
  // Set when the process begins to stop: /readyz answers 503 so load balancers take it out while
  // it still serves (ServerOptions::drain_delay).
  const std::atomic<bool>& leaving;
};

void add_system_routes(http::Router& router, SystemDeps deps);

// docs/openapi.json, compiled in.
extern const std::string_view kOpenApiDocument;

}  // namespace liftoff::api
