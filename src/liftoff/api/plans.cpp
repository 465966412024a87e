#include "liftoff/api/plans.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "liftoff/api/support.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/plans/plans.hpp"

namespace liftoff::api {
namespace {
namespace json = boost::json;
using http::beast_http::status;
using identity::Action;

json::object plan_json(const plans::Plan& plan) {
  return {{"name", plan.name},
          {"monthly_price_cents", plan.monthly_price_cents},
          {"self_serve", plan.self_serve},
          {"limits", limits_json(plan.limits)}};
}

}  // namespace

void add_plan_routes(http::Router& router, identity::IdentityService& identity,
                     identity::OrgService& orgs, db::Database& database, RateLimits& limits) {
  Routes routes(router, identity, database, limits);
  routes.open(
      http::Verb::get, "/v1/plans",
      [](http::RequestContext& /*ctx*/, const db::Scope& /*scope*/) -> Answer {
        json::array items;
        for (const auto& plan : plans::catalogue()) items.push_back(plan_json(plan));
        co_return http::json_response(status::ok, json::object{{"plans", std::move(items)}});
      });

  routes.org(http::Verb::get, "/v1/orgs/{org}/plan", Action::billing_read,
             [&](http::RequestContext& /*ctx*/, const Authorized& who) -> Answer {
               auto state = co_await orgs.plan(who.scope, who.access);
               if (!state) co_return state.error();
               co_return http::json_response(status::ok, plan_state_json(*state));
             });

  routes.org(http::Verb::put, "/v1/orgs/{org}/plan", Action::billing_manage,
             [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto fields = string_fields(ctx.request, {"plan"});
               if (!fields) co_return fields.error();
               auto state = co_await orgs.change_plan(who.scope, who.principal, (*fields)["plan"]);
               if (!state) co_return state.error();
               co_return http::json_response(status::ok, plan_state_json(*state));
             });
}

}  // namespace liftoff::api
