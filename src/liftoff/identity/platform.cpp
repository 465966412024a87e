#include "liftoff/identity/platform.hpp"

#include "liftoff/core/metrics.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/identity/credentials.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
using db::Intent;
using db::Params;
using db::Statement;

namespace {
constexpr Statement kIsOperator{db::Plane::control, "platform.is_operator",
                                "SELECT EXISTS (SELECT 1 FROM platform_operators "
                                "WHERE user_id = $1)"};
// The user, and whether they were an operator before (xmax = 0: the row is this statement's).
constexpr Statement kGrant{
    db::Plane::control, "platform.grant",
    "WITH u AS (SELECT id FROM users WHERE email = $1), "
    "g AS (INSERT INTO platform_operators (user_id) SELECT id FROM u "
    "ON CONFLICT (user_id) DO UPDATE SET granted_at = platform_operators.granted_at "
    "RETURNING user_id, granted_at) "
    "SELECT us.id, us.email, us.name, us.created_at, us.email_verified_at IS NOT NULL, "
    "g.granted_at FROM g JOIN users us ON us.id = g.user_id"};
constexpr Statement kRevoke{
    db::Plane::control, "platform.revoke",
    "WITH u AS (SELECT id FROM users WHERE email = $1), "
    "r AS (DELETE FROM platform_operators p USING u WHERE p.user_id = u.id RETURNING p.user_id) "
    "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM r)"};
constexpr Statement kOperators{
    db::Plane::control, "platform.operators",
    "SELECT u.id, u.email, u.name, u.created_at, u.email_verified_at IS NOT NULL, p.granted_at "
    "FROM platform_operators p JOIN users u ON u.id = p.user_id ORDER BY p.granted_at, u.email"};

// Searches by the trigram indexes of migration 0026: `$1` is a LIKE pattern, `$2` the limit.
#define LIFTOFF_ORG_SUMMARY                                                      \
  "SELECT o.id, o.name, o.plan, o.shard, o.created_at, o.deleted_at, "           \
  "(SELECT count(*) FROM memberships m WHERE m.org_id = o.id), o.suspended_at, " \
  "COALESCE(o.suspended_reason, '') FROM orgs o "
constexpr Statement kOrgsLike{db::Plane::control, "platform.orgs_like",
                              LIFTOFF_ORG_SUMMARY
                              "WHERE lower(o.name) LIKE $1 ORDER BY o.created_at DESC, o.id "
                              "LIMIT $2"};
constexpr Statement kOrgById{db::Plane::control, "platform.org_by_id",
                             LIFTOFF_ORG_SUMMARY "WHERE o.id = $1"};
#define LIFTOFF_USER_SUMMARY                                                      \
  "SELECT u.id, u.email, u.name, u.created_at, u.email_verified_at IS NOT NULL, " \
  "(SELECT count(*) FROM memberships m WHERE m.user_id = u.id), "                 \
  "(SELECT max(s.last_seen_at) FROM sessions s WHERE s.user_id = u.id) FROM users u "
constexpr Statement kUsersLike{db::Plane::control, "platform.users_like",
                               LIFTOFF_USER_SUMMARY
                               "WHERE lower(u.email || ' ' || u.name) LIKE $1 "
                               "ORDER BY u.created_at DESC, u.id LIMIT $2"};
constexpr Statement kUserById{db::Plane::control, "platform.user_by_id",
                              LIFTOFF_USER_SUMMARY "WHERE u.id = $1"};
#undef LIFTOFF_ORG_SUMMARY
#undef LIFTOFF_USER_SUMMARY

// Signups by day (users_created_at_idx), the live orgs by plan, and the users active by their
// sessions: a scan of sessions, which the console asks for on demand, never per request.
constexpr Statement kTotals{
    db::Plane::control, "platform.totals",
    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orgs WHERE deleted_at IS NULL), "
    "count(DISTINCT user_id) FILTER (WHERE last_seen_at > now() - interval '1 day'), "
    "count(DISTINCT user_id) FILTER (WHERE last_seen_at > now() - interval '7 days'), "
    "count(DISTINCT user_id) "
    "FROM sessions WHERE last_seen_at > now() - interval '30 days'"};
// Days are UTC days, counted back in 24-hour steps from today's midnight (absolute time, whatever
// the session's time zone).
constexpr Statement kSignups{
    db::Plane::control, "platform.signups",
    "SELECT d.day, count(u.id) FROM (SELECT date_trunc('day', now(), 'UTC') - "
    "(29 - n) * interval '24 hours' FROM generate_series(0, 29) AS n) AS d(day) "
    "LEFT JOIN users u ON u.created_at >= d.day AND u.created_at < d.day + interval '24 hours' "
    "GROUP BY d.day ORDER BY d.day"};
