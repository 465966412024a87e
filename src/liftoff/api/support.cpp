#include "liftoff/api/support.hpp"

#include <algorithm>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <cctype>

#include "liftoff/core/time.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/http/json_body.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/http/query.hpp"
#include "liftoff/identity/platform.hpp"
#include "liftoff/identity/service.hpp"

namespace liftoff::api {
namespace json = boost::json;

std::optional<Error> unknown_members(const json::object& object,
                                     std::initializer_list<std::string_view> known,
                                     std::string_view hint) {
  Error unknown{Errc::bad_request, "unknown fields in the body", {}};
  for (const auto& [key, value] : object) {
    if (std::find(known.begin(), known.end(), std::string_view(key)) == known.end())
      unknown.fields.push_back({std::string(key), std::string(hint)});
  }
  if (unknown.fields.empty()) return std::nullopt;
  return unknown;
}

Result<std::map<std::string, std::string>> string_fields(
    const http::Request& request, std::initializer_list<std::string_view> required) {
  auto body = http::parse_json_body(request);
  if (!body) return body.error();
  const auto& object = body->as_object();
  if (auto unknown = unknown_members(object, required)) return *unknown;
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

namespace {
// The error as problem+json (with WWW-Authenticate: Bearer on a 401).
http::Response problem(const Error& error, const http::RequestContext& ctx) {
  auto res = http::problem_response(error, ctx.ids());
  if (error.code == Errc::unauthenticated)
    res.set(http::beast_http::field::www_authenticate, "Bearer");
  return res;
}
}  // namespace

http::Response no_content() {
  return http::Response{http::beast_http::status::no_content, 11};
}

http::Response event_stream_response() {
  http::Response res{http::beast_http::status::ok, 11};
  res.set(http::beast_http::field::content_type, "text/event-stream");
  res.set(http::beast_http::field::cache_control, "no-store");
  res.set("X-Accel-Buffering", "no");  // nginx: pass events through as they come
  return res;
}

ResumeFrom resume_from(const http::RequestContext& ctx, const http::QueryParams& query) {
  if (std::string_view header = ctx.request["Last-Event-ID"]; !header.empty())
    return {header, "Last-Event-ID"};
  if (auto it = query.find("last_event_id"); it != query.end())
    return {it->second, "last_event_id"};
  return {};
}

Result<std::string> bearer_token(const http::RequestContext& ctx) {
  std::string_view header = ctx.request[http::beast_http::field::authorization];
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), header.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    return make_error(Errc::unauthenticated,
                      "missing bearer token (Authorization: Bearer <token>)");
  }
  return std::string(header.substr(kScheme.size()));
}

namespace {
void act_as(db::Scope& scope, const identity::Principal& principal) {
  scope.actor.type = principal.is_user() ? "user" : "api_key";
  scope.actor.id = principal.actor_id();
}
}  // namespace

db::Scope scope_of(const http::RequestContext& ctx) {
  constexpr std::size_t kMaxUserAgent = 512;
  auto agent = ctx.request[http::beast_http::field::user_agent];
  db::Actor actor{"anonymous", std::nullopt, std::string(ctx.remote),
                  std::string(agent.substr(0, std::min(agent.size(), kMaxUserAgent))),
                  std::string(ctx.request_id)};
  return db::Scope{db::Tenant::control(), ctx.deadline,        std::move(actor),  std::nullopt,
                   ctx.consistency,       ctx.trace_context(), ctx.statement_time};
}

db::Scope scope_of(const http::RequestContext& ctx, const identity::Principal& principal) {
  auto scope = scope_of(ctx);
  act_as(scope, principal);
  return scope;
}

boost::asio::awaitable<Result<identity::Principal>> authenticate(identity::IdentityService& service,
                                                                 const http::RequestContext& ctx) {
  auto token = bearer_token(ctx);
  if (!token) co_return token.error();
  co_return co_await service.authenticate(scope_of(ctx), *token);
}

boost::asio::awaitable<Result<identity::Principal>> authenticate_user(
    identity::IdentityService& service, const http::RequestContext& ctx) {
  auto who = co_await authenticate(service, ctx);
  if (who && !who->is_user()) {
    co_return make_error(Errc::permission_denied,
                         "this needs a user's session token; API keys act only on their "
                         "organization's resources");
  }
  co_return who;
}

