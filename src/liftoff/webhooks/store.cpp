#include "liftoff/webhooks/store.hpp"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "liftoff/audit/audit.hpp"
#include "liftoff/core/id.hpp"
#include "liftoff/db/database.hpp"

namespace liftoff::webhooks {
namespace asio = boost::asio;
namespace json = boost::json;
using db::Intent;
using db::Params;
using db::Statement;

namespace {

#define LIFTOFF_ENDPOINT_COLUMNS                                                           \
  "e.id, e.org_id, e.url, e.description, array_to_string(e.event_types, ','), e.enabled, " \
  "e.disabled_reason, e.after_seq, e.failures, e.next_attempt_at, e.last_error, "          \
  "CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret_expires_at END, " \
  "e.created_at, e.updated_at"
constexpr int kEndpointColumns = 14;
// The sealed secrets after the endpoint's columns; the previous one only while it still signs.
#define LIFTOFF_SECRET_COLUMNS \
  "e.secret, CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END"
#define LIFTOFF_DELIVERY_COLUMNS                                                             \
  "d.id, d.endpoint_id, d.event_id, d.seq, d.event_type, d.status, d.error, d.duration_ms, " \
  "d.response, d.created_at"

constexpr Statement kInsert{
    db::Plane::tenant, "webhooks.insert",
    "INSERT INTO webhook_endpoints AS e (org_id, id, url, description, event_types, secret, "
    "after_seq) VALUES ($1, $2, $3, $4, string_to_array($5, ','), $6, "
    "COALESCE(" LIFTOFF_AUDIT_HEAD_OF_ORG_1 ", 0)) RETURNING " LIFTOFF_ENDPOINT_COLUMNS};
constexpr Statement kCount{db::Plane::tenant, "webhooks.count",
                           "SELECT count(*) FROM webhook_endpoints WHERE org_id = $1"};
constexpr Statement kList{
    db::Plane::tenant, "webhooks.list",
    "SELECT " LIFTOFF_ENDPOINT_COLUMNS
    " FROM webhook_endpoints e WHERE e.org_id = $1 AND ($2::uuid IS NULL OR e.id > $2) "
    "ORDER BY e.id LIMIT $3"};
constexpr Statement kGet{db::Plane::tenant, "webhooks.get",
                         "SELECT " LIFTOFF_ENDPOINT_COLUMNS
                         " FROM webhook_endpoints e WHERE e.org_id = $1 AND e.id = $2"};
constexpr Statement kWithSecrets{db::Plane::tenant, "webhooks.with_secrets",
                                 "SELECT " LIFTOFF_ENDPOINT_COLUMNS ", " LIFTOFF_SECRET_COLUMNS
                                 " FROM webhook_endpoints e WHERE e.org_id = $1 AND e.id = $2"};
// Enabling a disabled endpoint, or pointing it at another URL, starts its retries afresh; it
// resumes at its cursor, so what it missed while disabled is delivered.
constexpr Statement kUpdate{
    db::Plane::tenant, "webhooks.update",
    "WITH old AS (SELECT " LIFTOFF_ENDPOINT_COLUMNS
    " FROM webhook_endpoints e WHERE e.org_id = $1 AND e.id = $2 FOR UPDATE), "
    "fresh AS (SELECT e.id, (COALESCE($6, false) AND NOT e.enabled) OR "
    "($3::text IS NOT NULL AND $3 <> e.url) AS restart FROM webhook_endpoints e, old "
    "WHERE e.id = old.id) "
    "UPDATE webhook_endpoints e SET url = COALESCE($3, e.url), "
    "description = COALESCE($4, e.description), "
    "event_types = COALESCE(string_to_array($5, ','), e.event_types), "
    "enabled = COALESCE($6, e.enabled), "
    "disabled_reason = CASE WHEN COALESCE($6, e.enabled) THEN NULL WHEN e.enabled "
    "THEN 'disabled by an admin' ELSE e.disabled_reason END, "
    "failures = CASE WHEN fresh.restart THEN 0 ELSE e.failures END, "
    "next_attempt_at = CASE WHEN fresh.restart THEN now() ELSE e.next_attempt_at END, "
    "last_error = CASE WHEN fresh.restart THEN NULL ELSE e.last_error END, updated_at = now() "
    "FROM old, fresh WHERE e.id = old.id AND fresh.id = e.id RETURNING "
    "old.*, " LIFTOFF_ENDPOINT_COLUMNS};
constexpr Statement kRemove{db::Plane::tenant, "webhooks.remove",
                            "DELETE FROM webhook_endpoints e WHERE e.org_id = $1 AND e.id = $2 "
                            "RETURNING " LIFTOFF_ENDPOINT_COLUMNS};
// One of a purged org's endpoints, with its deliveries (ON DELETE CASCADE) and sealed secrets.
constexpr Statement kPurgeEndpoint{
    db::Plane::tenant, "webhooks.purge_endpoint",
    "DELETE FROM webhook_endpoints WHERE id = (SELECT id FROM webhook_endpoints WHERE org_id = $1 "
    "LIMIT 1) RETURNING id"};
constexpr Statement kRotate{
    db::Plane::tenant, "webhooks.rotate",
    "UPDATE webhook_endpoints e SET previous_secret = e.secret, previous_secret_expires_at = "
    "now() + $4 * interval '1 millisecond', secret = $3, updated_at = now() "
    "WHERE e.org_id = $1 AND e.id = $2 RETURNING " LIFTOFF_ENDPOINT_COLUMNS};
// Endpoints with events after their cursor: joined with every org's audit head, whose row the
// org's writers lock (a plain read does not wait for them).
constexpr Statement kClaimDue{
    db::Plane::tenant, "webhooks.claim_due",
    "WITH due AS MATERIALIZED (SELECT e.id FROM webhook_endpoints e JOIN " LIFTOFF_AUDIT_HEADS
    " h ON h.org_id = e.org_id WHERE e.enabled AND e.next_attempt_at <= now() AND "
    "(e.claimed_until IS NULL OR e.claimed_until < now()) AND e.after_seq < h.last_seq "
    "AND e.org_id <> ALL(string_to_array($3, ',')::uuid[]) "
    "ORDER BY e.next_attempt_at LIMIT $1 FOR UPDATE OF e SKIP LOCKED) "
    "UPDATE webhook_endpoints e SET claim = gen_random_uuid(), claimed_until = now() + "
    "$2 * interval '1 millisecond' FROM due WHERE e.id = due.id "
    "RETURNING e.id, e.org_id, e.claim"};
constexpr Statement kClaimed{
    db::Plane::tenant, "webhooks.claimed",
    "SELECT " LIFTOFF_ENDPOINT_COLUMNS ", " LIFTOFF_SECRET_COLUMNS
    " FROM webhook_endpoints e WHERE e.id = $1 AND e.claim = $2 AND e.org_id = $3 AND e.enabled"};
// $1 endpoint, $2 claim, $3.. the attempt.
#define LIFTOFF_LOG_ATTEMPT                                                                   \
  "logged AS (INSERT INTO webhook_deliveries (id, endpoint_id, org_id, event_id, seq, "       \
  "event_type, status, error, duration_ms, response) SELECT $3, e.id, e.org_id, $4, $5, $6, " \
  "$7, $8, $9, $10 FROM webhook_endpoints e WHERE e.id = $1 AND e.claim = $2) "
// Delivered events, a batch at a time ($3: [{id, event_id, seq, event_type, status, error,
// duration_ms, response}, ...], $4: the last seq). It commits without waiting for its WAL flush
// (set_config(..., true) lasts until the statement's implicit transaction ends): what a crash of
// PostgreSQL can lose is a cursor move, and the events after the cursor are sent again, which
// at-least-once delivery allows (receivers deduplicate on webhook-id).
constexpr Statement kDelivered{
    db::Plane::tenant, "webhooks.delivered",
    "WITH logged AS (INSERT INTO webhook_deliveries (id, endpoint_id, org_id, event_id, seq, "
    "event_type, status, error, duration_ms, response) SELECT a.id, e.id, e.org_id, a.event_id, "
    "a.seq, a.event_type, a.status, a.error, a.duration_ms, a.response FROM webhook_endpoints e, "
    "jsonb_to_recordset($3) AS a(id uuid, event_id uuid, seq bigint, event_type text, "
    "status int, error text, duration_ms int, response text) WHERE e.id = $1 AND e.claim = $2) "
    "UPDATE webhook_endpoints SET after_seq = GREATEST(after_seq, $4), failures = 0, "
    "last_error = NULL FROM (SELECT set_config('synchronous_commit', 'off', true)) no_flush "
    "WHERE id = $1 AND claim = $2 RETURNING 1"};
constexpr Statement kFailed{
    db::Plane::tenant, "webhooks.failed",
    "WITH " LIFTOFF_LOG_ATTEMPT
    "UPDATE webhook_endpoints SET after_seq = GREATEST(after_seq, $13), failures = failures + 1, "
    "last_error = $8, "
    "next_attempt_at = now() + $11 * interval '1 millisecond', enabled = NOT $12, "
    "disabled_reason = CASE WHEN $12 THEN 'disabled after ' || (failures + 1) || "
    "' failed attempts in a row; the last: ' || $8 END, claim = NULL, claimed_until = NULL "
    "WHERE id = $1 AND claim = $2 RETURNING 1"};
#undef LIFTOFF_LOG_ATTEMPT
constexpr Statement kRelease{
    db::Plane::tenant, "webhooks.release",
    "UPDATE webhook_endpoints SET after_seq = GREATEST(after_seq, $3), claim = NULL, "
    "claimed_until = NULL WHERE id = $1 AND claim = $2"};
constexpr Statement kLog{
    db::Plane::tenant, "webhooks.log",
    "INSERT INTO webhook_deliveries (id, endpoint_id, org_id, event_id, seq, event_type, status, "
    "error, duration_ms, response) SELECT $2, e.id, e.org_id, $3, $4, $5, $6, $7, $8, $9 "
    "FROM webhook_endpoints e WHERE e.id = $1"};
constexpr Statement kDeliveries{
    db::Plane::tenant, "webhooks.deliveries",
    "SELECT " LIFTOFF_DELIVERY_COLUMNS
    " FROM webhook_deliveries d WHERE d.endpoint_id = $1 AND d.org_id = $2 AND "
    "($3::uuid IS NULL OR d.id < $3) ORDER BY d.id DESC LIMIT $4"};
constexpr Statement kDelivery{
    db::Plane::tenant, "webhooks.delivery",
    "SELECT " LIFTOFF_DELIVERY_COLUMNS
    " FROM webhook_deliveries d WHERE d.endpoint_id = $1 AND d.org_id = $2 AND d.id = $3"};
constexpr Statement kPrune{
    db::Plane::tenant, "webhooks.prune",
    "WITH doomed AS (SELECT id FROM webhook_deliveries WHERE created_at < now() - "
    "$1 * interval '1 millisecond' ORDER BY created_at LIMIT $2) "
    "DELETE FROM webhook_deliveries d USING doomed WHERE d.id = doomed.id"};
#undef LIFTOFF_ENDPOINT_COLUMNS
#undef LIFTOFF_SECRET_COLUMNS
#undef LIFTOFF_DELIVERY_COLUMNS

std::vector<std::string> split_types(const std::string& text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  for (std::size_t start = 0;;) {
    auto comma = text.find(',', start);
    out.push_back(text.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

std::string joined(const std::vector<std::string>& types) {
  std::string out;
  for (const auto& type : types) out += (out.empty() ? "" : ",") + type;
  return out;
}

Endpoint endpoint_at(const db::Row& row, int first) {
  Endpoint e;
  e.id = row.get<db::Uuid>(first);
  e.org_id = row.get<db::Uuid>(first + 1);
  e.url = row.get<std::string>(first + 2);
  e.description = row.get<std::string>(first + 3);
  e.event_types = split_types(row.get<std::string>(first + 4));
  e.enabled = row.get<bool>(first + 5);
  e.disabled_reason = row.get<std::optional<std::string>>(first + 6);
  e.after_seq = row.get<std::int64_t>(first + 7);
  e.failures = row.get<std::int32_t>(first + 8);
  e.next_attempt_at = row.get<db::Timestamp>(first + 9);
  e.last_error = row.get<std::optional<std::string>>(first + 10);
  e.previous_secret_expires_at = row.get<std::optional<db::Timestamp>>(first + 11);
  e.created_at = row.get<db::Timestamp>(first + 12);
  e.updated_at = row.get<db::Timestamp>(first + 13);
  return e;
}

Endpoint endpoint_of(const db::Row& row) {
  return endpoint_at(row, 0);
}

Claimed claimed_of(const db::Row& row) {
  return {endpoint_at(row, 0), row.get<db::Bytes>(kEndpointColumns).data,
          [&]() -> std::optional<std::string> {
            auto previous = row.get<std::optional<db::Bytes>>(kEndpointColumns + 1);
            if (!previous) return std::nullopt;
            return previous->data;
          }()};
}

Delivery delivery_of(const db::Row& row) {
  return {
      row.get<db::Uuid>(0),
      {row.get<db::Uuid>(1), row.get<db::Uuid>(2), row.get<std::int64_t>(3),
       row.get<std::string>(4), row.get<std::optional<std::int32_t>>(5),
       row.get<std::optional<std::string>>(6), std::chrono::milliseconds(row.get<std::int32_t>(7)),
       row.get<std::optional<std::string>>(8)},
      row.get<db::Timestamp>(9)};
}

std::optional<std::string> optional_joined(const std::optional<std::vector<std::string>>& types) {
  if (!types) return std::nullopt;
  return joined(*types);
}

// The attempt's parameters from $3 on (see LIFTOFF_LOG_ATTEMPT).
template <typename... Rest>
Params attempt_params(const db::Uuid& token, const Attempt& a, Rest&&... rest) {
  return Params(a.endpoint_id, token, db::Uuid{core::new_uuid_v7()}, a.event_id, a.seq,
                a.event_type, a.status, a.error, static_cast<std::int32_t>(a.duration.count()),
                a.response, std::forward<Rest>(rest)...);
}

template <typename T>
std::optional<T> first(const db::Rows& rows, T (*decode)(const db::Row&)) {
  if (rows.empty()) return std::nullopt;
  return decode(rows.front());
}

}  // namespace

asio::awaitable<Result<Endpoint>> WebhookStore::insert(db::Transaction& tx, const db::Uuid& org,
                                                       const Endpoint& endpoint,
                                                       const std::string& sealed_secret) {
  Params params(org, endpoint.id, endpoint.url, endpoint.description, joined(endpoint.event_types),
                db::Bytes{sealed_secret});
  auto rows = co_await tx.query(kInsert, params);
  if (!rows) co_return rows.error();
  co_return endpoint_of(rows->front());
}

asio::awaitable<Result<std::vector<Endpoint>>> WebhookStore::list(const db::Scope& scope,
                                                                  std::optional<db::Uuid> after,
                                                                  std::int32_t limit) {
  Params params(scope.org(), after, limit);
  auto rows = co_await database_.query(Intent::read_your_writes, scope, kList, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, endpoint_of);
}

asio::awaitable<Result<std::int64_t>> WebhookStore::count(const db::Scope& scope) {
  Params params(scope.org());
  auto rows = co_await database_.query(Intent::latest, scope, kCount, params);
  if (!rows) co_return rows.error();
  co_return rows->front().get<std::int64_t>(0);
}

asio::awaitable<Result<std::int64_t>> WebhookStore::purge_org(const db::Scope& scope) {
  Params params(scope.org());
  std::int64_t purged = 0;
  for (;;) {
    auto rows = co_await database_.query(Intent::write, scope, kPurgeEndpoint, params);
    if (!rows) co_return rows.error();
    if (rows->empty()) co_return purged;
    ++purged;
  }
}

asio::awaitable<Result<std::optional<Endpoint>>> WebhookStore::get(const db::Scope& scope,
                                                                   const db::Uuid& id) {
  Params params(scope.org(), id);
  auto rows = co_await database_.query(Intent::read_your_writes, scope, kGet, params);
  if (!rows) co_return rows.error();
  co_return first(*rows, endpoint_of);
}

asio::awaitable<Result<std::optional<WebhookStore::Changed>>> WebhookStore::update(
    db::Transaction& tx, const db::Uuid& org, const db::Uuid& id, const EndpointPatch& patch) {
  Params params(org, id, patch.url, patch.description, optional_joined(patch.event_types),
                patch.enabled);
  auto rows = co_await tx.query(kUpdate, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::nullopt;
  co_return Changed{endpoint_at(rows->front(), 0), endpoint_at(rows->front(), kEndpointColumns)};
}

asio::awaitable<Result<std::optional<Endpoint>>> WebhookStore::remove(db::Transaction& tx,
                                                                      const db::Uuid& org,
                                                                      const db::Uuid& id) {
  Params params(org, id);
  auto rows = co_await tx.query(kRemove, params);
  if (!rows) co_return rows.error();
  co_return first(*rows, endpoint_of);
}

asio::awaitable<Result<std::optional<Endpoint>>> WebhookStore::rotate(
    db::Transaction& tx, const db::Uuid& org, const db::Uuid& id, const std::string& sealed,
    std::chrono::milliseconds overlap) {
  Params params(org, id, db::Bytes{sealed}, static_cast<std::int64_t>(overlap.count()));
  auto rows = co_await tx.query(kRotate, params);
  if (!rows) co_return rows.error();
  co_return first(*rows, endpoint_of);
}

asio::awaitable<Result<std::vector<WebhookStore::Claim>>> WebhookStore::claim_due(
    db::Transaction& tx, std::int32_t limit, std::chrono::milliseconds hold,
    std::span<const db::Uuid> held) {
  Params params(limit, static_cast<std::int64_t>(hold.count()), db::uuid_list(held));
  auto rows = co_await tx.query(kClaimDue, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, [](const db::Row& row) {
    return Claim{row.get<db::Uuid>(0), row.get<db::Uuid>(1), row.get<db::Uuid>(2)};
  });
}

asio::awaitable<Result<std::optional<Claimed>>> WebhookStore::claimed(const db::Scope& scope,
                                                                      const db::Uuid& endpoint,
                                                                      const db::Uuid& token) {
  Params params(endpoint, token, scope.org());
  auto rows = co_await database_.query(Intent::latest, scope, kClaimed, params);
  if (!rows) co_return rows.error();
  co_return first(*rows, claimed_of);
}

asio::awaitable<Result<bool>> WebhookStore::delivered(const db::Scope& scope, const db::Uuid& token,
                                                      std::span<const Attempt> attempts) {
  if (attempts.empty()) co_return true;
  json::array rows_json;
  std::int64_t last = 0;
  for (const auto& a : attempts) {
    rows_json.push_back(
        json::object{{"id", db::Uuid{core::new_uuid_v7()}.to_string()},
                     {"event_id", a.event_id.to_string()},
                     {"seq", a.seq},
                     {"event_type", a.event_type},
                     {"status", a.status ? json::value(*a.status) : json::value(nullptr)},
                     {"error", a.error ? json::value(*a.error) : json::value(nullptr)},
                     {"duration_ms", a.duration.count()},
                     {"response", a.response ? json::value(*a.response) : json::value(nullptr)}});
    last = std::max(last, a.seq);
  }
  Params params(attempts.front().endpoint_id, token, db::Json{json::serialize(rows_json)}, last);
  auto rows = co_await database_.query(Intent::write, scope, kDelivered, params);
  if (!rows) co_return rows.error();
  co_return !rows->empty();
}

asio::awaitable<Result<bool>> WebhookStore::failed(const db::Scope& scope, const db::Uuid& token,
                                                   const Attempt& attempt,
                                                   std::chrono::milliseconds retry_in, bool disable,
                                                   std::int64_t after_seq) {
  auto params = attempt_params(token, attempt, static_cast<std::int64_t>(retry_in.count()), disable,
                               after_seq);
  auto rows = co_await database_.query(Intent::write, scope, kFailed, params);
  if (!rows) co_return rows.error();
  co_return !rows->empty();
}

asio::awaitable<Result<void>> WebhookStore::release(const db::Scope& scope,
                                                    const db::Uuid& endpoint, const db::Uuid& token,
                                                    std::int64_t after_seq) {
  Params params(endpoint, token, after_seq);
  auto rows = co_await database_.query(Intent::write, scope, kRelease, params);
  if (!rows) co_return rows.error();
  co_return Result<void>{};
}

asio::awaitable<Result<void>> WebhookStore::log(const db::Scope& scope, const Attempt& a) {
  Params params(a.endpoint_id, db::Uuid{core::new_uuid_v7()}, a.event_id, a.seq, a.event_type,
                a.status, a.error, static_cast<std::int32_t>(a.duration.count()), a.response);
  auto rows = co_await database_.query(Intent::write, scope, kLog, params);
  if (!rows) co_return rows.error();
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<Delivery>>> WebhookStore::deliveries(
    const db::Scope& scope, const db::Uuid& endpoint, std::optional<db::Uuid> before,
    std::int32_t limit) {
  Params params(endpoint, scope.org(), before, limit);
  auto rows = co_await database_.query(Intent::read_your_writes, scope, kDeliveries, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, delivery_of);
}

asio::awaitable<Result<std::optional<Delivery>>> WebhookStore::delivery(const db::Scope& scope,
                                                                        const db::Uuid& endpoint,
                                                                        const db::Uuid& id) {
  Params params(endpoint, scope.org(), id);
  auto rows = co_await database_.query(Intent::read_your_writes, scope, kDelivery, params);
  if (!rows) co_return rows.error();
  co_return first(*rows, delivery_of);
}

asio::awaitable<Result<std::optional<Claimed>>> WebhookStore::with_secrets(
    const db::Scope& scope, const db::Uuid& endpoint) {
  Params params(scope.org(), endpoint);
  auto rows = co_await database_.query(Intent::latest, scope, kWithSecrets, params);
  if (!rows) co_return rows.error();
  co_return first(*rows, claimed_of);
}

asio::awaitable<Result<std::int64_t>> WebhookStore::prune(const db::Scope& scope,
                                                          std::chrono::milliseconds retention,
                                                          std::int32_t limit) {
  Params params(static_cast<std::int64_t>(retention.count()), limit);
  auto rows = co_await database_.query(Intent::write, scope, kPrune, params);
  if (!rows) co_return rows.error();
  co_return rows->affected();
}

}  // namespace liftoff::webhooks
