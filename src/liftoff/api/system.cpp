#include "liftoff/api/system.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "liftoff/core/metrics.hpp"
#include "liftoff/db/migrations.hpp"
#include "liftoff/http/problem.hpp"

namespace liftoff::api {
namespace {
constexpr auto kReadyTimeout = std::chrono::seconds(1);
}  // namespace

void add_system_routes(http::Router& router, SystemDeps deps) {
  router.add(http::Verb::get, "/healthz",
             [](http::RequestContext&) -> boost::asio::awaitable<http::Response> {
               // Constant body: liveness probes and load balancers call this constantly.
               co_return http::text_response(http::beast_http::status::ok, R"({"status":"ok"})",
                                             "application/json");
             });

  router.add(
      http::Verb::get, "/readyz",
      [deps](http::RequestContext& ctx) -> boost::asio::awaitable<http::Response> {
        if (deps.leaving.load(std::memory_order_relaxed)) {
          co_return http::problem_response(
              make_error(Errc::unavailable, "draining: this process is shutting down"), ctx.ids());
        }
        db::Scope probe{
            db::Tenant::control(),
            std::min(ctx.deadline, db::deadline_after(kReadyTimeout)),
            {"system", std::nullopt, std::string(ctx.remote), "", std::string(ctx.request_id)},
            std::nullopt};
        auto version = co_await db::applied_version(deps.database, probe);
        if (!version) {
          auto not_ready = version.error();
          not_ready.code = Errc::unavailable;
          not_ready.detail = "database not ready: " + not_ready.detail;
          co_return http::problem_response(not_ready, ctx.ids());
        }
        if (*version != deps.known_schema_version) {
          co_return http::problem_response(
              make_error(Errc::unavailable, "database schema at version " +
                                                std::to_string(*version) + ", expected " +
                                                std::to_string(deps.known_schema_version) +
                                                "; run `liftoff migrate up`"),
              ctx.ids());
        }
        co_return http::json_response(
            http::beast_http::status::ok,
            boost::json::object{{"status", "ready"}, {"schema_version", *version}});
      });

  router.add(http::Verb::get, "/v1/openapi.json",
             [](http::RequestContext&) -> boost::asio::awaitable<http::Response> {
               co_return http::text_response(http::beast_http::status::ok,
                                             std::string(kOpenApiDocument), "application/json");
             });

  router.add(http::Verb::get, "/metrics",
             [deps](http::RequestContext&) -> boost::asio::awaitable<http::Response> {
               co_return http::text_response(http::beast_http::status::ok, deps.metrics.render(),
                                             "text/plain; version=0.0.4; charset=utf-8");
             });
}

}  // namespace liftoff::api
