#pragma once
// What every statement is issued for: the tenant it acts for, the time by which it must finish, and
// who acts. Built once per request (api::scope_of) or per unit of background work
// (Scope::background), and passed unchanged from the handler through services and stores into
// every Database call, which routes by the tenant (docs/architecture.md, "Two planes").
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "liftoff/core/tenant_tally.hpp"
#include "liftoff/db/consistency.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/trace/span.hpp"

namespace liftoff::db {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

[[nodiscard]] inline Deadline deadline_after(std::chrono::milliseconds d) {
  return Clock::now() + d;
}

// Where a table lives. The control plane holds what authentication needs before it knows a tenant
// (users, sessions, the organization directory, memberships, invitations, API keys); the tenant
// plane holds what belongs to one organization (collections, records, idempotency keys, audit
// chains and events, rewrites). Every Statement declares its plane; `any` is for statements that
// touch no table (transaction control, probes).
enum class Plane : std::uint8_t { control, tenant, any };

[[nodiscard]] std::string_view to_string(Plane plane);

// The tenant a statement acts for: one organization (on its shard), every organization of one
// shard (background sweeps over the tenant plane, which loop over Database::shards()), or the
// control plane.
class Tenant {
 public:
  [[nodiscard]] static Tenant control() { return Tenant{Kind::control, {}}; }
  [[nodiscard]] static Tenant org(const Uuid& id) { return Tenant{Kind::org, id}; }
  // Every organization on shard `shard` (an index into Database::shards(); 0 is main).
  [[nodiscard]] static Tenant every_org_on(std::size_t shard) {
    return Tenant{Kind::every_org, {}, shard};
  }
  // Every organization on main: for deployments and tests with one cluster.
  [[nodiscard]] static Tenant every_org() { return every_org_on(0); }

  [[nodiscard]] Plane plane() const {
    return kind_ == Kind::control ? Plane::control : Plane::tenant;
  }
  // The organization; nullopt for control() and every_org().
  [[nodiscard]] const std::optional<Uuid>& org_id() const { return org_; }
  // The shard of every_org_on(); 0 (main) for the control plane; meaningless for org().
  [[nodiscard]] std::size_t shard() const { return shard_; }
  // "control", "every org" or the org's id: for logs and errors.
  [[nodiscard]] std::string describe() const;
  bool operator==(const Tenant&) const = default;

 private:
  enum class Kind : std::uint8_t { control, org, every_org };
  Tenant(Kind kind, std::optional<Uuid> org, std::size_t shard = 0)
      : kind_(kind), org_(org), shard_(shard) {}
  Kind kind_;
  std::optional<Uuid> org_;
  std::size_t shard_ = 0;
};

// Who acts, and from where: what the audit log records of a change.
struct Actor {
  std::string type;        // "user", "api_key" or "system" (background work)
  std::optional<Uuid> id;  // the user's or the key's id
  std::string ip;
  std::string user_agent;
  std::string request_id;
};

struct Scope {
  Tenant tenant = Tenant::control();
  Deadline deadline{};
  Actor actor;
  // How long each statement may take when not db_query_timeout (background work whose statements
  // are long by nature, such as deleting a big tenant).
  std::optional<std::chrono::milliseconds> statement_timeout;
  // What the scope's reads must reflect and where its writes left the log (read-your-writes across
  // replicas), shared by every copy of the scope; null: reads may go to any replica in rotation,
  // and writes are not tracked. A request's scopes get one when the database has replicas.
  std::shared_ptr<Consistency> consistency;
  // The span the scope's statements are children of (a request's, a job's): each statement or
  // pipeline becomes a span under it when its trace is sampled.
  trace::Context trace;
  // Where the time of the scope's statements is added (its request's); null: nowhere.
  std::shared_ptr<core::StatementTime> statement_time;

  // The same request's deadline and actor, for another tenant (a request that reads the control
  // plane before it acts for an org, or the reverse).
  [[nodiscard]] Scope for_tenant(Tenant other) const {
    Scope scope = *this;
    scope.tenant = other;
    return scope;
  }
  [[nodiscard]] Scope control() const { return for_tenant(Tenant::control()); }
  // The same scope with `budget` from now: for work that outlives its request, such as the pages
  // of a stream, each of which has the request's time again.
  [[nodiscard]] Scope renewed(Clock::duration budget) const {
    Scope scope = *this;
    scope.deadline = Clock::now() + budget;
    return scope;
  }
  // The organization the scope acts for; throws std::logic_error when it acts for none (a bug in
  // the caller: services that act for one org are only given such scopes).
  [[nodiscard]] const Uuid& org() const;

  // Background work (purges, rewrites, flushes, sweeps): the system acts, within `budget`.
  [[nodiscard]] static Scope background(Tenant tenant, std::chrono::milliseconds budget);
};

}  // namespace liftoff::db
