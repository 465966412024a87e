#include "liftoff/api/operator.hpp"

#include <atomic>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <functional>

#include "liftoff/api/support.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/db/advisor.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/http/json_body.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/http/query.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/platform.hpp"
#include "liftoff/plans/plans.hpp"
#include "liftoff/usage/report.hpp"

namespace liftoff::api {
namespace {
namespace json = boost::json;
using http::beast_http::status;

constexpr int kMaxPage = 100;
constexpr std::size_t kMaxSearchText = 200;
constexpr std::size_t kMaxReason = 500;
constexpr int kUsageDays = 30;  // an org's usage as its page shows it
constexpr int kMaxStatements = 100;
// An operator's index advice on every cluster, from the click to the answer.
constexpr std::chrono::seconds kAdviceTimeout{120};

struct Search {
  std::string text;
  int limit = 25;
};

// ?q=&limit=: the text searched for (empty: everything, newest first) and the page's size.
Result<Search> search_query(std::string_view text) {
  auto query = http::parse_query(text, {"q", "limit"});
  if (!query) return query.error();
  Search search;
  if (auto it = query->find("q"); it != query->end()) search.text = it->second;
  if (search.text.size() > kMaxSearchText)
    return Error{Errc::bad_request,
                 "invalid query parameters",
                 {{"q", "must be at most " + std::to_string(kMaxSearchText) + " bytes"}}};
  auto limit = http::int_param(*query, "limit", search.limit, 1, kMaxPage);
  if (!limit) return limit.error();
  search.limit = *limit;
  return search;
}

json::object org_json(const identity::OrgSummary& org) {
  return {{"id", org.id.to_string()},
          {"name", org.name},
          {"plan", org.plan},
          {"shard", org.shard},
          {"members", org.members},
          {"created_at", core::format_rfc3339(org.created_at)},
          {"deleted_at", time_or_null(org.deleted_at)},
          {"suspended_at", time_or_null(org.suspended_at)},
          {"suspended_reason",
           org.suspended_at ? json::value(org.suspended_reason) : json::value(nullptr)}};
}

// The path's {id} ({id}, not {org}: an org's own CORS origins are for its routes, not the
// operators').
Result<db::Uuid> org_id_of(const http::RequestContext& ctx) {
  auto id = db::Uuid::parse(ctx.param("id").value_or(""));
  if (!id) return make_error(Errc::not_found, "no such organization");
  return *id;
}

// The body of PUT /v1/operator/orgs/{id}/plan: {"plan", "limits"?: {...}, "force"?: bool}.
struct PlanChange {
  std::string plan;
  std::string overrides = "{}";  // plans::parse_overrides checks them
  bool force = false;
};

Result<PlanChange> plan_change(const http::Request& request) {
  auto body = http::parse_json_body(request);
  if (!body) return body.error();
  const auto& object = body->as_object();
  if (auto unknown = unknown_members(object, {"plan", "limits", "force"})) return *unknown;
  Error invalid{Errc::validation_failed, "the plan change is invalid", {}};
  PlanChange change;
  if (const auto* plan = object.if_contains("plan"); plan && plan->is_string()) {
    change.plan = plan->get_string();
  } else {
    invalid.fields.push_back({"plan", "must be a plan's name"});
  }
  if (const auto* limits = object.if_contains("limits")) {
    if (limits->is_object()) {
      change.overrides = json::serialize(*limits);
    } else {
      invalid.fields.push_back({"limits", "must be an object of limits"});
    }
  }
  if (const auto* force = object.if_contains("force")) {
    if (force->is_bool()) {
      change.force = force->get_bool();
    } else {
      invalid.fields.push_back({"force", "must be true or false"});
    }
  }
  if (!invalid.fields.empty()) return invalid;
  return change;
}

// The org `id` as the operators' list shows it (after a change).
Answer org_answer(db::Database& database, const db::Scope& scope, const db::Uuid& id) {
  identity::PlatformService platform(database);
  auto found = co_await platform.find_orgs(scope, id.to_string(), 1);
  if (!found) co_return found.error();
  if (found->empty()) co_return make_error(Errc::not_found, "no such organization");
  co_return http::json_response(status::ok, org_json(found->front()));
}

json::object slow_summary_json(const db::SlowSummary& slow) {
  json::value plan = nullptr;
  if (!slow.plan.empty()) plan = json::parse(slow.plan);  // SlowLog keeps it as redacted JSON
  return {{"node", slow.node},
          {"statement", slow.name},
          {"sql", slow.sql},
          {"count", slow.count},
          {"total_ms", slow.total_ms},
          {"mean_ms", slow.total_ms / static_cast<double>(std::max<std::int64_t>(slow.count, 1))},
          {"max_ms", slow.max_ms},
          {"last_at", core::format_rfc3339(slow.last_at)},
          {"plan", std::move(plan)}};
}

json::object statement_totals_json(const db::StatementTotals& totals) {
  return {{"query", totals.query},     {"calls", totals.calls}, {"total_ms", totals.total_ms},
          {"mean_ms", totals.mean_ms}, {"rows", totals.rows},   {"share", totals.share}};
}

// What an operator's request finds on one cluster (by its index in Database::shards()).
using ClusterPart = boost::asio::awaitable<Result<json::object>>;
using ClusterWork = std::function<ClusterPart(std::size_t)>;

// {"clusters": [...]}: each cluster in turn, {"cluster": its name} with what `work` found there, or
// with the `problem` that stopped it there (the other clusters still answer).
Answer every_cluster(db::Database& database, const ClusterWork& work) {
  json::array clusters;
  for (std::size_t i = 0; i < database.shards().size(); ++i) {
    json::object part{{"cluster", database.shards()[i]}};
    auto found = co_await work(i);
    if (found) {
      for (auto& [key, value] : *found) part[key] = std::move(value);
    } else {
      part["problem"] = found.error().detail;
    }
    clusters.push_back(std::move(part));
  }
  co_return http::json_response(status::ok, json::object{{"clusters", std::move(clusters)}});
}

json::object user_summary_json(const identity::UserSummary& summary) {
  auto user = user_json(summary.user);
  user["orgs"] = summary.orgs;
  user["last_seen_at"] = time_or_null(summary.last_seen_at);
  return user;
}

// Whether orgs on `name` pay: its price is not zero (a plan no longer in the catalogue counts).
bool paid_plan(std::string_view name) {
  const auto* plan = plans::find_plan(name);
  return plan == nullptr || plan->monthly_price_cents > 0;
}

json::object business_json(const identity::BusinessFigures& figures) {
  json::array signups;
  for (const auto& day : figures.signups)
    signups.push_back(json::object{{"day", core::format_rfc3339(day.day).substr(0, 10)},
                                   {"signups", day.signups}});
  json::array plans;
  std::int64_t paid = 0;
  for (const auto& plan : figures.plans) {
    plans.push_back(json::object{{"plan", plan.plan}, {"orgs", plan.orgs}});
    if (paid_plan(plan.plan)) paid += plan.orgs;
  }
  json::array cohorts;
  for (const auto& cohort : figures.cohorts) {
    json::object by_plan;
    std::int64_t cohort_paid = 0;
    for (const auto& plan : cohort.plans) {
      by_plan[plan.plan] = plan.orgs;
      if (paid_plan(plan.plan)) cohort_paid += plan.orgs;
    }
    cohorts.push_back(json::object{{"month", core::format_rfc3339(cohort.month).substr(0, 7)},
                                   {"orgs", cohort.orgs},
                                   {"deleted", cohort.deleted},
                                   {"paid", cohort_paid},
                                   {"plans", std::move(by_plan)}});
  }
  return {{"users", figures.users},
          {"orgs", figures.orgs},
          {"active_users", json::object{{"day", figures.active_1d},
                                        {"week", figures.active_7d},
                                        {"month", figures.active_30d}}},
          {"paid_orgs", paid},
          {"signups", std::move(signups)},
          {"plans", std::move(plans)},
          {"cohorts", std::move(cohorts)}};
}
}  // namespace

void add_operator_routes(http::Router& router, identity::IdentityService& identity,
                         identity::OrgService& orgs, db::Database& database, RateLimits& limits) {
  Routes routes(router, identity, database, limits);

  routes.platform_operator(
      http::Verb::get, "/v1/operator/me",
      [](http::RequestContext&, const SignedIn& caller) -> Answer {
        co_return http::json_response(
            status::ok,
            json::object{{"user", user_json(caller.principal.user)}, {"operator", true}});
      });

  routes.platform_operator(
      http::Verb::get, "/v1/operator/orgs",
      [&database](http::RequestContext& ctx, const SignedIn& caller) -> Answer {
        auto search = search_query(ctx.query);
        if (!search) co_return search.error();
        identity::PlatformService platform(database);
        auto orgs = co_await platform.find_orgs(caller.scope, search->text, search->limit);
        if (!orgs) co_return orgs.error();
        json::array items;
        for (const auto& org : *orgs) items.push_back(org_json(org));
        co_return http::json_response(status::ok, json::object{{"orgs", std::move(items)}});
      });

  // Suspends the org (with the operator's reason), or lifts its suspension; answers the org.
  const auto suspension = [&database, &orgs](http::RequestContext& ctx, const SignedIn& caller,
                                             bool suspend) -> Answer {
    auto org_id = org_id_of(ctx);
    if (!org_id) co_return org_id.error();
    std::string reason;
    if (suspend) {
      auto fields = string_fields(ctx.request, {"reason"});
      if (!fields) co_return fields.error();
      reason = (*fields)["reason"];
      if (reason.empty() || reason.size() > kMaxReason) {
        co_return Error{Errc::validation_failed,
                        "the reason is invalid",
                        {{"reason", "must be 1 to " + std::to_string(kMaxReason) + " bytes"}}};
      }
    }
    auto scope = caller.scope.for_tenant(db::Tenant::org(*org_id));
    auto changed = co_await orgs.set_suspended(scope, suspend, reason);
    if (!changed) co_return changed.error();
    co_return co_await org_answer(database, caller.scope, *org_id);
  };
  routes.platform_operator(http::Verb::post, "/v1/operator/orgs/{id}/suspension",
                           [suspension](http::RequestContext& ctx, const SignedIn& caller) {
                             return suspension(ctx, caller, true);
                           });
  routes.platform_operator(http::Verb::delete_, "/v1/operator/orgs/{id}/suspension",
                           [suspension](http::RequestContext& ctx, const SignedIn& caller) {
                             return suspension(ctx, caller, false);
                           });

  // One org: its summary, its plan with its limits and holdings, and its usage by day over the
  // last kUsageDays days (UTC).
  routes.platform_operator(
      http::Verb::get, "/v1/operator/orgs/{id}",
      [&database, &orgs](http::RequestContext& ctx, const SignedIn& caller) -> Answer {
        auto org_id = org_id_of(ctx);
        if (!org_id) co_return org_id.error();
        identity::PlatformService platform(database);
        auto found = co_await platform.find_orgs(caller.scope, org_id->to_string(), 1);
        if (!found) co_return found.error();
        if (found->empty()) co_return make_error(Errc::not_found, "no such organization");
        json::object detail{{"org", org_json(found->front())}};
        auto scope = caller.scope.for_tenant(db::Tenant::org(*org_id));
        // A deleted org has no plan any more (null); its usage stays until it is purged.
        auto state = co_await orgs.plan(scope, identity::Access{.org_id = *org_id});
        if (!state && state.error().code != Errc::not_found) co_return state.error();
        detail["plan"] = state ? json::value(plan_state_json(*state)) : json::value(nullptr);
        auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
        db::Timestamp to = today + std::chrono::days(1);
        db::Timestamp from = today - std::chrono::days(kUsageDays - 1);
        auto rows = co_await usage::read_usage(database, scope, from, to, usage::Granularity::day);
        if (!rows) co_return rows.error();
        json::array days;
        for (const auto& row : *rows) days.push_back(usage::usage_json(row));
        detail["usage"] = json::object{{"org_id", org_id->to_string()},
                                       {"from", core::format_rfc3339(from)},
                                       {"to", core::format_rfc3339(to)},
                                       {"granularity", "day"},
                                       {"usage", std::move(days)}};
        co_return http::json_response(status::ok, std::move(detail));
      });

  // Sets the org's plan (any plan, with the contract's limits over it), as `liftoff orgs plan`;
  // audited as org.plan_changed by the operator.
  routes.platform_operator(http::Verb::put, "/v1/operator/orgs/{id}/plan",
                           [&orgs](http::RequestContext& ctx, const SignedIn& caller) -> Answer {
                             auto org_id = org_id_of(ctx);
                             if (!org_id) co_return org_id.error();
                             auto change = plan_change(ctx.request);
                             if (!change) co_return change.error();
                             auto scope = caller.scope.for_tenant(db::Tenant::org(*org_id));
                             auto state = co_await orgs.set_plan(scope, change->plan,
                                                                 change->overrides, change->force);
                             if (!state) co_return state.error();
                             co_return http::json_response(status::ok, plan_state_json(*state));
                           });

  // The slow statements this server ran (over slow_statement_threshold), each with its latest
  // plan, constants redacted (db/slow_log.hpp). Behind a load balancer: the server that answers.
  routes.platform_operator(
      http::Verb::get, "/v1/operator/slow-statements",
      [&database](http::RequestContext&, const SignedIn&) -> Answer {
        json::array items;
        for (const auto& slow : database.slow_statements())
          items.push_back(slow_summary_json(slow));
        co_return http::json_response(
            status::ok,
            json::object{{"threshold_ms", database.options().slow_statements.threshold.count()},
                         {"statements", std::move(items)}});
      });

  // The statements with the most execution time on each cluster's primary (pg_stat_statements),
  // for the whole fleet since the statistics were reset.
  routes.platform_operator(
      http::Verb::get, "/v1/operator/statements",
      [&database](http::RequestContext& ctx, const SignedIn& caller) -> Answer {
        auto query = http::parse_query(ctx.query, {"limit"});
        if (!query) co_return query.error();
        auto limit = http::int_param(*query, "limit", 20, 1, kMaxStatements);
        if (!limit) co_return limit.error();
        const ClusterWork statements = [&](std::size_t i) -> ClusterPart {
          auto scope = caller.scope.for_tenant(db::Tenant::every_org_on(i));
          auto lease = co_await database.acquire(db::Intent::write, scope);
          if (!lease) co_return lease.error();
          auto totals = co_await db::top_statements(**lease, static_cast<std::size_t>(*limit),
                                                    database.statement_deadline(scope));
          if (!totals) co_return totals.error();
          json::array items;
          for (const auto& statement : *totals) items.push_back(statement_totals_json(statement));
          co_return json::object{{"statements", std::move(items)}};
        };
        co_return co_await every_cluster(database, statements);
      },
      http::Cost::heavy);

  // Index advice (db/advisor.hpp) on each cluster's primary, on a connection of its own: what
  // `liftoff db advise` prints. One at a time per server: it plans every top statement with each
  // candidate index.
  routes.platform_operator(
      http::Verb::post, "/v1/operator/index-advice",
      [&database](http::RequestContext&, const SignedIn&) -> Answer {
        static std::atomic<bool> running{false};
        if (running.exchange(true))
          co_return make_error(Errc::conflict, "index advice is already running on this server");
        struct Done {
          ~Done() { running = false; }
        } done;
        const auto deadline = db::deadline_after(kAdviceTimeout);
        const ClusterWork advise = [&](std::size_t i) -> ClusterPart {
          // Every cluster within the one budget: what the earlier ones left.
          db::AdviceOptions options;
          options.timeout =
              std::max(std::chrono::seconds(1),
                       std::chrono::ceil<std::chrono::seconds>(deadline - db::Clock::now()));
          auto conn = co_await database.connect_admin(i, deadline);
          if (!conn) co_return conn.error();
          auto advice = co_await db::advise_indexes(**conn, options);
          if (!advice) co_return advice.error();
          co_return db::advice_json(*advice);
        };
        co_return co_await every_cluster(database, advise);
      },
      http::Cost::heavy);

  routes.platform_operator(
      http::Verb::get, "/v1/operator/users",
      [&database](http::RequestContext& ctx, const SignedIn& caller) -> Answer {
        auto search = search_query(ctx.query);
        if (!search) co_return search.error();
        identity::PlatformService platform(database);
        auto users = co_await platform.find_users(caller.scope, search->text, search->limit);
        if (!users) co_return users.error();
        json::array items;
        for (const auto& user : *users) items.push_back(user_summary_json(user));
        co_return http::json_response(status::ok, json::object{{"users", std::move(items)}});
      });

  routes.platform_operator(
      http::Verb::get, "/v1/operator/business",
      [&database](http::RequestContext&, const SignedIn& caller) -> Answer {
        identity::PlatformService platform(database);
        auto figures = co_await platform.business(caller.scope);
        if (!figures) co_return figures.error();
        co_return http::json_response(status::ok, business_json(*figures));
      },
      http::Cost::heavy);
}

}  // namespace liftoff::api