// The orgs created in each of the last 12 UTC months (this one included), by the plan each is on
// now, and how many of them were deleted: a month without any has one row, its plan null. Reads
// the orgs created in that year.
constexpr Statement kCohorts{
    db::Plane::control, "platform.cohorts",
    "SELECT m.month, o.plan, count(o.id) FILTER (WHERE o.deleted_at IS NULL), "
    "count(o.id) FILTER (WHERE o.deleted_at IS NOT NULL) "
    "FROM generate_series(date_trunc('month', now(), 'UTC') - interval '11 months', "
    "date_trunc('month', now(), 'UTC'), interval '1 month') AS m(month) "
    "LEFT JOIN orgs o ON o.created_at >= m.month AND o.created_at < m.month + interval '1 month' "
    "GROUP BY m.month, o.plan ORDER BY m.month, o.plan"};
// The live suspended orgs (orgs_suspended_idx), the longest suspended first.
constexpr Statement kSuspended{db::Plane::control, "platform.suspended_orgs",
                               "SELECT id FROM orgs WHERE suspended_at IS NOT NULL AND "
                               "deleted_at IS NULL ORDER BY suspended_at LIMIT $1"};
constexpr Statement kPlans{db::Plane::control, "platform.plans",
                           "SELECT plan, count(*) FROM orgs WHERE deleted_at IS NULL "
                           "GROUP BY plan ORDER BY count(*) DESC, plan"};

User user_of(const db::Row& row) {
  return User{row.get<db::Uuid>(0), row.get<std::string>(1), row.get<std::string>(2),
              row.get<db::Timestamp>(3), row.get<bool>(4)};
}

PlatformOperator operator_of(const db::Row& row) {
  return PlatformOperator{user_of(row), row.get<db::Timestamp>(5)};
}

OrgSummary org_of(const db::Row& row) {
  OrgSummary org{row.get<db::Uuid>(0),
                 row.get<std::string>(1),
                 row.get<std::string>(2),
                 row.get<std::string>(3),
                 row.get<std::int64_t>(6),
                 row.get<db::Timestamp>(4),
                 std::nullopt};
  if (!row.is_null(5)) org.deleted_at = row.get<db::Timestamp>(5);
  if (!row.is_null(7)) org.suspended_at = row.get<db::Timestamp>(7);
  org.suspended_reason = row.get<std::string>(8);
  return org;
}

UserSummary user_summary_of(const db::Row& row) {
  UserSummary summary{user_of(row), row.get<std::int64_t>(5), std::nullopt};
  if (!row.is_null(6)) summary.last_seen_at = row.get<db::Timestamp>(6);
  return summary;
}

// A LIKE pattern matching `text` anywhere, case-insensitive (compared with a lower()ed column):
// its own %, _ and \ stand for themselves.
std::string contains_pattern(std::string_view text) {
  std::string pattern = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') pattern += '\\';
    pattern += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  pattern += '%';
  return pattern;
}

// Runs the by-id statement when `text` is an id, else the pattern search; the rows decoded.
template <class Decode>
asio::awaitable<Result<std::vector<std::invoke_result_t<Decode&, db::Row>>>> search(
    db::Database& database, const db::Scope& scope, std::string_view text, int limit,
    const Statement& by_id, const Statement& like, Decode decode) {
  Result<db::Rows> rows = make_error(Errc::internal, "not run");
  if (auto id = db::Uuid::parse(text)) {
    Params params(*id);
    rows = co_await database.query(Intent::read, scope, by_id, params);
  } else {
    Params params(contains_pattern(text), static_cast<std::int32_t>(limit));
    rows = co_await database.query(Intent::read, scope, like, params);
  }
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, decode);
}
}  // namespace

asio::awaitable<Result<bool>> PlatformService::is_operator(const db::Scope& scope,
                                                           const db::Uuid& user_id) {
  Params params(user_id);
  auto rows = co_await database_.query(Intent::latest, scope, kIsOperator, params);
  if (!rows) co_return rows.error();
  co_return rows->front().get<bool>(0);
}

