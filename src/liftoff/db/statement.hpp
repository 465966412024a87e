#pragma once
// Every fixed SQL statement is a named constant: the name labels metrics and slow-query logs, and
// keys the per-connection prepared-statement cache. Names are unique per process; the SQL of a name
// never changes while the process runs. Define them as
// `inline constexpr Statement kX{Plane::control, "x", "SELECT ..."};`: the plane first, which the
// Database checks against the tenant each statement is issued for (see Plane in scope.hpp), and
// tests/unit/architecture/planes_test.cpp against the tables its SQL names.
#include <string_view>

#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::db {

struct Statement {
  Plane plane;
  std::string_view name;
  std::string_view sql;
  // false: SQL built per request (e.g. a compiled filter); `sql` need only live until the query
  // returns, and `name` only labels metrics. The connection prepares it under a generated name
  // keyed by its text (a bounded number of shapes per connection), so the same shape with other
  // values reuses its plan.
  bool fixed = true;
  // true: the statement's best plan is the same whatever its parameter values, so PostgreSQL may
  // plan it once per connection (plan_cache_mode = force_generic_plan, for this statement's
  // segment only; inside a transaction, until the transaction ends). Without it, PostgreSQL plans
  // at every execution a statement whose first plans, made for their values, looked cheaper than
  // the generic one, even when the plan comes out the same: for a list over a table with many
  // indexes that planning costs more than running it.
  bool generic_plan = false;
  // true: the statement may read far more rows than it returns (an exact count, a filter or an
  // order no index serves, a search, a tenant's holdings), so its time grows with the tenant's
  // data. Issued for one organization, it runs on a leased connection, never on the shared ones
  // that authentication uses, and waits for its organization's turn (ScanGate).
  bool scans = false;
};

// One statement with its parameters, for pipelines.
struct Query {
  const Statement* statement;
  Params params;
};

}  // namespace liftoff::db
