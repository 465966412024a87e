#pragma once
// What every API handler shares: reading string fields from a JSON body, answering with a problem,
// and finding out who calls (a user's session or an organization's API key).
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/http/types.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/store.hpp"

namespace liftoff::identity {
class IdentityService;
}

namespace liftoff::api {

using Awaitable = boost::asio::awaitable<http::Response>;

// A 400 naming every member of `object` that is not in `known`; nullopt when there is none.
[[nodiscard]] std::optional<Error> unknown_members(const boost::json::object& object,
                                                   std::initializer_list<std::string_view> known,
                                                   std::string_view hint = "is not a known field");

// The body as an object of exactly `required` string members: unknown members are a 400 naming
// them; missing or non-string members a 422 naming each.
[[nodiscard]] Result<std::map<std::string, std::string>> string_fields(
    const http::Request& request, std::initializer_list<std::string_view> required);

// The error as problem+json (with WWW-Authenticate: Bearer on a 401).
[[nodiscard]] http::Response problem(const Error& error, const http::RequestContext& ctx);

[[nodiscard]] http::Response no_content();

// The request's scope on the control plane: the request's deadline, and as the actor the principal
// (anonymous without one) with the client's address, user agent and the request id. An org's
// routes get theirs from authorize().
[[nodiscard]] db::Scope scope_of(const http::RequestContext& ctx);
[[nodiscard]] db::Scope scope_of(const http::RequestContext& ctx,
                                 const identity::Principal& principal);

// The token of `Authorization: Bearer <session token or API key>` (401 without one).
[[nodiscard]] Result<std::string> bearer_token(const http::RequestContext& ctx);
// The principal behind the bearer token.
[[nodiscard]] boost::asio::awaitable<Result<identity::Principal>> authenticate(
    identity::IdentityService& service, const http::RequestContext& ctx);
// The same, but only a user's session will do (permission_denied for an API key).
[[nodiscard]] boost::asio::awaitable<Result<identity::Principal>> authenticate_user(
    identity::IdentityService& service, const http::RequestContext& ctx);

// authenticate(), then OrgService::access() for the path's {org}: not a member -> 404, too small a
// role for `action` -> 403. The scope acts for the org, as the principal.
struct Authorized {
  identity::Principal principal;
  identity::Access access;
  db::Scope scope;
};
[[nodiscard]] boost::asio::awaitable<Result<Authorized>> authorize(
    identity::IdentityService& service, const http::RequestContext& ctx, identity::Action action);
// The same for a token and an org id kept from a request (an event stream checks again), within
// `scope` (the control plane's, with the deadline and actor to use).
[[nodiscard]] boost::asio::awaitable<Result<Authorized>> authorize(
    identity::IdentityService& service, const db::Scope& scope, const std::string& token,
    std::string_view org_text, identity::Action action);

[[nodiscard]] boost::json::object user_json(const identity::User& user);

}  // namespace liftoff::api
