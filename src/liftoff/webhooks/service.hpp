#pragma once
// Webhooks (docs/decisions/0013-webhooks.md): an org's admins register endpoints; every event of
// the org's audit log whose type an endpoint subscribes to is POSTed to it, in the log's order, at
// least once, signed the Standard Webhooks way (signature.hpp) with the endpoint's secret.
//
// Delivery runs on the job workers. Every second a periodic job (webhooks.dispatch) claims the
// endpoints with events after their cursor whose next attempt is due, and enqueues one delivery
// job (webhooks.deliver) per endpoint, for its org. That job sends the events in order, moving the
// cursor past each one the endpoint accepts (2xx). A failure ends the job: the endpoint's next
// attempt waits by the retry schedule (webhook_retries; by default 5 s, 5 min, 30 min, 2 h, 5 h,
// 10 h, 10 h, 24 h, 24 h: three days), and after the last one the endpoint is disabled, keeping
// its cursor, so that enabling it again delivers what it missed. Every attempt is logged for the
// admins, who can redeliver any logged event.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/plans/plans.hpp"
#include "liftoff/trace/span.hpp"
#include "liftoff/webhooks/secret_box.hpp"
#include "liftoff/webhooks/sender.hpp"
#include "liftoff/webhooks/store.hpp"

namespace liftoff::core {
class Registry;
}
namespace liftoff::db {
class Database;
}
namespace liftoff::jobs {
class Queue;
class Runner;
struct Job;
struct Outcome;
}  // namespace liftoff::jobs

namespace liftoff::webhooks {

// The job queue of deliveries: worked only by processes that hold webhook_key (so one without it,
// in a fleet being configured, takes none of them), and apart from other jobs (a slow receiver
// holds none of their slots).
inline constexpr std::string_view kWebhookQueue = "webhooks";

struct WebhookOptions {
  // Seals the endpoints' secrets at rest; none: webhooks are off (the API answers 503).
  std::optional<SecretBox> box;
  SenderOptions sender;
  // The wait after each consecutive failure (webhook_retries); after the last, the endpoint is
  // disabled.
  std::vector<std::chrono::milliseconds> retries;
  std::chrono::milliseconds delivery_retention{std::chrono::hours(24 * 30)};
  std::size_t max_endpoints = 20;  // per org
};

// Whether `type` ("record.created") matches `pattern` ("record.created", "record.*" or "*").
[[nodiscard]] bool matches(std::string_view pattern, std::string_view type);

struct DeliveryEvent {
  db::Uuid id;
  std::int64_t seq = 0;
  db::Timestamp occurred_at;
  std::string type;
  std::string actor_type;
  std::optional<db::Uuid> actor_id;
  std::string target_type;
  std::string target_id;
  std::optional<std::string> before;  // JSON text
  std::optional<std::string> after;
};

// The JSON body of an event's delivery: {"type", "timestamp", "data": {...}}.
[[nodiscard]] std::string payload(const DeliveryEvent& event);

struct NewEndpoint {
  std::string url;
  std::string description;
  std::vector<std::string> event_types{"*"};
};

// An endpoint with its secret in the clear: only when created or rotated.
struct WithSecret {
  Endpoint endpoint;
  std::string secret;  // "whsec_..."
};

class WebhookService {
 public:
  WebhookService(db::Database& database, jobs::Queue& queue, core::Registry& metrics,
                 WebhookOptions options);
  ~WebhookService();
  WebhookService(const WebhookService&) = delete;
  WebhookService& operator=(const WebhookService&) = delete;

  // The org's endpoints (the scope's org). Changes are audited; none answers with a secret but
  // create and rotate_secret. create: 402 past what the org's plan allows (`allowance`), 409 past
  // max_endpoints (the deployment's cap).
  [[nodiscard]] boost::asio::awaitable<Result<WithSecret>> create(
      const db::Scope& scope, const NewEndpoint& endpoint, const plans::Allowance& allowance);
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Endpoint>>> list(
      const db::Scope& scope, std::optional<db::Uuid> after, std::int32_t limit);
  // How many endpoints the scope's org has (what its plan counts).
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> count(const db::Scope& scope) {
    co_return co_await store_.count(scope);
  }
  // A purged org's endpoints, their secrets and deliveries (OrgOptions::purge_tenant): how many.
  [[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> purge_org(const db::Scope& scope) {
    co_return co_await store_.purge_org(scope);
  }
  [[nodiscard]] boost::asio::awaitable<Result<Endpoint>> get(const db::Scope& scope,
                                                             std::string_view id);
  [[nodiscard]] boost::asio::awaitable<Result<Endpoint>> update(const db::Scope& scope,
                                                                std::string_view id,
                                                                const EndpointPatch& patch);
  [[nodiscard]] boost::asio::awaitable<Result<void>> remove(const db::Scope& scope,
                                                            std::string_view id);
  // A new secret; the previous one keeps signing (a second signature) for 24 hours.
  [[nodiscard]] boost::asio::awaitable<Result<WithSecret>> rotate_secret(const db::Scope& scope,
                                                                         std::string_view id);
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Delivery>>> deliveries(
      const db::Scope& scope, std::string_view endpoint, std::optional<db::Uuid> before,
      std::int32_t limit);
  // Sends a logged delivery's event again, once, outside the endpoint's order (a job; its attempt
  // is logged). Returns the job's id.
  [[nodiscard]] boost::asio::awaitable<Result<db::Uuid>> redeliver(const db::Scope& scope,
                                                                   std::string_view endpoint,
                                                                   std::string_view delivery);

  // The job kinds (webhooks.dispatch, webhooks.deliver, webhooks.redeliver) and the dispatcher's
  // schedule; call before the runner starts.
  void add_to(jobs::Runner& runner);

  [[nodiscard]] bool enabled() const { return options_.box.has_value(); }

 private:
  struct Metrics;
  [[nodiscard]] Result<void> check_enabled() const;
  [[nodiscard]] Result<void> validate(const EndpointPatch& patch) const;
  // Claims the endpoints with events to send, but not those of `held` orgs (whose jobs wait: a
  // delivery job would wait with them), and enqueues a delivery job for each.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> dispatch(
      const db::Scope& scope, std::span<const db::Uuid> held);
  // One webhooks.deliver job: the endpoint's due events in order, under its claim.
  [[nodiscard]] boost::asio::awaitable<jobs::Outcome> deliver(const jobs::Job& job,
                                                              const db::Scope& scope);
  // The keys of the endpoint's secrets that sign (the current one, then the previous one while it
  // overlaps); empty when one cannot be opened (webhook_key changed).
  [[nodiscard]] std::vector<std::string> signing_keys(const Claimed& endpoint) const;
  // Signs with `keys` and sends one event, as a span under `trace` whose traceparent goes with
  // it; the attempt as it is to be recorded (failed, unsent, without keys).
  [[nodiscard]] boost::asio::awaitable<Attempt> send(const Endpoint& endpoint,
                                                     std::span<const std::string> keys,
                                                     const DeliveryEvent& event,
                                                     const trace::Context& trace,
                                                     Sender::Connection* keep = nullptr);

  db::Database& database_;
  jobs::Queue& queue_;
  WebhookStore store_;
  WebhookOptions options_;
  Sender sender_;
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace liftoff::webhooks