boost::asio::awaitable<Result<Authorized>> authorize(identity::IdentityService& service,
                                                     const db::Scope& scope,
                                                     const identity::Credential& credential,
                                                     std::string_view org_text,
                                                     identity::Action action) {
  auto who = co_await service.authenticate(scope, credential);
  if (!who) co_return who.error();
  auto access = identity::OrgService::access(*who, org_text, action);
  if (!access) co_return access.error();
  auto org_scope = scope.for_tenant(db::Tenant::org(access->org_id));
  act_as(org_scope, *who);
  co_return Authorized{std::move(*who), *access, std::move(org_scope), credential};
}

boost::asio::awaitable<Result<Authorized>> authorize(identity::IdentityService& service,
                                                     const http::RequestContext& ctx,
                                                     identity::Action action) {
  auto token = bearer_token(ctx);
  if (!token) co_return token.error();
  auto credential = identity::credential_of(*token);
  if (!credential) co_return credential.error();
  auto org_text = ctx.param("org").value_or("");
  co_return co_await authorize(service, scope_of(ctx), *credential, org_text, action);
}

json::value time_or_null(const std::optional<db::Timestamp>& t) {
  return t ? json::value(core::format_rfc3339(*t)) : json::value(nullptr);
}

plans::Allowance allowance_of(const identity::Access& access, plans::Limit limit) {
  return {limit, access.limits[limit], access.plan->name};
}

json::object limits_json(const plans::Limits& limits) {
  json::object out;
  for (auto limit : plans::kLimits) out[plans::to_string(limit)] = limits[limit];
  return out;
}

json::object plan_state_json(const identity::OrgService::PlanState& state) {
  json::object usage;
  for (auto limit : plans::kLimits) {
    if (const auto& held = state.holdings[limit]) usage[plans::to_string(limit)] = *held;
  }
  return {{"plan", state.plan->name},
          {"monthly_price_cents", state.plan->monthly_price_cents},
          {"limits", limits_json(state.limits)},
          {"overrides", json::parse(state.overrides)},
          {"usage", std::move(usage)}};
}

json::object user_json(const identity::User& user) {
  return {{"id", user.id.to_string()},
          {"email", user.email},
          {"name", user.name},
          {"email_verified", user.email_verified},
          {"created_at", core::format_rfc3339(user.created_at)}};
}

namespace {
// Awaits the handler's answer and turns its error into problem+json.
Awaitable respond(http::RequestContext& ctx, Answer answer) {
  auto result = co_await std::move(answer);
  if (!result) co_return problem(result.error(), ctx);
  co_return std::move(*result);
}

// The answer to a request whose caller is known (`who`; null when anonymous) on the org of `access`
// (null: none), under the rate limits (and the route's own, `route`): the handler's answer with the
// RateLimit headers, or 429.
Awaitable admitted(http::RequestContext& ctx, RateLimits& limits, const identity::Principal* who,
                   const identity::Access* access, Answer answer,
                   const ratelimit::Policy* route = nullptr) {
  if (access != nullptr) ctx.tenant = access->org_id.to_string();  // per-tenant metrics
  auto verdict = co_await limits.admit(ctx, who, access, route);
  http::Response response;
  if (verdict.refused) {
    response = problem(*verdict.refused, ctx);
  } else {
    response = co_await respond(ctx, std::move(answer));
  }
  verdict.decorate(response);
  co_return response;
}

// The answer to a request refused before its caller was known (`error`: a 401, 403 or 404): it
// still counts against its address, and past the address's limit it is a 429 instead.
Awaitable refused(http::RequestContext& ctx, RateLimits& limits, const Error& error) {
  auto verdict = co_await limits.admit(ctx, nullptr, nullptr);
  auto response = problem(verdict.refused ? *verdict.refused : error, ctx);
  verdict.decorate(response);
  co_return response;
}

constexpr std::string_view kConsistencyHeader = "Liftoff-Consistency";

// The key of the caller's recent writes on this node: a hash of its Authorization header (0: none).
// Only the caller has its credential; a collision costs another caller a stricter read, no more.
std::uint64_t writer_of(const http::RequestContext& ctx) {
  auto authorization = ctx.request[http::beast_http::field::authorization];
  if (authorization.empty()) return 0;
  return std::hash<std::string_view>{}(authorization) | 1;
}

// Runs `handle` for the request with read-your-writes across replicas: its reads reflect the
// position the client echoes in Liftoff-Consistency and what this node saw its credential write
// last, and the answer gives the client the position to echo next (docs/api.md, "Consistency").
Awaitable consistently(http::RequestContext& ctx, db::Database& database,
                       const http::Handler& handle) {
  db::ConsistencyToken token;
  if (auto header = ctx.request.find(kConsistencyHeader); header != ctx.request.end()) {
    auto parsed = db::parse_consistency_token(header->value());
    if (!parsed || ctx.request.count(kConsistencyHeader) > 1) {
      co_return problem(Error{Errc::bad_request,
                              "invalid header",
                              {{std::string(kConsistencyHeader),
                                "must be one token this API answered with, such as 0/3000148 or "
                                "main:0/3000148;eu-1:0/9A0"}}},
                        ctx);
    }
    token = std::move(*parsed);
  }
  auto writer = writer_of(ctx);
  ctx.consistency = database.consistency_for(writer, token);
  auto response = co_await handle(ctx);
  if (ctx.consistency) {
    database.remember_writes(writer, *ctx.consistency);
    if (auto answer = database.token_of(*ctx.consistency); !answer.empty())
      response.set(kConsistencyHeader, db::to_string(answer));
  }
  co_return response;
}
}  // namespace