asio::awaitable<Result<PlatformOperator>> PlatformService::grant(const db::Scope& scope,
                                                                 std::string_view email) {
  auto normalized = normalize_email(email);
  if (!normalized) co_return make_error(Errc::validation_failed, "not an email address");
  Params params(*normalized);
  auto rows = co_await database_.query(Intent::write, scope, kGrant, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return make_error(Errc::not_found, "no user has the email " + *normalized);
  co_return operator_of(rows->front());
}

asio::awaitable<Result<bool>> PlatformService::revoke(const db::Scope& scope,
                                                      std::string_view email) {
  auto normalized = normalize_email(email);
  if (!normalized) co_return make_error(Errc::validation_failed, "not an email address");
  Params params(*normalized);
  auto rows = co_await database_.query(Intent::write, scope, kRevoke, params);
  if (!rows) co_return rows.error();
  if (rows->front().get<std::int64_t>(0) == 0)
    co_return make_error(Errc::not_found, "no user has the email " + *normalized);
  co_return rows->front().get<std::int64_t>(1) > 0;
}

asio::awaitable<Result<std::vector<PlatformOperator>>> PlatformService::operators(
    const db::Scope& scope) {
  auto rows = co_await database_.query(Intent::latest, scope, kOperators, Params::none());
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, operator_of);
}

asio::awaitable<Result<std::vector<OrgSummary>>> PlatformService::find_orgs(const db::Scope& scope,
                                                                            std::string_view text,
                                                                            int limit) {
  co_return co_await search(database_, scope, text, limit, kOrgById, kOrgsLike, org_of);
}

asio::awaitable<Result<std::vector<UserSummary>>> PlatformService::find_users(
    const db::Scope& scope, std::string_view text, int limit) {
  co_return co_await search(database_, scope, text, limit, kUserById, kUsersLike, user_summary_of);
}

asio::awaitable<Result<BusinessFigures>> PlatformService::business(const db::Scope& scope) {
  auto totals_rows = co_await database_.query(Intent::read, scope, kTotals, Params::none());
  if (!totals_rows) co_return totals_rows.error();
  auto signups = co_await database_.query(Intent::read, scope, kSignups, Params::none());
  if (!signups) co_return signups.error();
  auto plans = co_await database_.query(Intent::read, scope, kPlans, Params::none());
  if (!plans) co_return plans.error();
  auto cohorts = co_await database_.query(Intent::read, scope, kCohorts, Params::none());
  if (!cohorts) co_return cohorts.error();
  BusinessFigures figures;
  const auto totals = totals_rows->front();
  figures.users = totals.get<std::int64_t>(0);
  figures.orgs = totals.get<std::int64_t>(1);
  figures.active_1d = totals.get<std::int64_t>(2);
  figures.active_7d = totals.get<std::int64_t>(3);
  figures.active_30d = totals.get<std::int64_t>(4);
  figures.signups = db::decode_all(*signups, [](const db::Row& row) {
    return BusinessFigures::Day{row.get<db::Timestamp>(0), row.get<std::int64_t>(1)};
  });
  figures.plans = db::decode_all(*plans, [](const db::Row& row) {
    return BusinessFigures::PlanCount{row.get<std::string>(0), row.get<std::int64_t>(1)};
  });
  for (int r = 0; r < cohorts->size(); ++r) {
    const auto row = (*cohorts)[r];
    const auto month = row.get<db::Timestamp>(0);
    if (figures.cohorts.empty() || figures.cohorts.back().month != month)
      figures.cohorts.push_back({month, 0, 0, {}});
    auto& cohort = figures.cohorts.back();
    if (row.is_null(1)) continue;
    const auto live = row.get<std::int64_t>(2);
    const auto deleted = row.get<std::int64_t>(3);
    cohort.orgs += live + deleted;
    cohort.deleted += deleted;
    if (live > 0) cohort.plans.push_back({row.get<std::string>(1), live});
  }
  co_return figures;
}

SuspendedOrgs::SuspendedOrgs(db::Database& database, std::chrono::milliseconds statement_timeout,
                             core::Registry& metrics)
    : database_(database),
      timeout_(statement_timeout),
      count_(metrics.gauge("orgs_suspended",
                           "Organizations suspended now, whose jobs and webhook deliveries wait "
                           "(as this process last read them)")) {}

asio::awaitable<Result<void>> SuspendedOrgs::refresh() {
  auto scope = db::Scope::background(db::Tenant::control(), timeout_);
  Params limit(static_cast<std::int64_t>(kMaxHeld));
  auto rows = co_await database_.query(Intent::latest, scope, kSuspended, limit);
  if (!rows) co_return rows.error();
  auto ids = db::decode_all(*rows, [](const db::Row& row) { return row.get<db::Uuid>(0); });
  count_.set(static_cast<std::int64_t>(ids.size()));
  std::lock_guard lock(mutex_);
  ids_ = std::move(ids);
  co_return Result<void>{};
}

std::vector<db::Uuid> SuspendedOrgs::ids() const {
  std::lock_guard lock(mutex_);
  return ids_;
}

}  // namespace liftoff::identity
