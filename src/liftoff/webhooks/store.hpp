#pragma once
// The statements of webhooks: an org's endpoints and their deliveries (migrations/control/0014).
// Secrets arrive and leave sealed (SecretBox); this layer never sees one in the clear.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::db {
class Database;
class Transaction;
}  // namespace liftoff::db

namespace liftoff::webhooks {

struct Endpoint {
  db::Uuid id;
  db::Uuid org_id;
  std::string url;
  std::string description;
  std::vector<std::string> event_types;  // patterns: "record.created", "record.*", "*"
  bool enabled = true;
  std::optional<std::string> disabled_reason;
  std::int64_t after_seq = 0;  // the last audit seq sent or skipped
  std::int32_t failures = 0;   // consecutive failed attempts
  db::Timestamp next_attempt_at;
  std::optional<std::string> last_error;
  std::optional<db::Timestamp> previous_secret_expires_at;  // while the replaced secret signs too
  db::Timestamp created_at;
  db::Timestamp updated_at;
};

// What a delivery job reads under its claim: the endpoint and its sealed secrets.
struct Claimed {
  Endpoint endpoint;
  std::string secret;                          // sealed
  std::optional<std::string> previous_secret;  // sealed; only while still valid
};

// A delivery's record, written with what it changes on its endpoint.
struct Attempt {
  db::Uuid endpoint_id;
  db::Uuid event_id;
  std::int64_t seq = 0;
  std::string event_type;
  std::optional<std::int32_t> status;  // the HTTP status answered, if any
  std::optional<std::string> error;    // none: delivered (2xx)
  std::chrono::milliseconds duration{0};
  std::optional<std::string> response;  // the start of the answer's body
};

// An attempt as logged.
struct Delivery {
  db::Uuid id;
  Attempt attempt;
  db::Timestamp created_at;
};

struct EndpointPatch {
  std::optional<std::string> url;
  std::optional<std::string> description;
  std::optional<std::vector<std::string>> event_types;
  std::optional<bool> enabled;
};

class WebhookStore {
 public:
  explicit WebhookStore(db::Database& database) : database_(database) {}

  // In the org's transaction (its audit event follows): a new endpoint whose cursor is the org's
  // newest audit event, so it receives what happens from now on.
  [[nodiscard]] boost::asio::awaitable<Result<Endpoint>> insert(db::Transaction& tx,
                                                                const db::Uuid& org,
                                                                const Endpoint& endpoint,
                                                                const std::string& sealed_secret);
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Endpoint>>> list(
      const db::Scope& scope, std::optional<db::Uuid> after, std::int32_t limit);
  // How many endpoints the scope's org has.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> count(const db::Scope& scope);
  // Deletes every endpoint of the scope's org with its deliveries, one endpoint per statement; the
  // number deleted. Idempotent.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> purge_org(const db::Scope& scope);
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Endpoint>>> get(const db::Scope& scope,
                                                                            const db::Uuid& id);
  // The endpoint as it was and as it is (nullopt: no such endpoint of the org), locked for the
  // rest of `tx`. Enabling resets the failures and makes the next attempt due now.
  struct Changed {
    Endpoint before;
    Endpoint after;
  };
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Changed>>> update(
      db::Transaction& tx, const db::Uuid& org, const db::Uuid& id, const EndpointPatch& patch);
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Endpoint>>> remove(db::Transaction& tx,
                                                                               const db::Uuid& org,
                                                                               const db::Uuid& id);
  // The new sealed secret signs from now on; the one it replaces also signs for `overlap`.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Endpoint>>> rotate(
      db::Transaction& tx, const db::Uuid& org, const db::Uuid& id, const std::string& sealed,
      std::chrono::milliseconds overlap);

  // The dispatcher, in `tx` (every org): claims up to `limit` enabled endpoints with events after
  // their cursor whose next attempt is due and that no delivery job holds, for `hold`, each under
  // a new claim token. Returns (endpoint id, org id, claim).
  struct Claim {
    db::Uuid endpoint_id;
    db::Uuid org_id;
    db::Uuid token;
  };
  // Not the endpoints of `held` orgs.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Claim>>> claim_due(
      db::Transaction& tx, std::int32_t limit, std::chrono::milliseconds hold,
      std::span<const db::Uuid> held);
  // The endpoint while `token` still holds it (and it is enabled).
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Claimed>>> claimed(
      const db::Scope& scope, const db::Uuid& endpoint, const db::Uuid& token);
  // Records delivered events of one endpoint (one statement) and moves its cursor past the last;
  // false when the claim was lost.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> delivered(const db::Scope& scope,
                                                               const db::Uuid& token,
                                                               std::span<const Attempt> attempts);
  // Records a failed attempt and gives the endpoint up with its cursor at `after_seq` (past the
  // events skipped before it): the next attempt after `retry_in`, or disabled (with
  // `attempt.error` in the reason) when `disable`.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> failed(const db::Scope& scope,
                                                            const db::Uuid& token,
                                                            const Attempt& attempt,
                                                            std::chrono::milliseconds retry_in,
                                                            bool disable, std::int64_t after_seq);
  // Moves the cursor to `after_seq` (events skipped as not subscribed) and gives the endpoint up.
  [[nodiscard]] boost::asio::awaitable<Result<void>> release(const db::Scope& scope,
                                                             const db::Uuid& endpoint,
                                                             const db::Uuid& token,
                                                             std::int64_t after_seq);
  // A redelivery's record: the endpoint's cursor and failures stay as they are.
  [[nodiscard]] boost::asio::awaitable<Result<void>> log(const db::Scope& scope,
                                                         const Attempt& attempt);

  // The endpoint's deliveries, newest first, before `before`.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Delivery>>> deliveries(
      const db::Scope& scope, const db::Uuid& endpoint, std::optional<db::Uuid> before,
      std::int32_t limit);
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Delivery>>> delivery(
      const db::Scope& scope, const db::Uuid& endpoint, const db::Uuid& id);
  // The org's endpoint with its sealed secrets (for a redelivery), whatever its claim.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Claimed>>> with_secrets(
      const db::Scope& scope, const db::Uuid& endpoint);
  // Deletes up to `limit` deliveries older than `retention`; returns how many.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> prune(
      const db::Scope& scope, std::chrono::milliseconds retention, std::int32_t limit);

 private:
  db::Database& database_;
};

}  // namespace liftoff::webhooks
