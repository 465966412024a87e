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

void add_identity_routes(http::Router& router, identity::IdentityService& service,
                         db::Database& database, RateLimits& limits) {
  Routes routes(router, service, database, limits);
  routes.open(
      http::Verb::post, "/v1/auth/signup",
      [&service](http::RequestContext& ctx, const db::Scope& scope) -> Answer {
        auto fields = string_fields(ctx.request, {"email", "password", "name"});
        if (!fields) co_return fields.error();
        auto issued = co_await service.signup(scope, (*fields)["email"], (*fields)["password"],
                                              (*fields)["name"]);
        if (!issued) co_return issued.error();
        co_return http::json_response(status::created, issued_json(*issued));
      },
      http::Cost::light, ratelimit::Policy{"signup", limits.options().signups_per_address, 3600});

  routes.open(http::Verb::post, "/v1/auth/login",
              [&service](http::RequestContext& ctx, const db::Scope& scope) -> Answer {
                auto fields = string_fields(ctx.request, {"email", "password"});
                if (!fields) co_return fields.error();
                auto issued =
                    co_await service.login(scope, (*fields)["email"], (*fields)["password"]);
                if (!issued) co_return issued.error();
                co_return http::json_response(status::ok, issued_json(*issued));
              });

  // Email links (the tokens come from emails; account_mail.hpp).
  routes.user(http::Verb::post, "/v1/auth/verify-email/send",
              [&service](http::RequestContext& /*ctx*/, const SignedIn& who) -> Answer {
                auto done = co_await service.send_verification(who.scope, who.principal);
                if (!done) co_return done.error();
                co_return http::json_response(status::accepted, json::object{});
              });
  routes.open(http::Verb::post, "/v1/auth/verify-email",
              [&service](http::RequestContext& ctx, const db::Scope& scope) -> Answer {
                auto fields = string_fields(ctx.request, {"token"});
                if (!fields) co_return fields.error();
                auto done = co_await service.verify_email(scope, (*fields)["token"]);
                if (!done) co_return done.error();
                co_return no_content();
              });
  routes.open(http::Verb::post, "/v1/auth/password-reset",
              [&service](http::RequestContext& ctx, const db::Scope& scope) -> Answer {
                auto fields = string_fields(ctx.request, {"email"});
                if (!fields) co_return fields.error();
                auto done = co_await service.request_password_reset(scope, (*fields)["email"]);
                if (!done) co_return done.error();
                co_return http::json_response(status::accepted, json::object{});
              });
  routes.open(http::Verb::post, "/v1/auth/password-reset/confirm",
              [&service](http::RequestContext& ctx, const db::Scope& scope) -> Answer {
                auto fields = string_fields(ctx.request, {"token", "password"});
                if (!fields) co_return fields.error();
                auto done = co_await service.reset_password(scope, (*fields)["token"],
                                                            (*fields)["password"]);
                if (!done) co_return done.error();
                co_return no_content();
              });

  routes.user(http::Verb::post, "/v1/auth/logout",
              [&service](http::RequestContext& /*ctx*/, const SignedIn& who) -> Answer {
                auto done = co_await service.logout(who.scope, who.principal);
                if (!done) co_return done.error();
                co_return no_content();
              });

  routes.user(http::Verb::post, "/v1/auth/password",
              [&service](http::RequestContext& ctx, const SignedIn& who) -> Answer {
                auto fields = string_fields(ctx.request, {"current_password", "new_password"});
                if (!fields) co_return fields.error();
                auto done = co_await service.change_password(who.scope, who.principal,
                                                             (*fields)["current_password"],
                                                             (*fields)["new_password"]);
                if (!done) co_return done.error();
                co_return no_content();
              });

  routes.user(http::Verb::get, "/v1/me",
              [](http::RequestContext& /*ctx*/, const SignedIn& who) -> Answer {
                json::object body = user_json(who.principal.user);
                json::array memberships;
                for (const auto& m : who.principal.memberships) {
                  memberships.push_back(json::object{{"org_id", m.org_id.to_string()},
                                                     {"org_name", m.org_name},
                                                     {"role", identity::to_string(m.role)}});
                }
                body["memberships"] = std::move(memberships);
                co_return http::json_response(status::ok, body);
              });

  routes.user(
      http::Verb::get, "/v1/sessions",
      [&service](http::RequestContext& /*ctx*/, const SignedIn& who) -> Answer {
        auto sessions = co_await service.sessions(who.scope, who.principal);
        if (!sessions) co_return sessions.error();
        json::array list;
        for (const auto& s : *sessions) {
          list.push_back(json::object{
              {"id", s.id.to_string()},
              {"created_at", core::format_rfc3339(s.created_at)},
              {"last_seen_at", core::format_rfc3339(s.last_seen_at)},
              {"expires_at", core::format_rfc3339(s.expires_at)},
              {"ip", s.ip ? json::value(*s.ip) : json::value(nullptr)},
              {"user_agent", s.user_agent ? json::value(*s.user_agent) : json::value(nullptr)},
              {"current", s.id == who.principal.credential_id}});
        }
        co_return http::json_response(status::ok, json::object{{"sessions", std::move(list)}});
      });

  routes.user(http::Verb::delete_, "/v1/sessions/{id}",
              [&service](http::RequestContext& ctx, const SignedIn& who) -> Answer {
                auto id = db::Uuid::parse(*ctx.param("id"));
                if (!id) co_return make_error(Errc::not_found, "no such session");
                auto done = co_await service.revoke(who.scope, who.principal, *id);
                if (!done) co_return done.error();
                co_return no_content();
              });
}

}  // namespace liftoff::api