void Routes::add(http::Verb verb, std::string_view path, http::Handler handler, Cost cost) {
  router_.add(
      verb, path,
      [&database = database_, handler = std::move(handler)](http::RequestContext& ctx) {
        return consistently(ctx, database, handler);
      },
      cost);
}

void Routes::open(http::Verb verb, std::string_view path,
                  std::function<Answer(http::RequestContext&, const db::Scope&)> handler, Cost cost,
                  std::optional<ratelimit::Policy> per_address) {
  add(
      verb, path,
      [&limits = limits_, handler = std::move(handler),
       per_address = std::move(per_address)](http::RequestContext& ctx) -> Awaitable {
        auto scope = scope_of(ctx);
        co_return co_await admitted(ctx, limits, nullptr, nullptr, handler(ctx, scope),
                                    per_address ? &*per_address : nullptr);
      },
      cost);
}

void Routes::user(http::Verb verb, std::string_view path,
                  std::function<Answer(http::RequestContext&, const SignedIn&)> handler,
                  Cost cost) {
  signed_in(verb, path, std::move(handler), cost, /*users_only=*/true);
}

void Routes::principal(http::Verb verb, std::string_view path,
                       std::function<Answer(http::RequestContext&, const SignedIn&)> handler,
                       Cost cost) {
  signed_in(verb, path, std::move(handler), cost, /*users_only=*/false);
}

void Routes::signed_in(http::Verb verb, std::string_view path,
                       std::function<Answer(http::RequestContext&, const SignedIn&)> handler,
                       Cost cost, bool users_only) {
  add(
      verb, path,
      [&identity = identity_, &limits = limits_, users_only,
       handler = std::move(handler)](http::RequestContext& ctx) -> Awaitable {
        // No co_await inside ?: (GCC 12 evaluates it twice; see Params::none()).
        Result<identity::Principal> who = make_error(Errc::unauthenticated, "not checked");
        if (users_only) {
          who = co_await authenticate_user(identity, ctx);
        } else {
          who = co_await authenticate(identity, ctx);
        }
        if (!who) co_return co_await refused(ctx, limits, who.error());
        SignedIn caller{*who, scope_of(ctx, *who)};
        co_return co_await admitted(ctx, limits, &caller.principal, nullptr, handler(ctx, caller));
      },
      cost);
}

void Routes::platform_operator(
    http::Verb verb, std::string_view path,
    std::function<Answer(http::RequestContext&, const SignedIn&)> handler, Cost cost) {
  signed_in(
      verb, path,
      [&database = database_, handler = std::move(handler)](http::RequestContext& ctx,
                                                            const SignedIn& caller) -> Answer {
        identity::PlatformService platform(database);
        auto allowed = co_await platform.is_operator(caller.scope, caller.principal.user.id);
        if (!allowed) co_return allowed.error();
        if (!*allowed)
          co_return make_error(Errc::permission_denied, "only platform operators may do this");
        co_return co_await handler(ctx, caller);
      },
      cost, /*users_only=*/true);
}

void Routes::org(http::Verb verb, std::string_view path, identity::Action action,
                 std::function<Answer(http::RequestContext&, const Authorized&)> handler,
                 Cost cost) {
  add(
      verb, path,
      [&identity = identity_, &limits = limits_, action,
       handler = std::move(handler)](http::RequestContext& ctx) -> Awaitable {
        auto who = co_await authorize(identity, ctx, action);
        if (!who) co_return co_await refused(ctx, limits, who.error());
        co_return co_await admitted(ctx, limits, &who->principal, &who->access, handler(ctx, *who));
      },
      cost);
}

