#pragma once
// Idempotency-Keys of record creates: a client that retries a create with the same key within
// 24 h gets the first answer again, and a create runs at most once per key. The key is claimed in
// the create's own transaction, so a key whose create rolled back is free again, and a retry racing
// the first waits for its commit.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"

namespace liftoff::db {
class Database;
class Transaction;
}  // namespace liftoff::db

namespace liftoff::records {

struct Idempotency {
  std::string key;           // the client's Idempotency-Key
  std::string request_hash;  // SHA-256 of method, path and body
};

// A response the service decided on, as it is (or was) sent: for Idempotency-Key replays.
struct StoredResponse {
  int status = 0;
  std::string body;  // JSON
  bool replayed = false;
};

// Claims the key for the scope's org in `tx` (a key older than 24 h is claimed afresh). When it was
// used within 24 h, `tx` is rolled back and the answer is that use's response (replayed), or a 422
// naming Idempotency-Key when it was used with another request.
[[nodiscard]] boost::asio::awaitable<Result<std::optional<StoredResponse>>> claim_idempotency_key(
    db::Database& database, db::Transaction& tx, const db::Scope& scope,
    const Idempotency& idempotency);

// Keeps the response for replays; in the transaction that claimed the key.
[[nodiscard]] boost::asio::awaitable<Result<void>> store_idempotent_response(
    db::Transaction& tx, const db::Uuid& org_id, const Idempotency& idempotency,
    const StoredResponse& response);

// Forgets keys older than 24 h (at most `limit`, any org); returns how many.
[[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> expire_idempotency_keys(
    db::Database& database, const db::Scope& scope, std::int64_t limit);

}  // namespace liftoff::records
