#include "liftoff/api/identity.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "liftoff/api/support.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/identity/service.hpp"

namespace liftoff::api {
namespace {
namespace json = boost::json;
using http::beast_http::status;

json::object issued_json(const identity::IssuedSession& issued) {
  return {{"user", user_json(issued.user)},
          {"session_id", issued.session_id.to_string()},
          {"token", issued.token},
          {"expires_at", core::format_rfc3339(issued.expires_at)}};
}

}  // namespace

void add_identity_routes(http::Router& router, identity::IdentityService& service) {
  router.add(http::Verb::post, "/v1/auth/signup",
             [&service](http::RequestContext& ctx) -> Awaitable {
               auto fields = string_fields(ctx.request, {"email", "password", "name"});
               if (!fields) co_return problem(fields.error(), ctx);
               auto issued = co_await service.signup(scope_of(ctx), (*fields)["email"],
                                                     (*fields)["password"], (*fields)["name"]);
               if (!issued) co_return problem(issued.error(), ctx);
               co_return http::json_response(status::created, issued_json(*issued));
             });

  router.add(http::Verb::post, "/v1/auth/login",
             [&service](http::RequestContext& ctx) -> Awaitable {
               auto fields = string_fields(ctx.request, {"email", "password"});
               if (!fields) co_return problem(fields.error(), ctx);
               auto issued =
                   co_await service.login(scope_of(ctx), (*fields)["email"], (*fields)["password"]);
               if (!issued) co_return problem(issued.error(), ctx);
               co_return http::json_response(status::ok, issued_json(*issued));
             });

  router.add(http::Verb::post, "/v1/auth/logout",
             [&service](http::RequestContext& ctx) -> Awaitable {
               auto who = co_await authenticate_user(service, ctx);
               if (!who) co_return problem(who.error(), ctx);
               auto done = co_await service.logout(scope_of(ctx, *who), *who);
               if (!done) co_return problem(done.error(), ctx);
               co_return no_content();
             });

  router.add(
      http::Verb::post, "/v1/auth/password", [&service](http::RequestContext& ctx) -> Awaitable {
        auto who = co_await authenticate_user(service, ctx);
        if (!who) co_return problem(who.error(), ctx);
        auto fields = string_fields(ctx.request, {"current_password", "new_password"});
        if (!fields) co_return problem(fields.error(), ctx);
        auto done = co_await service.change_password(
            scope_of(ctx, *who), *who, (*fields)["current_password"], (*fields)["new_password"]);
        if (!done) co_return problem(done.error(), ctx);
        co_return no_content();
      });

  router.add(http::Verb::get, "/v1/me", [&service](http::RequestContext& ctx) -> Awaitable {
    auto who = co_await authenticate_user(service, ctx);
    if (!who) co_return problem(who.error(), ctx);
    json::object body = user_json(who->user);
    json::array memberships;
    for (const auto& m : who->memberships) {
      memberships.push_back(json::object{{"org_id", m.org_id.to_string()},
                                         {"org_name", m.org_name},
                                         {"role", identity::to_string(m.role)}});
    }
    body["memberships"] = std::move(memberships);
    co_return http::json_response(status::ok, body);
  });

  router.add(http::Verb::get, "/v1/sessions", [&service](http::RequestContext& ctx) -> Awaitable {
    auto who = co_await authenticate_user(service, ctx);
    if (!who) co_return problem(who.error(), ctx);
    auto sessions = co_await service.sessions(scope_of(ctx, *who), *who);
    if (!sessions) co_return problem(sessions.error(), ctx);
    json::array list;
    for (const auto& s : *sessions) {
      list.push_back(json::object{
          {"id", s.id.to_string()},
          {"created_at", core::format_rfc3339(s.created_at)},
          {"last_seen_at", core::format_rfc3339(s.last_seen_at)},
          {"expires_at", core::format_rfc3339(s.expires_at)},
          {"ip", s.ip ? json::value(*s.ip) : json::value(nullptr)},
          {"user_agent", s.user_agent ? json::value(*s.user_agent) : json::value(nullptr)},
          {"current", s.id == who->credential_id}});
    }
    co_return http::json_response(status::ok, json::object{{"sessions", std::move(list)}});
  });

  router.add(http::Verb::delete_, "/v1/sessions/{id}",
             [&service](http::RequestContext& ctx) -> Awaitable {
               auto who = co_await authenticate_user(service, ctx);
               if (!who) co_return problem(who.error(), ctx);
               auto id = db::Uuid::parse(*ctx.param("id"));
               if (!id) co_return problem(make_error(Errc::not_found, "no such session"), ctx);
               auto done = co_await service.revoke(scope_of(ctx, *who), *who, *id);
               if (!done) co_return problem(done.error(), ctx);
               co_return no_content();
             });
}

}  // namespace liftoff::api
