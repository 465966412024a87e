#include "liftoff/api/identity.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <map>

#include "liftoff/core/time.hpp"
#include "liftoff/http/json_body.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/identity/service.hpp"

namespace liftoff::api {
namespace {
namespace json = boost::json;
using http::beast_http::status;
using Awaitable = boost::asio::awaitable<http::Response>;

// The body as an object of exactly `required` string members: unknown members are a 400 naming
// them; missing or non-string members a 422 naming each.
Result<std::map<std::string, std::string>> string_fields(
    const http::Request& request, std::initializer_list<std::string_view> required) {
  auto body = http::parse_json_body(request);
  if (!body) return body.error();
  const auto& object = body->as_object();
  Error unknown{Errc::bad_request, "unknown fields in the body", {}};
  for (const auto& [key, value] : object) {
    if (std::find(required.begin(), required.end(), std::string_view(key)) == required.end()) {
      unknown.fields.push_back({std::string(key), "is not a known field"});
    }
  }
  if (!unknown.fields.empty()) return unknown;
  Error invalid{Errc::validation_failed, "the body is invalid", {}};
  std::map<std::string, std::string> out;
  for (auto name : required) {
    auto it = object.find(name);
    if (it == object.end()) {
      invalid.fields.push_back({std::string(name), "is required"});
    } else if (!it->value().is_string()) {
      invalid.fields.push_back({std::string(name), "must be a string"});
    } else {
      out.emplace(name, std::string(it->value().get_string()));
    }
  }
  if (!invalid.fields.empty()) return invalid;
  return out;
}

json::object user_json(const identity::User& user) {
  return {{"id", user.id.to_string()},
          {"email", user.email},
          {"name", user.name},
          {"created_at", core::format_rfc3339(user.created_at)}};
}

json::object issued_json(const identity::IssuedSession& issued) {
  return {{"user", user_json(issued.user)},
          {"session_id", issued.session_id.to_string()},
          {"token", issued.token},
          {"expires_at", core::format_rfc3339(issued.expires_at)}};
}

http::Response problem(const Error& error, const http::RequestContext& ctx) {
  auto res = http::problem_response(error, ctx.request_id);
  if (error.code == Errc::unauthenticated)
    res.set(http::beast_http::field::www_authenticate, "Bearer");
  return res;
}

identity::ClientInfo client_of(const http::RequestContext& ctx) {
  return {std::string(ctx.remote), std::string(ctx.request[http::beast_http::field::user_agent])};
}

// The session behind `Authorization: Bearer <token>`.
boost::asio::awaitable<Result<identity::Authenticated>> authenticate(
    identity::IdentityService& service, const http::RequestContext& ctx) {
  std::string header(ctx.request[http::beast_http::field::authorization]);
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), header.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    co_return make_error(Errc::unauthenticated,
                         "missing bearer token (Authorization: Bearer <token>)");
  }
  std::string token = header.substr(kScheme.size());
  co_return co_await service.authenticate(token);
}

}  // namespace

void add_identity_routes(http::Router& router, identity::IdentityService& service) {
  router.add(http::Verb::post, "/v1/auth/signup",
             [&service](http::RequestContext& ctx) -> Awaitable {
               auto fields = string_fields(ctx.request, {"email", "password", "name"});
               if (!fields) co_return problem(fields.error(), ctx);
               auto client = client_of(ctx);
               auto issued = co_await service.signup((*fields)["email"], (*fields)["password"],
                                                     (*fields)["name"], client);
               if (!issued) co_return problem(issued.error(), ctx);
               co_return http::json_response(status::created, issued_json(*issued));
             });

  router.add(
      http::Verb::post, "/v1/auth/login", [&service](http::RequestContext& ctx) -> Awaitable {
        auto fields = string_fields(ctx.request, {"email", "password"});
        if (!fields) co_return problem(fields.error(), ctx);
        auto client = client_of(ctx);
        auto issued = co_await service.login((*fields)["email"], (*fields)["password"], client);
        if (!issued) co_return problem(issued.error(), ctx);
        co_return http::json_response(status::ok, issued_json(*issued));
      });

  router.add(http::Verb::post, "/v1/auth/logout",
             [&service](http::RequestContext& ctx) -> Awaitable {
               auto who = co_await authenticate(service, ctx);
               if (!who) co_return problem(who.error(), ctx);
               auto done = co_await service.logout(*who);
               if (!done) co_return problem(done.error(), ctx);
               co_return http::Response{status::no_content, 11};
             });

  router.add(http::Verb::post, "/v1/auth/password",
             [&service](http::RequestContext& ctx) -> Awaitable {
               auto who = co_await authenticate(service, ctx);
               if (!who) co_return problem(who.error(), ctx);
               auto fields = string_fields(ctx.request, {"current_password", "new_password"});
               if (!fields) co_return problem(fields.error(), ctx);
               auto done = co_await service.change_password(*who, (*fields)["current_password"],
                                                            (*fields)["new_password"]);
               if (!done) co_return problem(done.error(), ctx);
               co_return http::Response{status::no_content, 11};
             });

  router.add(http::Verb::get, "/v1/me", [&service](http::RequestContext& ctx) -> Awaitable {
    auto who = co_await authenticate(service, ctx);
    if (!who) co_return problem(who.error(), ctx);
    json::object body = user_json(who->user);
    body["memberships"] = json::array{};  // organizations arrive with the tenancy service
    co_return http::json_response(status::ok, body);
  });

  router.add(http::Verb::get, "/v1/sessions", [&service](http::RequestContext& ctx) -> Awaitable {
    auto who = co_await authenticate(service, ctx);
    if (!who) co_return problem(who.error(), ctx);
    auto sessions = co_await service.sessions(*who);
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
          {"current", s.id == who->session_id}});
    }
    co_return http::json_response(status::ok, json::object{{"sessions", std::move(list)}});
  });

  router.add(http::Verb::delete_, "/v1/sessions/{id}",
             [&service](http::RequestContext& ctx) -> Awaitable {
               auto who = co_await authenticate(service, ctx);
               if (!who) co_return problem(who.error(), ctx);
               auto id = db::Uuid::parse(*ctx.param("id"));
               if (!id) co_return problem(make_error(Errc::not_found, "no such session"), ctx);
               auto done = co_await service.revoke(*who, *id);
               if (!done) co_return problem(done.error(), ctx);
               co_return http::Response{status::no_content, 11};
             });
}

}  // namespace liftoff::api
