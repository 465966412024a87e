#include "liftoff/records/idempotency.hpp"

#include "liftoff/db/database.hpp"

namespace liftoff::records {
namespace asio = boost::asio;
using db::Params;
using db::Statement;

namespace {
// Claims the key (or reclaims one older than 24 h); no row back: the key is taken.
constexpr Statement kClaimIdempotencyKey{
    db::Plane::tenant, "records.claim_idempotency_key",
    "INSERT INTO idempotency_keys (org_id, key, scope, request_hash, status, body) "
    "VALUES ($1, $2, $3, $4, 0, '') ON CONFLICT (org_id, key) DO UPDATE SET "
    "scope = EXCLUDED.scope, request_hash = EXCLUDED.request_hash, status = 0, body = '', "
    "created_at = now() WHERE idempotency_keys.created_at < now() - interval '24 hours' "
    "RETURNING 1"};
constexpr Statement kStoreIdempotentResponse{
    db::Plane::tenant, "records.store_idempotent_response",
    "UPDATE idempotency_keys SET status = $3, body = $4 WHERE org_id = $1 AND key = $2"};
constexpr Statement kIdempotentResponse{
    db::Plane::tenant, "records.idempotent_response",
    "SELECT scope, request_hash, status, body FROM idempotency_keys "
    "WHERE org_id = $1 AND key = $2"};
constexpr Statement kExpireIdempotencyKeys{
    db::Plane::tenant, "records.expire_idempotency_keys",
    "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys "
    "WHERE created_at < now() - interval '24 hours' LIMIT $1)"};
// Keys are only for creates today; the scope column leaves room for others.
constexpr std::string_view kCreateScope = "POST records";
}  // namespace

asio::awaitable<Result<std::optional<StoredResponse>>> claim_idempotency_key(
    db::Database& database, db::Transaction& tx, const db::Scope& scope,
    const Idempotency& idempotency) {
  const auto& org_id = scope.org();
  Params claim(org_id, idempotency.key, kCreateScope, db::Bytes{idempotency.request_hash});
  auto claimed = co_await tx.query(kClaimIdempotencyKey, claim);
  if (!claimed) co_return claimed.error();
  if (!claimed->empty()) co_return std::optional<StoredResponse>{};
  // Used within 24 h (its transaction committed: the insert waited for it): replay.
  auto rolled_back = co_await tx.rollback();
  if (!rolled_back) co_return rolled_back.error();
  Params lookup(org_id, idempotency.key);
  auto rows = co_await database.query(db::Intent::write, scope, kIdempotentResponse, lookup);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return make_error(Errc::retryable, "the idempotency key is in flux");
  auto row = rows->front();
  if (row.get<std::string>(0) != kCreateScope ||
      row.get<db::Bytes>(1).data != idempotency.request_hash) {
    co_return Error{Errc::validation_failed,
                    "the Idempotency-Key was used with a different request",
                    {{"Idempotency-Key", "was used with a different request in the last 24 h"}}};
  }
  co_return StoredResponse{row.get<std::int32_t>(2), row.get<std::string>(3), true};
}

asio::awaitable<Result<void>> store_idempotent_response(db::Transaction& tx, const db::Uuid& org_id,
                                                        const Idempotency& idempotency,
                                                        const StoredResponse& response) {
  Params store(org_id, idempotency.key, static_cast<std::int32_t>(response.status), response.body);
  co_return co_await tx.execute(kStoreIdempotentResponse, store);
}

asio::awaitable<Result<std::int64_t>> expire_idempotency_keys(db::Database& database,
                                                              const db::Scope& scope,
                                                              std::int64_t limit) {
  Params params(limit);
  auto rows = co_await database.query(db::Intent::write, scope, kExpireIdempotencyKeys, params);
  if (!rows) co_return rows.error();
  co_return rows->affected();
}

}  // namespace liftoff::records