namespace {
// The credential a stream is opened with: its stream ticket's when the query has one (which must
// be for the path's stream: its {org} and {collection}, or neither for a user's notification
// feed), else the bearer token's.
boost::asio::awaitable<Result<identity::Credential>> stream_credential(
    identity::IdentityService& service, const http::RequestContext& ctx,
    const http::QueryParams& query) {
  auto ticket = query.find("ticket");
  if (ticket == query.end()) {
    auto token = bearer_token(ctx);
    if (!token) co_return token.error();
    co_return identity::credential_of(*token);
  }
  if (ctx.request.find(http::beast_http::field::authorization) != ctx.request.end()) {
    co_return Error{Errc::bad_request,
                    "a stream is opened with a ticket or with Authorization, not both",
                    {{"ticket", "give either this or the Authorization header"}}};
  }
  auto redeemed = co_await service.redeem_stream_ticket(scope_of(ctx), ticket->second);
  if (!redeemed) co_return redeemed.error();
  auto org = ctx.param("org");
  if ((org ? db::Uuid::parse(*org) : std::nullopt) != redeemed->org_id ||
      ctx.param("collection").value_or("") != redeemed->collection.value_or("")) {
    co_return make_error(Errc::unauthenticated, "this stream ticket is for another stream");
  }
  co_return std::move(redeemed->credential);
}

boost::asio::awaitable<Result<Authorized>> authorize_stream(identity::IdentityService& service,
                                                            const http::RequestContext& ctx,
                                                            identity::Action action,
                                                            const http::QueryParams& query) {
  auto credential = co_await stream_credential(service, ctx, query);
  if (!credential) co_return credential.error();
  auto org_text = ctx.param("org").value_or("");
  co_return co_await authorize(service, scope_of(ctx), *credential, org_text, action);
}
}  // namespace

void Routes::org_stream(
    http::Verb verb, std::string_view path, identity::Action action,
    std::vector<std::string_view> query_params,
    std::function<Answer(http::RequestContext&, const Authorized&, const http::QueryParams&)>
        handler,
    Cost cost) {
  query_params.emplace_back("ticket");
  add(
      verb, path,
      [&identity = identity_, &limits = limits_, action, query_params = std::move(query_params),
       handler = std::move(handler)](http::RequestContext& ctx) -> Awaitable {
        // Unknown parameters are refused before a ticket is spent.
        auto query = http::parse_query(ctx.query, query_params);
        if (!query) co_return co_await refused(ctx, limits, query.error());
        auto who = co_await authorize_stream(identity, ctx, action, *query);
        if (!who) co_return co_await refused(ctx, limits, who.error());
        co_return co_await admitted(ctx, limits, &who->principal, &who->access,
                                    handler(ctx, *who, *query));
      },
      cost);
}

void Routes::user_stream(
    http::Verb verb, std::string_view path, std::vector<std::string_view> query_params,
    std::function<Answer(http::RequestContext&, const SignedIn&, const identity::Credential&,
                         const http::QueryParams&)>
        handler,
    Cost cost) {
  query_params.emplace_back("ticket");
  add(
      verb, path,
      [&identity = identity_, &limits = limits_, query_params = std::move(query_params),
       handler = std::move(handler)](http::RequestContext& ctx) -> Awaitable {
        auto query = http::parse_query(ctx.query, query_params);
        if (!query) co_return co_await refused(ctx, limits, query.error());
        auto credential = co_await stream_credential(identity, ctx, *query);
        if (!credential) co_return co_await refused(ctx, limits, credential.error());
        auto who = co_await identity.authenticate(scope_of(ctx), *credential);
        if (!who) co_return co_await refused(ctx, limits, who.error());
        if (!who->is_user()) {
          co_return co_await refused(ctx, limits,
                                     make_error(Errc::permission_denied,
                                                "a notification feed is a user's: open it with a "
                                                "session, not an API key"));
        }
        SignedIn caller{*who, scope_of(ctx, *who)};
        co_return co_await admitted(ctx, limits, &caller.principal, nullptr,
                                    handler(ctx, caller, *credential, *query));
      },
      cost);
}

}  // namespace liftoff::api
