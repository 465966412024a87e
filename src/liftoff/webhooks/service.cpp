#include "liftoff/webhooks/service.hpp"

#include <spdlog/spdlog.h>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <limits>
#include <set>

#include "liftoff/audit/audit.hpp"
#include "liftoff/core/id.hpp"
#include "liftoff/core/metrics.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/jobs/queue.hpp"
#include "liftoff/jobs/runner.hpp"
#include "liftoff/webhooks/signature.hpp"

namespace liftoff::webhooks {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kDispatch = "webhooks.dispatch";
constexpr std::string_view kDeliver = "webhooks.deliver";
constexpr std::string_view kRedeliver = "webhooks.redeliver";
constexpr std::int32_t kClaimBatch = 100;
constexpr int kDispatchRounds = 10;
// A delivery job holds its endpoint this long at most (its timeout, and then some: a job lost
// with its worker runs again under the same claim once its lease expires).
constexpr auto kDeliverTimeout = 2min;
constexpr auto kClaimHold = 5min;
// One job sends at most this many events, or for this long, then gives the endpoint back (the
// next dispatch, within a second, claims it again): other endpoints get their turn.
constexpr int kEventsPerJob = 500;
constexpr auto kJobBudget = 30s;
constexpr std::int32_t kEventPage = 100;
constexpr std::size_t kRecordBatch = 100;
constexpr auto kRecordEvery = 250ms;
constexpr std::size_t kMaxDescription = 500;
constexpr std::size_t kMaxTypes = 50;
constexpr std::size_t kMaxType = 100;
constexpr std::chrono::milliseconds kSecretOverlap = 24h;
constexpr std::size_t kResponseKept = 1024;

Error not_found() {
  return make_error(Errc::not_found, "no such webhook endpoint");
}

Result<db::Uuid> parse_id(std::string_view text, const char* what) {
  auto id = db::Uuid::parse(text);
  if (!id) return make_error(Errc::not_found, std::string("no such ") + what);
  return *id;
}

std::optional<std::string> type_problem(const std::string& type) {
  if (type.empty() || type.size() > kMaxType) return "must be 1-100 characters";
  if (type == "*") return std::nullopt;
  auto body = type.ends_with(".*") ? std::string_view(type).substr(0, type.size() - 2)
                                   : std::string_view(type);
  if (body.empty() || body.front() == '.' || body.back() == '.' ||
      body.find("..") != std::string_view::npos ||
      body.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.") != std::string_view::npos)
    return "must be an event type such as record.created, a prefix such as record.*, or *";
  return std::nullopt;
}

json::value json_or_null(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  json::error_code ec;
  auto value = json::parse(*text, ec);
  return ec ? json::value(nullptr) : value;
}

std::string endpoint_text(const Endpoint& e) {
  json::array types;
  for (const auto& t : e.event_types) types.emplace_back(t);
  return json::serialize(json::object{{"url", e.url},
                                      {"description", e.description},
                                      {"event_types", std::move(types)},
                                      {"enabled", e.enabled}});
}

DeliveryEvent event_of(const audit::Entry& entry) {
  return {entry.id,       entry.seq,         entry.occurred_at, entry.action, entry.actor_type,
          entry.actor_id, entry.target_type, entry.target_id,   entry.before, entry.after};
}

bool subscribed(const Endpoint& endpoint, std::string_view type) {
  for (const auto& pattern : endpoint.event_types) {
    if (matches(pattern, type)) return true;
  }
  return false;
}

// A delivery job's arguments: the endpoint, and the claim (deliver) or the event's seq
// (redeliver); nullopt for what is missing or malformed.
struct JobArgs {
  std::optional<db::Uuid> endpoint;
  std::optional<db::Uuid> claim;
  std::optional<std::int64_t> seq;
};
JobArgs args_of(const jobs::Job& job) {
  json::error_code ec;
  auto parsed = json::parse(job.args, ec);
  JobArgs args;
  if (ec || !parsed.is_object()) return args;
  const auto& object = parsed.as_object();
  auto uuid = [&](std::string_view name) -> std::optional<db::Uuid> {
    const auto* value = object.if_contains(name);
    if (!value || !value->is_string()) return std::nullopt;
    return db::Uuid::parse(value->as_string());
  };
  args.endpoint = uuid("endpoint");
  args.claim = uuid("claim");
  if (const auto* seq = object.if_contains("seq"); seq && seq->is_int64())
    args.seq = seq->as_int64();
  return args;
}

}  // namespace

bool matches(std::string_view pattern, std::string_view type) {
  if (pattern == "*") return true;
  if (pattern.ends_with(".*"))
    return type.starts_with(pattern.substr(0, pattern.size() - 1));  // "record." prefix
  return pattern == type;
}

std::string payload(const DeliveryEvent& event) {
  json::object actor{
      {"type", event.actor_type},
      {"id", event.actor_id ? json::value(event.actor_id->to_string()) : json::value(nullptr)}};
  json::object data{{"id", event.id.to_string()},
                    {"seq", event.seq},
                    {"occurred_at", core::format_rfc3339(event.occurred_at)},
                    {"actor", std::move(actor)},
                    {"target", json::object{{"type", event.target_type}, {"id", event.target_id}}},
                    {"before", json_or_null(event.before)},
                    {"after", json_or_null(event.after)}};
  return json::serialize(json::object{{"type", event.type},
                                      {"timestamp", core::format_rfc3339(event.occurred_at)},
                                      {"data", std::move(data)}});
}

struct WebhookService::Metrics {
  core::Counter& delivered;
  core::Counter& failed;
  core::Counter& disabled;
  explicit Metrics(core::Registry& registry)
      : delivered(registry.counter("liftoff_webhook_deliveries_total",
                                   "Webhook delivery attempts by result", "result=\"delivered\"")),
        failed(registry.counter("liftoff_webhook_deliveries_total",
                                "Webhook delivery attempts by result", "result=\"failed\"")),
        disabled(registry.counter("liftoff_webhook_endpoints_disabled_total",
                                  "Webhook endpoints disabled after their last retry")) {}
};

WebhookService::WebhookService(db::Database& database, jobs::Queue& queue, core::Registry& metrics,
                               WebhookOptions options)
    : database_(database),
      queue_(queue),
      store_(database),
      options_(std::move(options)),
      sender_(options_.sender),
      metrics_(std::make_unique<Metrics>(metrics)) {}

WebhookService::~WebhookService() = default;

Result<void> WebhookService::check_enabled() const {
  if (options_.box) return {};
  return make_error(Errc::unavailable,
                    "webhooks are off on this server: its operator sets webhook_key to turn them "
                    "on");
}

Result<void> WebhookService::validate(const EndpointPatch& patch) const {
  Error invalid{Errc::validation_failed, "the webhook endpoint is invalid", {}};
  if (patch.url) {
    auto target = parse_target(*patch.url, options_.sender.allow_private);
    if (!target) {
      for (auto& field : target.error().fields) invalid.fields.push_back(std::move(field));
    }
  }
  if (patch.description && patch.description->size() > kMaxDescription)
    invalid.fields.push_back({"description", "must be at most 500 characters"});
  if (patch.event_types) {
    const auto& types = *patch.event_types;
    if (types.empty() || types.size() > kMaxTypes)
      invalid.fields.push_back({"event_types", "must list 1-50 event types"});
    std::set<std::string> seen;
    for (std::size_t i = 0; i < types.size(); ++i) {
      auto field = "event_types[" + std::to_string(i) + "]";
      if (auto problem = type_problem(types[i])) {
        invalid.fields.push_back({field, *problem});
      } else if (!seen.insert(types[i]).second) {
        invalid.fields.push_back({field, "is listed twice"});
      }
    }
  }
  if (!invalid.fields.empty()) return invalid;
  return {};
}

asio::awaitable<Result<WithSecret>> WebhookService::create(const db::Scope& scope,
                                                           const NewEndpoint& endpoint,
                                                           const plans::Allowance& allowance) {
  if (auto ok = check_enabled(); !ok) co_return ok.error();
  if (auto ok = validate({endpoint.url, endpoint.description, endpoint.event_types, {}}); !ok)
    co_return ok.error();
  auto existing = co_await store_.count(scope);
  if (!existing) co_return existing.error();
  if (*existing >= allowance.value) {
    co_return allowance.reached("the organization has " + std::to_string(*existing) +
                                " webhook endpoints, what its plan allows");
  }
  if (static_cast<std::size_t>(*existing) >= options_.max_endpoints) {
    co_return make_error(Errc::conflict, "the organization has " +
                                             std::to_string(options_.max_endpoints) +
                                             " webhook endpoints, the most it may have");
  }
  Endpoint e;
  e.id = db::Uuid{core::new_uuid_v7()};
  e.url = endpoint.url;
  e.description = endpoint.description;
  e.event_types = endpoint.event_types;
  auto secret = generate_secret();
  // The endpoint's cursor starts at the org's sealed head: what committed before it is sealed
  // first, so only what follows its creation is delivered to it.
  auto settled = co_await audit::seal_committed(database_, scope);
  if (!settled) co_return settled.error();
  auto tx = co_await database_.begin(scope);
  if (!tx) co_return tx.error();
  auto sealed = options_.box->seal(secret);
  auto inserted = co_await store_.insert(*tx, scope.org(), e, sealed);
  if (!inserted) co_return inserted.error();
  audit::Change change{"webhook.created", "webhook", e.id.to_string(), std::nullopt,
                       endpoint_text(*inserted)};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  co_return WithSecret{std::move(*inserted), std::move(secret)};
}

asio::awaitable<Result<std::vector<Endpoint>>> WebhookService::list(const db::Scope& scope,
                                                                    std::optional<db::Uuid> after,
                                                                    std::int32_t limit) {
  co_return co_await store_.list(scope, after, limit);
}

asio::awaitable<Result<Endpoint>> WebhookService::get(const db::Scope& scope,
                                                      std::string_view id_text) {
  auto id = parse_id(id_text, "webhook endpoint");
  if (!id) co_return id.error();
  auto found = co_await store_.get(scope, *id);
  if (!found) co_return found.error();
  if (!*found) co_return not_found();
  co_return std::move(**found);
}

asio::awaitable<Result<Endpoint>> WebhookService::update(const db::Scope& scope,
                                                         std::string_view id_text,
                                                         const EndpointPatch& patch) {
  auto id = parse_id(id_text, "webhook endpoint");
  if (!id) co_return id.error();
  if (auto ok = validate(patch); !ok) co_return ok.error();
  auto tx = co_await database_.begin(scope);
  if (!tx) co_return tx.error();
  auto changed = co_await store_.update(*tx, scope.org(), *id, patch);
  if (!changed) co_return changed.error();
  if (!*changed) co_return not_found();
  audit::Change change{"webhook.updated", "webhook", id->to_string(),
                       endpoint_text((*changed)->before), endpoint_text((*changed)->after)};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  co_return std::move((*changed)->after);
}

asio::awaitable<Result<void>> WebhookService::remove(const db::Scope& scope,
                                                     std::string_view id_text) {
  auto id = parse_id(id_text, "webhook endpoint");
  if (!id) co_return id.error();
  auto tx = co_await database_.begin(scope);
  if (!tx) co_return tx.error();
  auto removed = co_await store_.remove(*tx, scope.org(), *id);
  if (!removed) co_return removed.error();
  if (!*removed) co_return not_found();
  audit::Change change{"webhook.deleted", "webhook", id->to_string(), endpoint_text(**removed),
                       std::nullopt};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  co_return Result<void>{};
}

asio::awaitable<Result<WithSecret>> WebhookService::rotate_secret(const db::Scope& scope,
                                                                  std::string_view id_text) {
  if (auto ok = check_enabled(); !ok) co_return ok.error();
  auto id = parse_id(id_text, "webhook endpoint");
  if (!id) co_return id.error();
  auto secret = generate_secret();
  // The endpoint's cursor starts at the org's sealed head: what committed before it is sealed
  // first, so only what follows its creation is delivered to it.
  auto settled = co_await audit::seal_committed(database_, scope);
  if (!settled) co_return settled.error();
  auto tx = co_await database_.begin(scope);
  if (!tx) co_return tx.error();
  auto sealed = options_.box->seal(secret);
  auto rotated = co_await store_.rotate(*tx, scope.org(), *id, sealed, kSecretOverlap);
  if (!rotated) co_return rotated.error();
  if (!*rotated) co_return not_found();
  audit::Change change{"webhook.secret_rotated", "webhook", id->to_string(), std::nullopt,
                       std::nullopt};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  co_return WithSecret{std::move(**rotated), std::move(secret)};
}

asio::awaitable<Result<std::vector<Delivery>>> WebhookService::deliveries(
    const db::Scope& scope, std::string_view endpoint_text_id, std::optional<db::Uuid> before,
    std::int32_t limit) {
  auto endpoint = co_await get(scope, endpoint_text_id);
  if (!endpoint) co_return endpoint.error();
  co_return co_await store_.deliveries(scope, endpoint->id, before, limit);
}

asio::awaitable<Result<db::Uuid>> WebhookService::redeliver(const db::Scope& scope,
                                                            std::string_view endpoint_id,
                                                            std::string_view delivery_id) {
  if (auto ok = check_enabled(); !ok) co_return ok.error();
  auto endpoint = co_await get(scope, endpoint_id);
  if (!endpoint) co_return endpoint.error();
  auto id = parse_id(delivery_id, "delivery");
  if (!id) co_return id.error();
  auto delivery = co_await store_.delivery(scope, endpoint->id, *id);
  if (!delivery) co_return delivery.error();
  if (!*delivery) co_return make_error(Errc::not_found, "no such delivery");
  jobs::NewJob job;
  job.kind = kRedeliver;
  job.queue = kWebhookQueue;
  job.args = {{"endpoint", endpoint->id.to_string()}, {"seq", (*delivery)->attempt.seq}};
  job.max_attempts = 1;
  job.timeout = kDeliverTimeout;
  std::vector<jobs::NewJob> batch{std::move(job)};
  auto enqueued = co_await queue_.enqueue(scope, batch);
  if (!enqueued) co_return enqueued.error();
  co_return *enqueued->front();
}

asio::awaitable<Result<std::size_t>> WebhookService::dispatch(const db::Scope& scope,
                                                              std::span<const db::Uuid> held) {
  std::size_t claimed = 0;
  for (int round = 0; round < kDispatchRounds; ++round) {
    auto tx = co_await database_.begin(scope);
    if (!tx) co_return tx.error();
    auto claims = co_await store_.claim_due(*tx, kClaimBatch, kClaimHold, held);
    if (!claims) co_return claims.error();
    for (const auto& claim : *claims) {
      jobs::NewJob job;
      job.kind = kDeliver;
      job.queue = kWebhookQueue;
      job.args = {{"endpoint", claim.endpoint_id.to_string()}, {"claim", claim.token.to_string()}};
      job.max_attempts = 3;
      job.timeout = kDeliverTimeout;
      std::vector<jobs::NewJob> batch{std::move(job)};
      auto enqueued = co_await queue_.enqueue(*tx, claim.org_id, batch);
      if (!enqueued) co_return enqueued.error();
    }
    auto committed = co_await tx->commit();
    if (!committed) co_return committed.error();
    claimed += claims->size();
    if (claims->size() < static_cast<std::size_t>(kClaimBatch)) break;
  }
  auto pruned = co_await store_.prune(scope, options_.delivery_retention, 1000);
  if (!pruned) co_return pruned.error();
  co_return claimed;
}

std::vector<std::string> WebhookService::signing_keys(const Claimed& endpoint) const {
  std::vector<std::string> keys;
  for (const auto* sealed :
       {&endpoint.secret, endpoint.previous_secret ? &*endpoint.previous_secret : nullptr}) {
    if (!sealed) continue;
    auto secret = options_.box->open(*sealed);
    auto key = secret ? secret_key(*secret) : std::nullopt;
    if (!key) return {};
    keys.push_back(std::move(*key));
  }
  return keys;
}

asio::awaitable<Attempt> WebhookService::send(const Endpoint& endpoint,
                                              std::span<const std::string> keys,
                                              const DeliveryEvent& event,
                                              const trace::Context& trace,
                                              Sender::Connection* keep) {
  Attempt attempt{endpoint.id, event.id, event.seq, event.type, {}, {}, {}, {}};
  // An HTTP client span (OpenTelemetry's conventions name it by the method). The URL is not
  // recorded: its path or query may hold the receiver's secret.
  trace::ActiveSpan span(trace, "POST", trace::Span::Kind::client);
  if (span.recording()) {
    span.set("http.request.method", std::string("POST"));
    span.set("liftoff.webhook.endpoint_id", endpoint.id.to_string());
    span.set("liftoff.webhook.event_type", event.type);
    if (auto target = parse_target(endpoint.url, true)) span.set("server.address", target->host);
  }
  if (keys.empty()) {
    attempt.error = "cannot open the endpoint's secret: was webhook_key changed?";
    co_return attempt;
  }
  auto body = payload(event);
  auto message_id = event.id.to_string();
  auto timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  std::string signatures;
  for (const auto& key : keys)
    signatures += (signatures.empty() ? "" : " ") + sign(key, message_id, timestamp, body);
  Post post{endpoint.url,
            {{"webhook-id", message_id},
             {"webhook-timestamp", std::to_string(timestamp)},
             {"webhook-signature", signatures}},
            std::move(body)};
  for (auto& header : trace::propagation_headers(span.context()))
    post.headers.push_back(std::move(header));
  auto reply = co_await sender_.post(post, keep);
  attempt.status = reply.status;
  if (reply.status) span.set("http.response.status_code", static_cast<std::int64_t>(*reply.status));
  if (!reply.delivered()) {
    attempt.error = reply.error;
    span.fail(reply.error);
  }
  attempt.duration = reply.duration;
  if (!reply.excerpt.empty()) attempt.response = reply.excerpt.substr(0, kResponseKept);
  (reply.delivered() ? metrics_->delivered : metrics_->failed).inc();
  co_return attempt;
}

asio::awaitable<jobs::Outcome> WebhookService::deliver(const jobs::Job& job,
                                                       const db::Scope& scope) {
  auto args = args_of(job);
  const auto& token = args.claim;
  if (!args.endpoint || !token) co_return jobs::Outcome::discard("bad arguments");
  auto claimed = co_await store_.claimed(scope, *args.endpoint, *token);
  if (!claimed) co_return jobs::Outcome::retry(claimed.error().for_log());
  if (!*claimed) co_return jobs::Outcome::done();  // deleted, disabled, or claimed anew
  const auto& endpoint = (*claimed)->endpoint;
  auto cursor = endpoint.after_seq;
  auto started = std::chrono::steady_clock::now();
  // Delivered events are recorded (log rows and the cursor, one statement) a batch at a time: a
  // worker lost before it records them sends them again, which at-least-once allows.
  std::vector<Attempt> delivered;
  auto recorded_at = started;
  Sender::Connection connection;  // one for the job's events, while the receiver keeps it alive
  auto keys = signing_keys(**claimed);  // opened once for the job's events
  int sent = 0;
  while (sent < kEventsPerJob && std::chrono::steady_clock::now() - started < kJobBudget) {
    auto entries = co_await audit::entries(database_, scope, cursor,
                                           std::numeric_limits<std::int64_t>::max(), kEventPage);
    if (!entries) co_return jobs::Outcome::retry(entries.error().for_log());
    if (entries->empty()) break;
    for (const auto& entry : *entries) {
      if (!subscribed(endpoint, entry.action)) {
        cursor = entry.seq;
        continue;
      }
      auto event = event_of(entry);
      auto attempt = co_await send(endpoint, keys, event, scope.trace, &connection);
      ++sent;
      bool failed = attempt.error.has_value();
      if (!failed) {
        delivered.push_back(attempt);
        cursor = entry.seq;
      }
      auto now = std::chrono::steady_clock::now();
      if (failed || delivered.size() >= kRecordBatch || now - recorded_at >= kRecordEvery) {
        auto recorded = co_await store_.delivered(scope, *token, delivered);
        if (!recorded) co_return jobs::Outcome::retry(recorded.error().for_log());
        if (!*recorded) co_return jobs::Outcome::done();  // the claim was lost
        delivered.clear();
        recorded_at = now;
      }
      if (failed) {
        auto failures = static_cast<std::size_t>(endpoint.failures) + 1;
        bool disable = failures > options_.retries.size();
        auto retry_in = disable ? 0ms : options_.retries[failures - 1];
        auto recorded = co_await store_.failed(scope, *token, attempt, retry_in, disable, cursor);
        if (!recorded) co_return jobs::Outcome::retry(recorded.error().for_log());
        if (disable) {
          metrics_->disabled.inc();
          spdlog::warn("webhooks: endpoint {} of org {} disabled after {} failed attempts",
                       endpoint.id.to_string(), endpoint.org_id.to_string(), failures);
        }
        co_return jobs::Outcome::done();
      }
      if (sent >= kEventsPerJob) break;
    }
  }
  auto recorded = co_await store_.delivered(scope, *token, delivered);
  if (!recorded) co_return jobs::Outcome::retry(recorded.error().for_log());
  if (!*recorded) co_return jobs::Outcome::done();
  auto released = co_await store_.release(scope, endpoint.id, *token, cursor);
  if (!released) co_return jobs::Outcome::retry(released.error().for_log());
  co_return jobs::Outcome::done();
}

void WebhookService::add_to(jobs::Runner& runner) {
  auto off = [this](const jobs::Job& job) -> std::optional<jobs::Outcome> {
    if (options_.box) return std::nullopt;
    return jobs::Outcome::discard("webhooks are off (no webhook_key): " + job.kind + " skipped");
  };
  runner.handle(std::string(kDispatch),
                [this, off, &runner](const jobs::Job& job,
                                     const db::Scope& scope) -> asio::awaitable<jobs::Outcome> {
                  if (auto skipped = off(job)) co_return *skipped;
                  const auto held = runner.held_orgs();
                  auto claimed = co_await dispatch(scope, held);
                  if (!claimed) co_return jobs::Outcome::retry(claimed.error().for_log());
                  co_return jobs::Outcome::done();
                });

  runner.handle(
      std::string(kDeliver),
      [this, off](const jobs::Job& job, const db::Scope& scope) -> asio::awaitable<jobs::Outcome> {
        if (auto skipped = off(job)) co_return *skipped;
        co_return co_await deliver(job, scope);
      });

  runner.handle(
      std::string(kRedeliver),
      [this, off](const jobs::Job& job, const db::Scope& scope) -> asio::awaitable<jobs::Outcome> {
        if (auto skipped = off(job)) co_return *skipped;
        auto args = args_of(job);
        if (!args.endpoint || !args.seq) co_return jobs::Outcome::discard("bad arguments");
        auto endpoint = co_await store_.with_secrets(scope, *args.endpoint);
        if (!endpoint) co_return jobs::Outcome::retry(endpoint.error().for_log());
        if (!*endpoint) co_return jobs::Outcome::discard("the endpoint was deleted");
        auto entries = co_await audit::entries(database_, scope, *args.seq - 1, *args.seq, 1);
        if (!entries) co_return jobs::Outcome::retry(entries.error().for_log());
        if (entries->empty()) co_return jobs::Outcome::discard("no such event");
        auto event = event_of(entries->front());
        auto keys = signing_keys(**endpoint);
        auto attempt = co_await send((*endpoint)->endpoint, keys, event, scope.trace);
        auto logged = co_await store_.log(scope, attempt);
        if (!logged) co_return jobs::Outcome::retry(logged.error().for_log());
        if (attempt.error) co_return jobs::Outcome::discard(*attempt.error);
        co_return jobs::Outcome::done();
      });

  if (!options_.box) return;
  auto every_second = jobs::CronSchedule::parse("* * * * * *");
  jobs::NewJob job;
  job.kind = kDispatch;
  job.queue = kWebhookQueue;
  job.max_attempts = 1;
  job.timeout = 30s;
  runner.schedule({std::string(kDispatch), *every_second, std::move(job)});
}

}  // namespace liftoff::webhooks
