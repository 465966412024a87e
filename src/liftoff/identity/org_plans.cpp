// OrgService: an organization's plan, its limits and the seats they allow.
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include "liftoff/db/database.hpp"
#include "liftoff/identity/org_common.hpp"
#include "liftoff/identity/organizations.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
using namespace org_common;

namespace {

// What the audit log and the session caches see of a plan: its name and the org's overrides.
std::string plan_text(const plans::Plan& plan, const std::string& overrides) {
  return object_text({{"plan", plan.name}, {"limits", boost::json::parse(overrides)}});
}

}  // namespace

asio::awaitable<Result<void>> OrgService::seat_free(db::Transaction& tx, const db::Uuid& org_id,
                                                    const plans::Plan& plan,
                                                    const plans::Limits& limits,
                                                    bool with_invitations) {
  auto seats = co_await store_.seats(tx, org_id);
  if (!seats) co_return seats.error();
  const auto taken = seats->members + (with_invitations ? seats->invited : 0);
  const auto allowed = limits[plans::Limit::seats];
  if (taken < allowed) co_return Result<void>{};
  co_return plans::limit_reached(plans::Limit::seats, allowed, plan.name,
                                 "every seat of the organization's plan is taken (" +
                                     std::to_string(seats->members) + " members, " +
                                     std::to_string(seats->invited) + " pending invitations, " +
                                     std::to_string(allowed) + " seats)");
}

asio::awaitable<Result<OrgService::PlanState>> OrgService::plan(const db::Scope& scope,
                                                                const Access& access) {
  auto found = co_await store_.plan_of(scope.control(), access.org_id);
  if (!found) co_return found.error();
  if (!*found) co_return make_error(Errc::not_found, "no such organization");
  PlanState state;
  state.plan = (*found)->plan;
  state.overrides = std::move((*found)->overrides);
  state.limits = plans::effective_limits(*state.plan, state.overrides);
  if (options_.tenant_holdings) {
    auto holdings = co_await options_.tenant_holdings(scope);
    if (!holdings) co_return holdings.error();
    state.holdings = *holdings;
  }
  state.holdings[plans::Limit::seats] = (*found)->members;
  co_return state;
}

asio::awaitable<Result<std::optional<plans::Limits>>> OrgService::limits(const db::Scope& scope,
                                                                         const db::Uuid& org_id) {
  auto found = co_await store_.plan_of(scope.control(), org_id);
  if (!found) co_return found.error();
  if (!*found) co_return std::optional<plans::Limits>{};
  co_return plans::effective_limits(*(*found)->plan, (*found)->overrides);
}

asio::awaitable<Result<OrgService::PlanState>> OrgService::apply_plan(
    db::Transaction& tx, const db::Scope& scope, const plans::Plan& from,
    const std::string& from_overrides, const plans::Plan& plan, const std::string& overrides,
    bool force) {
  const auto& org_id = scope.org();
  PlanState state{&plan, overrides, plans::effective_limits(plan, overrides), {}};
  if (options_.tenant_holdings) {
    auto holdings = co_await options_.tenant_holdings(scope);
    if (!holdings) co_return holdings.error();
    state.holdings = *holdings;
  }
  auto seats = co_await store_.seats(tx, org_id);
  if (!seats) co_return seats.error();
  state.holdings[plans::Limit::seats] = seats->members;
  if (&from == &plan && plans::effective_limits(from, from_overrides) == state.limits) {
    auto done = co_await tx.commit();  // nothing changes, nothing to record
    if (!done) co_return done.error();
    co_return state;
  }
  if (auto over = plans::over_limits(state.limits, state.holdings); !over.empty() && !force) {
    co_return Error{Errc::conflict,
                    "the organization holds more than the " + std::string(plan.name) +
                        " plan allows; remove what is over first",
                    std::move(over)};
  }
  auto updated = co_await store_.set_plan(tx, org_id, plan.name, overrides);
  if (!updated) co_return updated.error();
  audit::Change change{"org.plan_changed", "org", org_id.to_string(),
                       plan_text(from, from_overrides), plan_text(plan, overrides)};
  // Every member's cached memberships carry the plan's limits: they reload.
  auto notified = co_await store_.notify(tx, org_payload(org_id));
  if (!notified) co_return notified.error();
  auto event = co_await audit::append_and_commit(tx, scope, change);
  if (!event) co_return event.error();
  evict_org(org_id);
  co_return state;
}

asio::awaitable<Result<OrgService::PlanState>> OrgService::change_plan(const db::Scope& scope,
                                                                       const Principal& principal,
                                                                       std::string_view plan_name) {
  const auto* plan = plans::find_plan(plan_name);
  if (!plan) {
    co_return Error{Errc::validation_failed, "the plan is invalid", {{"plan", "is not a plan"}}};
  }
  if (!plan->self_serve) {
    co_return make_error(
        Errc::permission_denied,
        "the " + std::string(plan->name) + " plan is set by the operator with the org's contract");
  }
  const auto& org_id = scope.org();
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::billing_manage);
  if (!locked) co_return locked.error();
  co_return co_await apply_plan(*tx, scope, *locked->plan, locked->overrides, *plan, "{}", false);
}

asio::awaitable<Result<OrgService::PlanState>> OrgService::set_plan(const db::Scope& scope,
                                                                    std::string_view plan_name,
                                                                    std::string_view overrides,
                                                                    bool force) {
  const auto* plan = plans::find_plan(plan_name);
  if (!plan) {
    co_return Error{Errc::validation_failed, "the plan is invalid", {{"plan", "is not a plan"}}};
  }
  auto canonical = plans::parse_overrides(overrides);
  if (!canonical) co_return canonical.error();
  const auto& org_id = scope.org();
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await store_.lock_org(*tx, org_id, db::Uuid{}, false);
  if (!locked) co_return locked.error();
  if (!*locked || (*locked)->org.deleted_at) {
    co_return make_error(Errc::not_found, "no such organization");
  }
  co_return co_await apply_plan(*tx, scope, *(*locked)->plan, (*locked)->plan_limits, *plan,
                                *canonical, force);
}

}  // namespace liftoff::identity
