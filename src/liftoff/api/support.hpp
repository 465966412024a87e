#pragma once
// What every API handler shares: reading string fields from a JSON body, answering with a problem,
// and finding out who calls (a user's session or an organization's API key).
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>

#include "liftoff/api/rate_limits.hpp"
#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/http/query.hpp"
#include "liftoff/http/router.hpp"
#include "liftoff/http/types.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/store.hpp"
#include "liftoff/ratelimit/gcra.hpp"

namespace liftoff::identity {
class IdentityService;
}
namespace liftoff::db {
class Database;
}

namespace liftoff::api {

using Awaitable = boost::asio::awaitable<http::Response>;
// What a handler of this layer returns: the response, or the error that Routes turns into
// problem+json (one place).
using Answer = boost::asio::awaitable<Result<http::Response>>;

// A 400 naming every member of `object` that is not in `known`; nullopt when there is none.
[[nodiscard]] std::optional<Error> unknown_members(const boost::json::object& object,
                                                   std::initializer_list<std::string_view> known,
                                                   std::string_view hint = "is not a known field");

// The body as an object of exactly `required` string members: unknown members are a 400 naming
// them; missing or non-string members a 422 naming each.
[[nodiscard]] Result<std::map<std::string, std::string>> string_fields(
    const http::Request& request, std::initializer_list<std::string_view> required);

[[nodiscard]] http::Response no_content();

// The request's scope on the control plane: the request's deadline, and as the actor the principal
// (anonymous without one) with the client's address, user agent and the request id. An org's
// routes get theirs from authorize().
[[nodiscard]] db::Scope scope_of(const http::RequestContext& ctx);
[[nodiscard]] db::Scope scope_of(const http::RequestContext& ctx,
                                 const identity::Principal& principal);

// Where an event stream resumes: EventSource resends the last id as Last-Event-ID when it
// reconnects by itself; a client that opens a new stream (with a new ticket) passes it as
// ?last_event_id=. The value (empty for none) and the name it came under, for field errors.
struct ResumeFrom {
  std::string_view value;
  std::string_view field;
};
[[nodiscard]] ResumeFrom resume_from(const http::RequestContext& ctx,
                                     const http::QueryParams& query);

// The answer that opens a Server-Sent Events stream: 200 text/event-stream, never cached, and
// not buffered by a proxy in front (nginx).
[[nodiscard]] http::Response event_stream_response();

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
  identity::Credential credential;  // what established the principal (kept by event streams)
};
[[nodiscard]] boost::asio::awaitable<Result<Authorized>> authorize(
    identity::IdentityService& service, const http::RequestContext& ctx, identity::Action action);
// The same for a credential and an org id kept from a request (an event stream checks again),
// within `scope` (the control plane's, with the deadline and actor to use).
[[nodiscard]] boost::asio::awaitable<Result<Authorized>> authorize(
    identity::IdentityService& service, const db::Scope& scope,
    const identity::Credential& credential, std::string_view org_text, identity::Action action);

// What the org's plan allows of `limit`, for the domain that enforces it.
[[nodiscard]] plans::Allowance allowance_of(const identity::Access& access, plans::Limit limit);

[[nodiscard]] boost::json::object user_json(const identity::User& user);

// Each limit by its name (plans::kLimits).
[[nodiscard]] boost::json::object limits_json(const plans::Limits& limits);
// An org's plan, its limits (with the org's overrides) and what it holds of them, as
// /v1/orgs/{org}/plan answers.
[[nodiscard]] boost::json::object plan_state_json(const identity::OrgService::PlanState& state);

// A time in RFC 3339, or null.
[[nodiscard]] boost::json::value time_or_null(const std::optional<db::Timestamp>& t);

// A signed-in user, with the request's scope acting as them (control plane).
struct SignedIn {
  identity::Principal principal;
  db::Scope scope;
};

// Adds routes whose handlers return an Answer (a Routes may go once they are added: the routes
// keep only the identity service and the database, which outlive the router); each kind first
// establishes who calls, and an error at any step (theirs or the handler's) is answered as
// problem+json with WWW-Authenticate on a 401. Every request of these routes reads its own writes
// across replicas (the Liftoff-Consistency header; see Database::consistency_for).
class Routes {
 public:
  using Cost = http::Cost;
  // Every route counts against the rate limits (rate_limits.hpp): its caller's address, session or
  // key, and org; a request refused before it is known who calls counts against its address.
  Routes(http::Router& router, identity::IdentityService& identity, db::Database& database,
         RateLimits& limits)
      : router_(router), identity_(identity), database_(database), limits_(limits) {}

  // Anyone: the scope is the request's, anonymous.
  // `per_address`: the route's own limit on each address besides the general ones (signups).
  void open(http::Verb verb, std::string_view path,
            std::function<Answer(http::RequestContext&, const db::Scope&)> handler,
            Cost cost = Cost::light, std::optional<ratelimit::Policy> per_address = std::nullopt);
  // A user's session (401 without one, 403 for an API key).
  void user(http::Verb verb, std::string_view path,
            std::function<Answer(http::RequestContext&, const SignedIn&)> handler,
            Cost cost = Cost::light);
  // A user's session or an API key.
  void principal(http::Verb verb, std::string_view path,
                 std::function<Answer(http::RequestContext&, const SignedIn&)> handler,
                 Cost cost = Cost::light);
  // A platform operator's session (identity::PlatformService; docs/decisions/0025): 401 without a
  // session, 403 for an API key or a user who is not an operator. Checked on the primary at every
  // request: a revoked grant stops the next one.
  void platform_operator(http::Verb verb, std::string_view path,
                         std::function<Answer(http::RequestContext&, const SignedIn&)> handler,
                         Cost cost = Cost::light);
  // A member (or key) of the path's {org} allowed `action` (404 for others, 403 for too small a
  // role); the scope acts for the org.
  void org(http::Verb verb, std::string_view path, identity::Action action,
           std::function<Answer(http::RequestContext&, const Authorized&)> handler,
           Cost cost = Cost::light);
  // The same for an org's collection's event stream (the path's {org} and {collection}), where a
  // browser's EventSource, which cannot send Authorization, shows a stream ticket instead:
  // `?ticket=` (IdentityService::issue_stream_ticket), used up by this request. `query_params`:
  // the route's own query parameters, besides `ticket` (others are a 400 before anything is used);
  // the handler gets the query parsed.
  void org_stream(
      http::Verb verb, std::string_view path, identity::Action action,
      std::vector<std::string_view> query_params,
      std::function<Answer(http::RequestContext&, const Authorized&, const http::QueryParams&)>
          handler,
      Cost cost = Cost::light);
  // A signed-in user's own stream (a notification feed: a path without {org}), opened with a
  // session's bearer token or a stream ticket for it; the handler also gets the credential (the
  // stream checks it again as it runs).
  void user_stream(http::Verb verb, std::string_view path,
                   std::vector<std::string_view> query_params,
                   std::function<Answer(http::RequestContext&, const SignedIn&,
                                        const identity::Credential&, const http::QueryParams&)>
                       handler,
                   Cost cost = Cost::light);

 private:
  // Every route of this layer: `handler` with read-your-writes set up for its request.
  void add(http::Verb verb, std::string_view path, http::Handler handler, Cost cost);
  void signed_in(http::Verb verb, std::string_view path,
                 std::function<Answer(http::RequestContext&, const SignedIn&)> handler, Cost cost,
                 bool users_only);
  http::Router& router_;
  identity::IdentityService& identity_;
  db::Database& database_;
  RateLimits& limits_;
};

}  // namespace liftoff::api
