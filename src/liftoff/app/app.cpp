#include "liftoff/app/app.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "liftoff/api/rate_limits.hpp"
#include "liftoff/api/routes.hpp"
#include "liftoff/api/system.hpp"
#include "liftoff/audit/audit.hpp"
#include "liftoff/audit/sealer.hpp"
#include "liftoff/core/config.hpp"
#include "liftoff/core/log.hpp"
#include "liftoff/core/memory_guard.hpp"
#include "liftoff/core/metrics.hpp"
#include "liftoff/core/service_notify.hpp"
#include "liftoff/core/tenant_tally.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/db/admin.hpp"
#include "liftoff/db/advisor.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/db/embedded_postgres.hpp"
#include "liftoff/db/migrations.hpp"
#include "liftoff/db/shard_placement.hpp"
#include "liftoff/http/server.hpp"
#include "liftoff/identity/account_mail.hpp"
#include "liftoff/identity/org_origins.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/password_hasher.hpp"
#include "liftoff/identity/platform.hpp"
#include "liftoff/identity/revocation_listener.hpp"
#include "liftoff/identity/service.hpp"
#include "liftoff/identity/session_cache.hpp"
#include "liftoff/identity/shard_directory.hpp"
#include "liftoff/identity/store.hpp"
#include "liftoff/jobs/runner.hpp"
#include "liftoff/notify/hub.hpp"
#include "liftoff/notify/notifications.hpp"
#include "liftoff/plans/plans.hpp"
#include "liftoff/ratelimit/limiter.hpp"
#include "liftoff/records/events.hpp"
#include "liftoff/records/service.hpp"
#include "liftoff/shards/move.hpp"
#include "liftoff/shards/rebalance.hpp"
#include "liftoff/trace/exporter.hpp"
#include "liftoff/usage/job_quota.hpp"
#include "liftoff/usage/meter.hpp"
#include "liftoff/usage/report.hpp"
#include "liftoff/webhooks/service.hpp"

#ifndef LIFTOFF_VERSION
#define LIFTOFF_VERSION "0.0.0"
#endif
#ifndef LIFTOFF_GIT_COMMIT
#define LIFTOFF_GIT_COMMIT "unknown"
#endif

extern char** environ;

namespace liftoff::app {
namespace {
namespace asio = boost::asio;
namespace json = boost::json;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr auto kMigrationTimeout = std::chrono::minutes(5);
// How long an item the relay after its commit could not write waits in the shard outbox.
constexpr auto kOutboxSweep = std::chrono::seconds(1);

// Runs a coroutine to completion on a private io_context (startup and CLI tools only).
template <class T>
T block_on(asio::awaitable<T> task) {
  asio::io_context io(1);
  auto future = asio::co_spawn(io, std::move(task), asio::use_future);
  io.run();
  return future.get();
}

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string_view::npos && entry.starts_with("LIFTOFF_")) {
      env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
    }
  }
  return env;
}

// The embedded cluster: the control cluster (shard main) at 0, else embedded shard-<shard>.
db::EmbeddedPostgres embedded_postgres(const core::Config& config, std::size_t shard = 0) {
  auto dir = std::filesystem::path(config.data_dir);
  if (shard > 0) dir /= "shard-" + std::to_string(shard);
  return db::EmbeddedPostgres({dir,
                               static_cast<std::uint16_t>(config.embedded_pg_port + 10 * shard),
                               "liftoff",
                               "/usr/lib/postgresql/15/bin",
                               {},
                               static_cast<unsigned>(config.embedded_pg_replicas)});
}

// Every embedded cluster, the control cluster first, each with its shard's name.
std::vector<std::pair<std::string, db::EmbeddedPostgres>> embedded_clusters(
    const core::Config& config) {
  std::vector<std::pair<std::string, db::EmbeddedPostgres>> clusters;
  if (!config.embedded_database()) return clusters;
  clusters.emplace_back("main", embedded_postgres(config));
  for (std::size_t i = 1; i <= config.embedded_pg_shards; ++i)
    clusters.emplace_back("shard-" + std::to_string(i), embedded_postgres(config, i));
  return clusters;
}

// Resolves the database URL: the configured one, or the embedded cluster (started if needed).
Result<std::string> database_url(const core::Config& config) {
  if (!config.embedded_database()) return config.database_url;
  auto pg = embedded_postgres(config);
  if (auto ok = pg.start(); !ok) return ok.error();
  return pg.url();
}

// The URI that reaches the primary without a pooler, for LISTEN, migrations and admin tasks.
Result<std::string> direct_url(const core::Config& config) {
  if (!config.database_direct_url.empty()) return config.database_direct_url;
  return database_url(config);
}

// The URIs of the replicas that serve reads: the configured ones, or the embedded cluster's
// (started with it by database_url()).
std::vector<std::string> replica_urls(const core::Config& config) {
  if (!config.embedded_database()) return config.database_replica_urls;
  std::vector<std::string> urls;
  for (const auto& replica : embedded_postgres(config).replicas()) urls.push_back(replica.url());
  return urls;
}

// A PostgreSQL cluster Liftoff uses: the control cluster, which also holds shard main, or a
// tenant shard (docs/decisions/0021-tenant-shards.md).
struct Cluster {
  std::string name;    // its shard's: "main" for the control cluster
  std::string url;     // its primary, as requests reach it
  std::string direct;  // its primary without a pooler: LISTEN, migrations, admin tasks
  std::vector<std::string> replicas;
};

// Every cluster, the control cluster first, then the configured shards, then the embedded ones
// (started when not running).
Result<std::vector<Cluster>> clusters(const core::Config& config) {
  auto url = database_url(config);
  if (!url) return url.error();
  auto direct = direct_url(config);
  if (!direct) return direct.error();
  std::vector<Cluster> all{{"main", *url, *direct, replica_urls(config)}};
  for (const auto& shard : config.shards)
    all.push_back({shard.name, shard.url, shard.url, shard.replica_urls});
  auto embedded = embedded_clusters(config);
  for (std::size_t i = 1; i < embedded.size(); ++i) {
    auto& [name, pg] = embedded[i];
    if (auto started = pg.start(); !started) return started.error();
    std::vector<std::string> replicas;
    for (const auto& replica : pg.replicas()) replicas.push_back(replica.url());
    all.push_back({name, pg.url(), pg.url(), std::move(replicas)});
  }
  return all;
}

asio::awaitable<Result<std::unique_ptr<db::Connection>>> connect(const std::string& url) {
  // Named locals, not temporaries, in co_await expressions: see Params::none().
  auto executor = co_await asio::this_coro::executor;
  db::ConnectOptions options{url, {}, "liftoff-admin"};
  co_return co_await db::Connection::connect(executor, options,
                                             db::deadline_after(std::chrono::seconds(10)));
}

// Applies migrations (auto_migrate) or checks the schema of `cluster`; refuses a schema newer than
// this binary.
Result<void> prepare_schema(const Cluster& cluster, bool auto_migrate) {
  const auto& url = cluster.direct;
  return block_on([&]() -> asio::awaitable<Result<void>> {
    auto conn = co_await connect(url);
    if (!conn) co_return conn.error();
    auto deadline = db::deadline_after(kMigrationTimeout);
    if (auto_migrate) {
      auto applied = co_await db::migrate_up(**conn, db::embedded_migrations(), deadline);
      if (!applied) co_return applied.error();
      co_return Result<void>{};
    }
    auto status = co_await db::schema_status(**conn, db::embedded_migrations(), deadline);
    if (!status) co_return status.error();
    if (!status->current()) {
      if (cluster.name == "main") {
        spdlog::warn("{} migration(s) pending; /readyz answers 503 until `liftoff migrate up` runs",
                     status->pending());
      } else {
        spdlog::warn("shard {}: {} migration(s) pending until `liftoff migrate up` runs",
                     cluster.name, status->pending());
      }
    }
    co_return Result<void>{};
  }());
}

// Background work that throws (a bug) is logged with the exception's text, counted in
// background_failures_total{task}, and runs again at its next turn.
struct BackgroundTask {
  std::string name;
  core::Counter* failures;
  BackgroundTask(core::Registry& metrics, std::string task)
      : name(std::move(task)),
        failures(&metrics.counter("background_failures_total",
                                  "Background work that ended by an unexpected exception",
                                  "task=\"" + name + "\"")) {}
  // Runs one turn of the work, catching what it throws.
  template <typename Work>
  asio::awaitable<void> turn(Work& work) const {
    std::exception_ptr failure;
    try {
      co_await work();
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) core::log_failure(name, failure, failures);
  }
};

// What a Database needs to serve several shards: the directory that routes an org's statements,
// and the receivers of what the outbox relays to the orgs' shards.
void route_by_shard(db::Database& database) {
  database.use_directory(identity::shard_directory(database));
  audit::receive_relayed(database);
  jobs::receive_relayed(database);
}

// Runs `work` every `interval`, checking `stopping` every `tick`: at `AtStop::leave` it returns
// as soon as it sees `stopping`, at `AtStop::run_once_more` it runs `work` a last time first.
enum class AtStop { leave, run_once_more };
template <typename Work>
asio::awaitable<void> every(const BackgroundTask& task, std::chrono::milliseconds interval,
                            std::chrono::milliseconds tick, const std::atomic<bool>& stopping,
                            AtStop at_stop, Work work) {
  auto executor = co_await asio::this_coro::executor;
  auto next = std::chrono::steady_clock::now() + interval;
  for (;;) {
    if (at_stop == AtStop::leave && stopping.load(std::memory_order_relaxed)) co_return;
    asio::steady_timer timer(executor, tick);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    bool last = at_stop == AtStop::run_once_more && stopping.load(std::memory_order_relaxed);
    if (!last && std::chrono::steady_clock::now() < next) continue;
    next = std::chrono::steady_clock::now() + interval;
    co_await task.turn(work);
    if (last) co_return;
  }
}

// What the workers opened before they accepted (ServerOptions::warm_up): the last to finish
// logs the process's total.
struct Warming {
  explicit Warming(std::size_t workers) : workers_left(workers) {}
  std::atomic<std::size_t> workers_left;
  std::atomic<std::size_t> open{0};
  std::atomic<std::size_t> wanted{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

asio::awaitable<void> warm_worker(db::Database& database, std::size_t pooled,
                                  std::chrono::milliseconds timeout, Warming& warming) {
  auto warmth = co_await database.warm(pooled, db::deadline_after(timeout));
  warming.open += warmth.open;
  warming.wanted += warmth.wanted;
  if (warming.workers_left.fetch_sub(1) != 1) co_return;
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - warming.started);
  if (warming.open < warming.wanted) {
    spdlog::warn(
        "opened {} of {} database connections before serving, in {} ms; the pools open "
        "the rest on demand",
        warming.open.load(), warming.wanted.load(), took.count());
  } else {
    spdlog::info("opened {} database connections before serving, in {} ms", warming.open.load(),
                 took.count());
  }
}

// Housekeeping, every `interval` until `stopping`: purges organizations past their grace period,
// forgets expired Idempotency-Keys, tokens and notifications older than `notification_retention`.
// Every process runs it; each part is safe to run concurrently. Each statement of background work
// may take `statement_timeout` (db_query_timeout).
asio::awaitable<void> housekeeping(
    const BackgroundTask& task, identity::OrgService& orgs, identity::IdentityService& identity,
    records::RecordService& records, notify::Notifications& notifications,
    const std::atomic<bool>& stopping, std::chrono::milliseconds interval,
    std::chrono::milliseconds notification_retention, std::chrono::milliseconds statement_timeout) {
  co_await every(
      task, interval, std::chrono::milliseconds(250), stopping, AtStop::leave,
      [&orgs, &identity, &records, &notifications, notification_retention,
       statement_timeout]() -> asio::awaitable<void> {
        auto purged = co_await orgs.purge_expired(100);
        if (!purged) {
          spdlog::warn("purging deleted organizations: {}", purged.error().for_log());
        } else if (*purged > 0) {
          spdlog::info("purged {} organization(s) past their grace period", *purged);
        }
        for (std::size_t shard = 0; shard < records.database().shards().size(); ++shard) {
          auto expired = co_await records.expire_idempotency_keys(
              db::Scope::background(db::Tenant::every_org_on(shard), statement_timeout), 10'000);
          if (!expired) spdlog::warn("expiring idempotency keys: {}", expired.error().for_log());
        }
        auto tokens = co_await identity.expire_tokens(
            db::Scope::background(db::Tenant::control(), statement_timeout));
        if (!tokens) spdlog::warn("expiring tokens: {}", tokens.error().for_log());
        auto pruned = co_await notifications.prune(
            db::Scope::background(db::Tenant::control(), statement_timeout),
            std::chrono::duration_cast<std::chrono::seconds>(notification_retention), 10'000);
        if (!pruned) spdlog::warn("pruning notifications: {}", pruned.error().for_log());
      });
}

// Writes when credentials were last used, every `interval` until `stopping`, then once more:
// requests only note their credential (IdentityService::authenticate), so no read waits for a
// write.
asio::awaitable<void> record_credential_uses(const BackgroundTask& task,
                                             identity::IdentityService& identity,
                                             const std::atomic<bool>& stopping,
                                             std::chrono::milliseconds interval,
                                             std::chrono::milliseconds statement_timeout) {
  co_await every(task, interval, std::min(interval, std::chrono::milliseconds(250)), stopping,
                 AtStop::run_once_more, [&identity, statement_timeout]() -> asio::awaitable<void> {
                   auto recorded = co_await identity.record_uses(
                       db::Scope::background(db::Tenant::control(), statement_timeout));
                   if (!recorded)
                     spdlog::warn("recording credential use: {}", recorded.error().for_log());
                 });
}

// Rewrites records of collections whose schema changed, a batch at a time, until `stopping`: at
// once while there is work, otherwise checking every second. Every process runs it; each collection
// has one rewriter at a time (RecordService::rewrite_some).
asio::awaitable<void> rewrite_records(const BackgroundTask& task, records::RecordService& records,
                                      const std::atomic<bool>& stopping,
                                      std::chrono::milliseconds statement_timeout) {
  constexpr std::int32_t kBatch = 500;
  auto executor = co_await asio::this_coro::executor;
  while (!stopping.load(std::memory_order_relaxed)) {
    bool busy = false;
    auto batch = [&]() -> asio::awaitable<void> {
      for (std::size_t shard = 0; shard < records.database().shards().size(); ++shard) {
        auto rewritten = co_await records.rewrite_some(
            db::Scope::background(db::Tenant::every_org_on(shard), statement_timeout), kBatch);
        if (!rewritten) spdlog::warn("rewriting records: {}", rewritten.error().for_log());
        busy = busy || (rewritten && *rewritten > 0);
      }
    };
    co_await task.turn(batch);
    // Between batches a short pause leaves the database to the tenants' own requests.
    asio::steady_timer pause(
        executor, busy ? std::chrono::milliseconds(10) : std::chrono::milliseconds(1'000));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

jobs::RunnerOptions runner_options(const core::Config& config, const std::string& direct_url) {
  jobs::RunnerOptions options;
  options.queues.clear();
  for (const auto& [queue, concurrency] : config.job_queues)
    options.queues.push_back({queue, static_cast<int>(concurrency)});
  options.org_concurrency = static_cast<int>(config.job_org_concurrency);
  options.lease = config.job_lease;
  options.poll_interval = config.job_poll_interval;
  options.shutdown_timeout = config.shutdown_timeout;
  options.completed_retention = config.job_retention;
  options.failed_retention = config.job_failed_retention;
  options.listen = db::ConnectOptions{direct_url, {}, "liftoff-jobs"};
  return options;
}

// Webhooks' options from the configuration: the key sealing secrets is webhook_key, or with the
// embedded database data_dir/webhook.key (made on first start, readable by its owner only); with
// neither, webhooks are off.
Result<webhooks::WebhookOptions> webhook_options(const core::Config& config) {
  webhooks::WebhookOptions options;
  options.sender.allow_private = config.webhook_allow_private;
  options.sender.timeout = config.webhook_timeout;
  options.sender.ca_file = config.webhook_ca_file;
  options.retries = config.webhook_retries;
  std::string key = config.webhook_key;
  if (key.empty() && config.embedded_database()) {
    auto path = std::filesystem::path(config.data_dir) / "webhook.key";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      std::filesystem::create_directories(path.parent_path(), ec);
      std::ofstream out(path);
      out << webhooks::SecretBox::generate_key() << "\n";
      if (!out.flush())
        return make_error(Errc::unavailable, "webhooks: cannot write " + path.string());
      std::filesystem::permissions(
          path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
    }
    std::ifstream in(path);
    std::getline(in, key);
    if (key.empty()) return make_error(Errc::unavailable, "webhooks: cannot read " + path.string());
  }
  if (key.empty()) return options;
  auto box = webhooks::SecretBox::from_base64(key);
  if (!box) return box.error();
  options.box = std::move(*box);
  return options;
}

// Account email's options from the configuration; a validation error for templates that do not
// load or a sender address that is not one.
Result<identity::AccountMailOptions> mail_options(const core::Config& config) {
  identity::AccountMailOptions options;
  options.smtp.host = config.smtp_host;
  options.smtp.port = static_cast<std::uint16_t>(config.smtp_port);
  options.smtp.security =
      mail::parse_security(config.smtp_security).value_or(mail::Security::starttls);
  options.smtp.username = config.smtp_username;
  options.smtp.password = config.smtp_password;
  options.smtp.timeout = config.smtp_timeout;
  options.smtp.ca_file = config.smtp_ca_file;
  const auto& from = config.mail_from;
  auto at = from.rfind('@');
  bool plausible = at != std::string::npos && at > 0 && at + 1 < from.size() &&
                   from.size() <= 254 && std::none_of(from.begin(), from.end(), [](char c) {
                     return c <= ' ' || c == '<' || c == '>' || c == '"' || c == 0x7f;
                   });
  if (!plausible) return make_error(Errc::validation_failed, "mail_from is not an email address");
  options.from = mail::Address{config.app_name, from};
  options.smtp.helo = from.substr(at + 1);
  options.app_name = config.app_name;
  options.app_url = config.app_url.empty()
                        ? "http://" + config.listen_host + ":" + std::to_string(config.listen_port)
                        : config.app_url;
  while (options.app_url.ends_with('/')) options.app_url.pop_back();
  options.verify_ttl =
      std::chrono::duration_cast<std::chrono::seconds>(config.email_verification_ttl);
  options.reset_ttl = std::chrono::duration_cast<std::chrono::seconds>(config.password_reset_ttl);
  options.resend_interval =
      std::chrono::duration_cast<std::chrono::seconds>(config.mail_resend_interval);
  if (!config.mail_templates.empty()) {
    auto templates = mail::Templates::load(config.mail_templates);
    if (!templates) return templates.error();
    options.templates = std::move(*templates);
  }
  return options;
}

// The kinds of job this build runs. liftoff.noop does nothing: the canary an operator enqueues to
// see that workers run (`liftoff jobs enqueue`), and the benchmarks' job.
void add_job_handlers(jobs::Runner& runner) {
  runner.handle("liftoff.noop",
                [](const jobs::Job&, const db::Scope&) -> asio::awaitable<jobs::Outcome> {
                  co_return jobs::Outcome::done();
                });
}

// What an org keeps on the tenant plane that its plan counts, from the domains that own it.
asio::awaitable<Result<plans::Holdings>> tenant_holdings(records::RecordService& records,
                                                         webhooks::WebhookService& hooks,
                                                         db::Scope scope) {
  auto kept = co_await records.holdings(scope);
  if (!kept) co_return kept.error();
  auto endpoints = co_await hooks.count(scope);
  if (!endpoints) co_return endpoints.error();
  plans::Holdings holdings;
  holdings[plans::Limit::collections] = kept->collections;
  holdings[plans::Limit::records] = kept->records;
  holdings[plans::Limit::storage_bytes] = kept->bytes;
  holdings[plans::Limit::webhook_endpoints] = *endpoints;
  co_return holdings;
}

// What an org stores, measured for its usage and quotas (a scan, in the org's turn).
asio::awaitable<Result<usage::Holdings>> measure_holdings(records::RecordService& records,
                                                          db::Scope scope) {
  auto kept = co_await records.holdings(scope);
  if (!kept) co_return kept.error();
  co_return usage::Holdings{kept->records, kept->bytes};
}

identity::TenantHoldings holdings_of(records::RecordService& records,
                                     webhooks::WebhookService& hooks) {
  return
      [&records, &hooks](const db::Scope& scope) { return tenant_holdings(records, hooks, scope); };
}

// What a purged org leaves on the tenant plane goes (its audit log stays): its webhook endpoints
// with their secrets and deliveries, then its collections with their records.
asio::awaitable<Result<void>> purge_tenant(records::RecordService& records,
                                           webhooks::WebhookService& hooks, db::Scope scope) {
  auto endpoints = co_await hooks.purge_org(scope);
  if (!endpoints) co_return endpoints.error();
  auto collections = co_await records.purge_org(scope);
  if (!collections) co_return collections.error();
  spdlog::info("purged org {}: {} collection(s), {} webhook endpoint(s)", scope.org().to_string(),
               *collections, *endpoints);
  co_return Result<void>{};
}

identity::TenantPurge purge_of(records::RecordService& records, webhooks::WebhookService& hooks) {
  return [&records, &hooks](const db::Scope& scope) { return purge_tenant(records, hooks, scope); };
}

int serve(const core::Config& config) {
  spdlog::info("liftoff {} ({}) starting", LIFTOFF_VERSION, LIFTOFF_GIT_COMMIT);
  for (const auto& [key, value] : core::describe(config))
    spdlog::info("config {} = {}", key, value);

  auto all = clusters(config);
  if (!all) {
    spdlog::error("{}", all.error().for_log());
    return kExitFailure;
  }
  const auto* url = &all->front().url;
  const auto* direct = &all->front().direct;
  bool auto_migrate = config.auto_migrate.value_or(config.embedded_database());
  for (const auto& cluster : *all) {
    if (auto ok = prepare_schema(cluster, auto_migrate); !ok) {
      spdlog::error("database schema of shard {}: {}", cluster.name, ok.error().for_log());
      return kExitFailure;
    }
  }

  core::Registry metrics;
  metrics
      .gauge("liftoff_build_info", "Build information",
             fmt::format("version=\"{}\",commit=\"{}\"", LIFTOFF_VERSION, LIFTOFF_GIT_COMMIT))
      .set(1);
  unsigned threads = config.effective_threads();
  db::DatabaseOptions db_options;
  db_options.connect =
      db::ConnectOptions{*url, config.db_query_timeout * 2, "liftoff", config.database_role};
  db_options.connect.pooled = config.behind_pooler();
  db_options.admin_conninfo = all->front().direct;
  if (auto ok = block_on(db::check_pooled_session(db_options.connect)); !ok) {
    spdlog::error("database_pooler: {}", ok.error().for_log());
    return kExitFailure;
  }
  db_options.pool.max_size = config.db_pool_size;
  db_options.shared_connections = config.db_shared_connections;
  db_options.pool.acquire_timeout = config.db_acquire_timeout;
  db_options.query_timeout = config.db_query_timeout;
  db_options.slow_statements.threshold = config.slow_statement_threshold;
  db_options.scans = {config.db_scans_per_org,
                      config.db_scans > 0
                          ? config.db_scans
                          : std::max<std::size_t>(1, config.db_pool_size * threads / 2),
                      config.db_scan_queue_per_org};
  db_options.replicas = {replica_urls(config), config.max_replica_lag,
                         config.replica_probe_interval};
  for (auto shard = std::next(all->begin()); shard != all->end(); ++shard)
    db_options.shards.push_back({shard->name, shard->url, shard->replicas, shard->direct});
  db::Database database(db_options, metrics, threads);
  route_by_shard(database);
  const db::PlacementOptions placement_options{config.shard_reserved};
  if (auto placeable = db::ShardPlacement::check(database, placement_options); !placeable) {
    spdlog::error("{}", placeable.error().for_log());
    return kExitFailure;
  }
  db::ShardPlacement placement(database, placement_options);

  http::Router router;
  const auto& migrations = db::embedded_migrations();
  identity::PasswordHasher hasher({config.password_hash_ops, config.password_hash_memory,
                                   config.password_hash_threads, config.password_hash_queue,
                                   config.password_hash_per_client});
  jobs::Queue job_queue(database);
  usage::Meter meter(
      database,
      {config.usage_flush, config.usage_holdings_refresh, config.db_query_timeout * 2, threads},
      &metrics);
  auto account_mail_options = mail_options(config);
  if (!account_mail_options) {
    spdlog::error("email: {}", account_mail_options.error().for_log());
    return kExitFailure;
  }
  identity::AccountMail account_mail(database, job_queue, std::move(*account_mail_options));
  if (!account_mail.enabled()) spdlog::info("email is off: no smtp_host");
  identity::IdentityStore identity_store(database);
  identity::SessionCache session_cache(config.session_cache_ttl, config.session_cache_entries,
                                       core::CacheMetrics::in(metrics, "session"));
  // No cache at all when its TTL is 0: every request then checks its credential in the database.
  identity::SessionCache* cache = config.session_cache_ttl.count() > 0 ? &session_cache : nullptr;
  identity::OrgOrigins org_origins(database, config.db_query_timeout);
  identity::SessionRevocationListener revocations(
      db::ConnectOptions{*direct, {}, "liftoff-listener"}, session_cache,
      std::vector<db::OrgChanges*>{&org_origins, &database.shard_cache()});
  identity::IdentityService identity_service(
      identity_store, hasher,
      {std::chrono::duration_cast<std::chrono::seconds>(config.session_ttl),
       std::chrono::duration_cast<std::chrono::seconds>(config.session_idle),
       std::chrono::duration_cast<std::chrono::seconds>(config.stream_ticket_ttl),
       {}},
      cache, &account_mail);
  notify::Notifications notifications(database);
  notify::Hub notification_hub(
      db::ConnectOptions{*direct, {}, "liftoff-notifications"},
      {config.events_max_streams, config.notifications_max_streams_per_user,
       config.events_max_streams_per_client});
  api::NotificationStreamOptions notification_streams;
  notification_streams.heartbeat = config.events_heartbeat;
  records::EventHubOptions hub_options;
  hub_options.max_subscribers = config.events_max_streams;
  hub_options.max_per_org = config.events_max_streams_per_org;
  hub_options.max_per_client = config.events_max_streams_per_client;
  hub_options.max_queue_bytes = config.events_max_backlog;
  hub_options.poll_interval = config.events_poll_interval;
  if (!config.redis_url.empty()) {
    auto redis = pubsub::parse_redis_url(config.redis_url);
    if (!redis) {
      spdlog::error("redis_url: {}", redis.error().for_log());
      return kExitFailure;
    }
    hub_options.redis = *redis;
  }
  records::EventHub event_hub(database, db::ConnectOptions{*direct, {}, "liftoff-events"},
                              hub_options);
  records::RecordsOptions records_options;
  records_options.max_collections = config.collections_per_org;
  records_options.schema.max_fields = config.fields_per_collection;
  records_options.list_cache_bytes = config.list_cache_bytes;
  records_options.request_budget = config.request_budget;
  records_options.page_budget = config.page_budget;
  records_options.audit_value_limit = config.audit_value_limit;
  records_options.read_rate = config.org_read_rate;
  audit::SealerOptions sealer_options;
  sealer_options.interval = config.audit_seal_interval;
  sealer_options.statement_timeout = config.db_query_timeout;
  audit::Sealer sealer(
      database, sealer_options,
      [&event_hub](const db::Uuid& org_id, std::int64_t seq) { event_hub.published(org_id, seq); },
      &metrics);
  records_options.on_written = [&sealer](const db::Uuid&) { sealer.wake(); };
  records_options.on_stored = [&meter](const db::Uuid& org_id, const records::Stored& stored) {
    meter.stored(org_id, stored.records, stored.bytes);
  };
  records::RecordService record_service(database, records_options, &metrics);
  meter.set_measure([&record_service](const db::Scope& scope) {
    return measure_holdings(record_service, scope);
  });
  job_queue.on_enqueued([&meter](const db::Uuid& org_id, int jobs) {
    meter.count(org_id, usage::Count::jobs, jobs);
  });
  api::EventStreamOptions event_streams;
  event_streams.heartbeat = config.events_heartbeat;
  event_streams.replay_window = config.events_replay_window;
  event_streams.max_replay = config.events_max_replay;
  event_streams.on_delivered = [&meter](const db::Uuid& org_id, std::int64_t events) {
    meter.count(org_id, usage::Count::events, events);
  };
  http::JsonLimits json_limits;
  json_limits.max_depth = config.json_max_depth;
  json_limits.max_string_length = config.json_max_string_length;
  auto hook_options = webhook_options(config);
  if (!hook_options) {
    spdlog::error("webhook_key: {}", hook_options.error().for_log());
    return kExitFailure;
  }
  if (!hook_options->box) spdlog::info("webhooks are off: no webhook_key");
  webhooks::WebhookService webhook_service(database, job_queue, metrics, *hook_options);
  identity::OrgService org_service(
      database,
      {std::chrono::duration_cast<std::chrono::seconds>(config.org_deletion_grace),
       std::chrono::duration_cast<std::chrono::seconds>(config.invitation_ttl),
       holdings_of(record_service, webhook_service), purge_of(record_service, webhook_service),
       [&placement](const db::Scope& scope) { return placement.choose(scope); }},
      cache, &account_mail);
  // From SIGTERM on (drain_delay before the drain): /readyz answers 503.
  std::atomic<bool> leaving{false};
  api::SystemDeps system{database, metrics, migrations.empty() ? 0 : migrations.back().version,
                         leaving};
  ratelimit::LimiterOptions limiter_options;
  limiter_options.redis = hub_options.redis;
  limiter_options.redis_timeout = config.rate_limit_redis_timeout;
  limiter_options.threads = threads;
  ratelimit::Limiter limiter(limiter_options, metrics);
  api::RateLimits rate_limits(config.rate_limits ? &limiter : nullptr,
                              {static_cast<std::int64_t>(config.rate_limit_per_address),
                               static_cast<std::int64_t>(config.rate_limit_per_credential),
                               static_cast<std::int64_t>(config.signups_per_address)},
                              &meter);
  if (config.rate_limits) {
    spdlog::info(
        "rate limits: {} requests per minute per address, {} per session or API key, "
        "each org's plan's; {}",
        config.rate_limit_per_address, config.rate_limit_per_credential,
        limiter_options.redis ? "cluster-wide through Redis" : "per process (no Redis)");
  }
  if (config.serves_api()) {
    api::add_routes(router, {system, identity_service, org_service, record_service, json_limits,
                             event_hub, event_streams, job_queue, webhook_service, notifications,
                             notification_hub, notification_streams, rate_limits, meter});
  } else {
    api::add_system_routes(router, system);  // a worker: health and metrics
  }
  // The plans' jobs per day: a worker holds the jobs of an org that enqueued its day's quota.
  usage::JobQuota job_quota(
      database,
      [&org_service, timeout = config.db_query_timeout](
          const db::Uuid& org_id) -> asio::awaitable<Result<std::optional<std::int64_t>>> {
        auto limits = co_await org_service.limits(
            db::Scope::background(db::Tenant::control(), timeout), org_id);
        if (!limits) co_return limits.error();
        if (!*limits) co_return std::optional<std::int64_t>{};
        co_return (**limits)[plans::Limit::jobs_per_day];
      },
      {config.db_query_timeout});
  // Suspended orgs: a worker holds their jobs and webhook deliveries until they are restored.
  identity::SuspendedOrgs suspended_orgs(database, config.db_query_timeout, metrics);
  // Sampled spans (requests', jobs', and what they do), to an OpenTelemetry collector (outlives the
  // server and the workers: it sends what is queued when they stop).
  std::unique_ptr<trace::SpanExporter> span_exporter;
  if (!config.otlp_endpoint.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    trace::ExporterOptions exporter_options;
    exporter_options.endpoint = config.otlp_endpoint;
    exporter_options.resource = {"liftoff", LIFTOFF_VERSION,
                                 fmt::format("{}:{}", host, ::getpid())};
    auto started = trace::SpanExporter::start(std::move(exporter_options), metrics);
    if (!started) {
      spdlog::error("otlp_endpoint: {}", started.error().for_log());
      return kExitFailure;
    }
    span_exporter = std::move(*started);
  }

  std::optional<jobs::Runner> runner;
  if (config.runs_jobs()) {
    auto options = runner_options(config, *direct);
    // Deliveries and account email have their own queues, worked where the process can sign
    // deliveries (webhook_key) and send email (smtp_host), unless job_queues lists them already.
    auto add_queue = [&options](std::string_view name, bool works, std::size_t concurrency) {
      bool listed = std::any_of(options.queues.begin(), options.queues.end(),
                                [&](const jobs::QueueConfig& q) { return q.name == name; });
      if (works && concurrency > 0 && !listed)
        options.queues.push_back({std::string(name), static_cast<int>(concurrency)});
    };
    add_queue(webhooks::kWebhookQueue, hook_options->box.has_value(), config.webhook_concurrency);
    add_queue(identity::kMailQueue, account_mail.enabled(), config.mail_concurrency);
    options.spans = span_exporter.get();
    options.trace_sample_ratio = config.trace_sample_ratio;
    options.held_orgs = [&job_quota, &suspended_orgs] {
      auto held = job_quota.held();
      auto suspended = suspended_orgs.ids();
      held.insert(held.end(), suspended.begin(), suspended.end());
      return held;
    };
    options.on_fetched = [&job_quota](const db::Uuid& org_id) {
      if (org_id != jobs::kPlatform) job_quota.ran(org_id);
    };
    runner.emplace(job_queue, metrics, std::move(options));
    add_job_handlers(*runner);
    webhook_service.add_to(*runner);
    account_mail.add_to(*runner);
  }

  // Per-tenant metrics: each worker tracks 20 times the organizations shown (at least 256).
  std::optional<core::TenantTally> tenant_tally;
  if (config.tenant_metrics > 0) {
    tenant_tally.emplace(std::max<std::size_t>(256, 20 * config.tenant_metrics),
                         config.tenant_metrics, threads);
    metrics.add_collector([&tally = *tenant_tally](std::string& out) { tally.render(out); });
  }
  http::ServerOptions options;
  if (tenant_tally) options.tenants = &*tenant_tally;
  options.spans = span_exporter.get();
  options.host = config.listen_host;
  options.port = config.listen_port;
  options.threads = threads;
  options.max_connections = config.max_connections;
  options.max_connections_per_client = config.max_connections_per_client;
  options.first_byte_timeout = config.first_byte_timeout;
  options.header_limit = config.header_limit;
  options.body_limit = config.body_limit;
  options.request_timeout = config.request_timeout;
  options.handling_timeout = config.handling_timeout;
  options.idle_timeout = config.idle_timeout;
  options.shutdown_timeout = config.shutdown_timeout;
  options.drain_delay = config.drain_delay;
  options.trusted_proxies = config.trusted_proxies;
  options.trace_sample_ratio = config.trace_sample_ratio;
  options.cors.origins = config.cors_origins;
  options.cors.max_age = std::chrono::duration_cast<std::chrono::seconds>(config.cors_max_age);
  options.cors.allowed_by_route = [&org_origins](const http::Router::Params& params,
                                                 std::string_view origin) {
    for (const auto& [name, value] : params) {
      if (name == "org") return org_origins.allows(value, origin);
    }
    return false;
  };
  std::atomic<bool> stopping{false};
  options.on_leave = [&leaving] {
    (void)core::notify_service_manager("STOPPING=1");
    leaving.store(true, std::memory_order_relaxed);
  };
  options.on_drain = [&revocations, &event_hub, &notification_hub, &limiter, &stopping] {
    limiter.drain();
    revocations.stop();
    event_hub.stop();
    notification_hub.stop();
    stopping.store(true, std::memory_order_relaxed);
  };
  Warming warming(threads);
  options.warm_up = [&database, &warming, pooled = config.db_pool_warm,
                     timeout = config.db_acquire_timeout](std::size_t) {
    return warm_worker(database, pooled, timeout, warming);
  };
  core::MemoryGuard memory_guard({config.memory_high_water}, metrics);
  spdlog::info("memory guard: heavy requests get 503 above {} MiB ({} now, read from {})",
               memory_guard.high_water() >> 20, memory_guard.bytes() >> 20,
               core::MemoryGuard::source());
  options.memory_guard = &memory_guard;
  http::Server server(options, router, metrics);
  try {
    server.bind();
  } catch (const std::exception& e) {
    spdlog::error("cannot listen on {}:{}: {}", config.listen_host, config.listen_port, e.what());
    return kExitFailure;
  }
  spdlog::info("serving on http://{}:{} ({}) with {} worker threads", config.listen_host,
               server.port(), config.serves_api() ? "the API" : "health and metrics only", threads);
  if (runner) {
    std::string queues;
    for (const auto& [queue, concurrency] : config.job_queues)
      queues += fmt::format("{}{} ({} at once)", queues.empty() ? "" : ", ", queue, concurrency);
    spdlog::info("running jobs of {} as {}", queues, runner->owner());
  }
  // systemd's Type=notify (and the test harness, which learns the port the kernel chose from it).
  if (!core::notify_service_manager(
          fmt::format("READY=1\nMAINPID={}\nSTATUS=serving on http://{}:{}", ::getpid(),
                      config.listen_host, server.port())))
    spdlog::warn("could not tell the service manager (NOTIFY_SOCKET) that Liftoff is ready");
  // Each long-running task of the process, with its failure count.
  const BackgroundTask revocation_task(metrics, "session revocation listener"),
      events_task(metrics, "record event hub"), notifications_task(metrics, "notification hub"),
      housekeeping_task(metrics, "housekeeping"),
      origins_task(metrics, "organizations' CORS origins"),
      uses_task(metrics, "credential use recording"), rewrite_task(metrics, "record rewriting"),
      replicas_task(metrics, "replica watching"), wakeups_task(metrics, "job wake-ups"),
      usage_task(metrics, "usage metering"), job_quota_task(metrics, "jobs per day quota"),
      sealer_task(metrics, "audit sealing"), outbox_task(metrics, "shard outbox relay"),
      explain_task(metrics, "slow statement plans");
  auto spawned = [](const BackgroundTask& task) {
    return core::failure_handler(task.name, task.failures);
  };
  auto cut = server.run(
      [&](std::size_t worker, asio::io_context& io) {
        if (runner) runner->start(worker, threads, io, stopping);
        if (config.rate_limits) limiter.start_worker(worker, io.get_executor());
        // One listener per process keeps the session cache honest (see SessionRevocationListener).
        if (worker == 0) {
          asio::co_spawn(io, job_queue.run(stopping), spawned(wakeups_task));
          asio::co_spawn(io, revocations.run(), spawned(revocation_task));
          asio::co_spawn(io, event_hub.run(), spawned(events_task));
          asio::co_spawn(io, sealer.run(stopping), spawned(sealer_task));
          if (config.serves_api())
            asio::co_spawn(io, notification_hub.run(), spawned(notifications_task));
          asio::co_spawn(io, org_origins.run(stopping), spawned(origins_task));
          asio::co_spawn(io, database.watch_replicas(stopping), spawned(replicas_task));
          asio::co_spawn(io, database.explain_slow(stopping), spawned(explain_task));
          asio::co_spawn(
              io,
              housekeeping(housekeeping_task, org_service, identity_service, record_service,
                           notifications, stopping, config.org_purge_interval,
                           config.notification_retention, config.db_query_timeout),
              spawned(housekeeping_task));
          asio::co_spawn(
              io,
              record_credential_uses(uses_task, identity_service, stopping,
                                     config.credential_use_flush, config.db_query_timeout),
              spawned(uses_task));
          asio::co_spawn(
              io, rewrite_records(rewrite_task, record_service, stopping, config.db_query_timeout),
              spawned(rewrite_task));
          asio::co_spawn(io, meter.run(stopping, [&server] { return server.drained(); }),
                         spawned(usage_task));
          if (database.shards().size() > 1) {
            // What a relay right after its commit could not write (a shard down, a process
            // killed in between).
            asio::co_spawn(io,
                           every(outbox_task, kOutboxSweep, std::chrono::milliseconds(250),
                                 stopping, AtStop::leave,
                                 [&database]() -> asio::awaitable<void> {
                                   auto swept = co_await database.outbox().sweep();
                                   if (!swept)
                                     spdlog::warn("shard outbox relay: {}",
                                                  swept.error().for_log());
                                 }),
                           spawned(outbox_task));
          }
          if (runner) {
            asio::co_spawn(io,
                           every(job_quota_task, config.job_quota_refresh,
                                 std::min(config.job_quota_refresh, std::chrono::milliseconds(250)),
                                 stopping, AtStop::leave,
                                 [&job_quota, &suspended_orgs]() -> asio::awaitable<void> {
                                   co_await job_quota.measure_due();
                                   auto read = co_await suspended_orgs.refresh();
                                   if (!read)
                                     spdlog::warn("suspended organizations: {}",
                                                  read.error().for_log());
                                 }),
                           spawned(job_quota_task));
          }
        }
      },
      [&database, &limiter](std::size_t worker, asio::io_context&) {
        limiter.stop_worker(worker);
        database.stop_worker(worker);
      });
  spdlog::info("stopped{}",
               cut ? fmt::format(" ({} connections cut at the shutdown deadline)", cut) : "");
  spdlog::shutdown();
  return 0;
}

// `migrate up` or `migrate status` of one cluster, on `conn`.
asio::awaitable<int> migrate_cluster(db::Connection& conn, bool up) {
  auto deadline = db::deadline_after(kMigrationTimeout);
  if (up) {
    auto applied = co_await db::migrate_up(conn, db::embedded_migrations(), deadline);
    if (!applied) {
      spdlog::error("{}", applied.error().for_log());
      co_return kExitFailure;
    }
    std::cout << (applied->empty() ? "schema is current"
                                   : fmt::format("applied {} migration(s)", applied->size()))
              << "\n";
    co_return 0;
  }
  auto status = co_await db::schema_status(conn, db::embedded_migrations(), deadline);
  if (!status) {
    spdlog::error("{}", status.error().for_log());
    co_return kExitFailure;
  }
  for (const auto& m : status->migrations) {
    std::cout << fmt::format("{:04d} {:<32} {}\n", m.version, m.name,
                             m.applied ? "applied " + m.applied_at : "pending");
  }
  std::cout << fmt::format("schema version {} of {} ({} pending)\n", status->applied_version,
                           status->known_version, status->pending());
  co_return 0;
}

int migrate(const core::Config& config, bool up) {
  auto all = clusters(config);
  if (!all) {
    spdlog::error("{}", all.error().for_log());
    return kExitFailure;
  }
  // Every cluster has the same schema (docs/decisions/0021-tenant-shards.md), each migrated
  // under its own lock; the first that fails ends the command.
  for (const auto& cluster : *all) {
    if (all->size() > 1)
      std::cout << (cluster.name == "main" ? "control database and shard main"
                                           : "shard " + cluster.name)
                << ":\n";
    auto done = block_on([&]() -> asio::awaitable<int> {
      auto conn = co_await connect(cluster.direct);
      if (!conn) {
        spdlog::error("shard {}: {}", cluster.name, conn.error().for_log());
        co_return kExitFailure;
      }
      co_return co_await migrate_cluster(**conn, up);
    }());
    if (done != 0) return done;
  }
  return 0;
}

// One cluster as `liftoff shard status` reports it.
struct ShardReport {
  std::string name;
  bool configured = true;  // false: the directory names it, the configuration does not
  std::string problem;     // empty when it answered
  std::int64_t orgs = 0, deleted_orgs = 0, database_bytes = 0;
  int schema_version = 0, known_version = 0;
  db::DatabaseActivity activity;
  // Its part of every answering shard's transactions and statement time (0-1).
  double transaction_share = 0, time_share = 0;
};

// Each answering shard's part of the shards' transactions and statement time.
void share_activity(std::vector<ShardReport>& reports) {
  double transactions = 0, time = 0;
  for (const auto& r : reports) {
    transactions += static_cast<double>(r.activity.transactions);
    time += r.activity.active_ms;
  }
  for (auto& r : reports) {
    if (transactions > 0)
      r.transaction_share = static_cast<double>(r.activity.transactions) / transactions;
    if (time > 0) r.time_share = r.activity.active_ms / time;
  }
}

// "12.3 MB": a size for people.
std::string human_bytes(std::int64_t bytes) {
  static constexpr std::array<const char*, 5> kUnits = {"B", "kB", "MB", "GB", "TB"};
  auto value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1000 && unit + 1 < kUnits.size()) {
    value /= 1000;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, kUnits[unit]);
}

// `liftoff shard status`: every cluster with its organizations (from the directory), its size on
// disk and its schema. Exit 1 when a cluster does not answer or the directory places organizations
// on a shard that is not configured (they could not be served).
int shard_status(const core::Config& config, bool as_json) {
  auto all = clusters(config);
  if (!all) {
    spdlog::error("{}", all.error().for_log());
    return kExitFailure;
  }
  std::vector<ShardReport> reports;
  Result<std::vector<identity::ShardOrgs>> directory =
      make_error(Errc::unavailable, "the control database did not answer");
  block_on([&]() -> asio::awaitable<void> {
    auto deadline = db::deadline_after(std::chrono::seconds(30));
    for (const auto& cluster : *all) {
      // Statements, not `?:` around co_await (GCC 12 miscompiles those).
      auto& report = reports.emplace_back(ShardReport{cluster.name});
      auto conn = co_await connect(cluster.direct);
      if (!conn) {
        report.problem = conn.error().for_log();
        continue;
      }
      auto bytes = co_await db::database_bytes(**conn, deadline);
      if (!bytes) {
        report.problem = bytes.error().for_log();
        continue;
      }
      auto schema = co_await db::schema_status(**conn, db::embedded_migrations(), deadline);
      if (!schema) {
        report.problem = schema.error().for_log();
        continue;
      }
      auto activity = co_await db::database_activity(**conn, deadline);
      if (!activity) {
        report.problem = activity.error().for_log();
        continue;
      }
      report.activity = *activity;
      report.database_bytes = *bytes;
      report.schema_version = schema->applied_version;
      report.known_version = schema->known_version;
      if (cluster.name == "main") directory = co_await identity::orgs_per_shard(**conn, deadline);
    }
  }());
  bool healthy = static_cast<bool>(directory);
  for (const auto& shard : directory ? *directory : std::vector<identity::ShardOrgs>{}) {
    auto report = std::find_if(reports.begin(), reports.end(),
                               [&](const ShardReport& r) { return r.name == shard.shard; });
    if (report == reports.end()) {
      report = reports.insert(reports.end(), {shard.shard, false, "not configured"});
    }
    report->orgs = shard.orgs;
    report->deleted_orgs = shard.deleted;
  }
  for (const auto& r : reports) healthy = healthy && r.problem.empty();
  share_activity(reports);

  if (as_json) {
    json::array shards;
    for (const auto& r : reports) {
      json::object o{{"name", r.name},
                     {"configured", r.configured},
                     {"orgs", r.orgs},
                     {"deleted_orgs", r.deleted_orgs}};
      if (r.configured && r.problem.empty()) {
        o["database_bytes"] = r.database_bytes;
        o["schema_version"] = r.schema_version;
        o["known_version"] = r.known_version;
        o["transactions"] = r.activity.transactions;
        o["statement_ms"] = r.activity.active_ms;
        o["transaction_share"] = r.transaction_share;
        o["statement_time_share"] = r.time_share;
      }
      if (!r.problem.empty()) o["problem"] = r.problem;
      shards.push_back(std::move(o));
    }
    json::object out{{"shards", std::move(shards)}};
    if (!directory) out["directory_problem"] = directory.error().for_log();
    std::cout << json::serialize(out) << "\n";
    return healthy ? 0 : kExitFailure;
  }
  std::cout << fmt::format("{:<33} {:>10} {:>10} {:>12} {:>9} {:>7} {:>7}\n", "shard", "orgs",
                           "deleted", "database", "schema", "xacts", "time");
  for (const auto& r : reports) {
    std::cout << fmt::format("{:<33} {:>10} {:>10} ", r.name, r.orgs, r.deleted_orgs);
    if (!r.problem.empty()) {
      std::cout << "ERROR: " << r.problem << "\n";
      continue;
    }
    std::cout << fmt::format("{:>12} {:>9} {:>6.1f}% {:>6.1f}%\n", human_bytes(r.database_bytes),
                             fmt::format("{}/{}", r.schema_version, r.known_version),
                             100 * r.transaction_share, 100 * r.time_share);
  }
  if (!directory)
    std::cout << "ERROR: the shard directory could not be read: " << directory.error().for_log()
              << "\n";
  std::cout << "xacts, time: each shard's part of the transactions and of the time spent executing "
               "statements, since each database's statistics were reset\n";
  return healthy ? 0 : kExitFailure;
}

// `liftoff db advise`: for each cluster's primary, the indexes worth creating for the statements
// that took the most database time (db/advisor.hpp). Exit 1 when a cluster could not be advised on.
struct AdviseCommand {
  bool json = false;
  std::size_t top = db::AdviceOptions{}.top_statements;
  double min_gain = db::AdviceOptions{}.min_gain;
};

int db_advise(const core::Config& config, const AdviseCommand& args) {
  auto all = clusters(config);
  if (!all) {
    spdlog::error("{}", all.error().for_log());
    return kExitFailure;
  }
  db::AdviceOptions options;
  options.top_statements = args.top;
  options.min_gain = args.min_gain;
  bool healthy = true;
  json::array out;
  block_on([&]() -> asio::awaitable<void> {
    for (const auto& cluster : *all) {
      json::object report{{"cluster", cluster.name}};
      auto conn = co_await connect(cluster.direct);
      Result<db::Advice> advice = make_error(Errc::unavailable, "no connection");
      // Statements, not `?:` around co_await (GCC 12 miscompiles those).
      if (conn) {
        advice = co_await db::advise_indexes(**conn, options);
      } else {
        advice = conn.error();
      }
      if (!advice) {
        healthy = false;
        report["problem"] = advice.error().for_log();
        if (!args.json)
          std::cout << "cluster " << cluster.name << ": " << advice.error().for_log() << "\n";
        out.push_back(std::move(report));
        continue;
      }
      for (auto& [key, value] : db::advice_json(*advice)) report[key] = std::move(value);
      if (!args.json) {
        std::cout << fmt::format(
            "cluster {}: {} statements, {:.0f} ms of execution since statistics were reset\n",
            cluster.name, advice->statements, advice->statements_ms);
        if (advice->indexes.empty()) std::cout << "  no index would help them enough\n";
        for (const auto& index : advice->indexes) {
          std::cout << fmt::format(
              "  {};\n    saves an estimated {:.0f}% of their planned cost "
              "(weighted by time); about {}\n",
              index.create, 100 * index.gain, human_bytes(index.estimated_bytes));
          for (std::size_t i = 0; i < index.statements.size(); ++i)
            std::cout << fmt::format("    {:>3.0f}% cheaper: {}\n", 100 * index.statement_gains[i],
                                     index.statements[i].substr(0, 100));
        }
        for (const auto& note : advice->notes) std::cout << "  note: " << note << "\n";
      }
      out.push_back(std::move(report));
    }
  }());
  if (args.json) std::cout << json::serialize(json::object{{"clusters", std::move(out)}}) << "\n";
  return healthy ? 0 : kExitFailure;
}

// An --org value as an organization id; nullopt (said on stderr) when it is not one.
std::optional<db::Uuid> org_option(const std::string& text) {
  auto org = db::Uuid::parse(text);
  if (!org) std::cerr << "error: --org: expected an organization id (a UUID)\n";
  return org;
}

int embedded(const core::Config& config, const std::string& action) {
  auto clusters = embedded_clusters(config);
  auto where = [](const db::EmbeddedPostgres& pg) {
    return pg.running() ? "running on 127.0.0.1:" + std::to_string(pg.options().port)
                        : std::string("stopped");
  };
  if (action == "status") {
    for (const auto& [name, pg] : clusters) {
      std::string label = name == "main" ? "primary" : "shard " + name + " primary";
      std::cout << label << ": " << where(pg) << " (" << pg.options().data_dir.string() << ")\n";
      for (const auto& replica : pg.replicas()) {
        std::cout << (name == "main" ? "" : "shard " + name + " ") << "replica: " << where(replica)
                  << " (" << replica.options().data_dir.string() << ")\n";
      }
    }
    return 0;
  }
  // Shards stop before the control cluster, which starts first.
  if (action == "stop") std::reverse(clusters.begin(), clusters.end());
  for (auto& [name, pg] : clusters) {
    auto done = action == "start" ? pg.start() : pg.stop();
    if (!done) {
      spdlog::error("{}{}", name == "main" ? "" : "shard " + name + ": ", done.error().for_log());
      return kExitFailure;
    }
  }
  std::cout << (action == "start" ? "started" : "stopped") << "\n";
  return 0;
}

// `liftoff jobs ...`: what an operator does with jobs of every organization.
struct JobsCommand {
  std::string kind, args = "{}", queue, org, state, id;
  std::size_t count = 1;
  std::size_t rate = 0;  // enqueue: jobs per second, in batches every 100 ms (0: at once)
  int limit = 50;
};

// A command's own Database: one event loop, the admin's application name, a minute a statement;
// every cluster's primary, reached directly, each org routed to its shard as `serve` routes it.
// Null when the configuration names no usable clusters (said in the log).
std::unique_ptr<db::Database> command_database(const core::Config& config,
                                               core::Registry& metrics) {
  auto all = clusters(config);
  if (!all) {
    spdlog::error("{}", all.error().for_log());
    return nullptr;
  }
  db::DatabaseOptions options;
  options.connect =
      db::ConnectOptions{all->front().direct, config.db_query_timeout * 2, "liftoff-admin"};
  options.query_timeout = std::chrono::seconds(60);
  for (auto shard = std::next(all->begin()); shard != all->end(); ++shard)
    options.shards.push_back({shard->name, shard->direct, {}});
  auto database = std::make_unique<db::Database>(options, metrics, 1);
  route_by_shard(*database);
  return database;
}

// Runs an operator command's work on `database` (from command_database) to completion; its result
// is the exit status.
int run_command(db::Database& database, asio::awaitable<int> work) {
  asio::io_context io(1);
  auto status = asio::co_spawn(io, std::move(work), asio::use_future);
  io.run();
  database.stop_worker(0);
  return status.get();
}

// Recomputes one organization's audit hash chain, on its shard; exit 0 when intact, 1 when not, or
// when the org has no chain anywhere (or on error).
int audit_verify(const core::Config& config, const std::string& org_text) {
  auto org_id = org_option(org_text);
  if (!org_id) return kExitUsage;
  core::Registry metrics;
  auto opened = command_database(config, metrics);
  if (!opened) return kExitFailure;
  auto& database = *opened;
  auto run = [&]() -> asio::awaitable<int> {
    // The directory's shard first. A purged org is no longer in the directory while its chain
    // outlives it on the shard it was on: then every other shard in turn.
    auto lookup = db::Scope::background(db::Tenant::org(*org_id), std::chrono::minutes(1));
    auto home = co_await database.shard_of(*org_id, lookup);
    if (!home) {
      spdlog::error("{}", home.error().for_log());
      co_return kExitFailure;
    }
    std::vector<std::size_t> shards{*home};
    for (std::size_t shard = 0; shard < database.shards().size(); ++shard) {
      if (shard != *home) shards.push_back(shard);
    }
    for (auto shard : shards) {
      auto scope = db::Scope::background(db::Tenant::every_org_on(shard), std::chrono::minutes(1));
      auto conn = co_await database.acquire(db::Intent::latest, scope);
      if (!conn) {
        spdlog::error("{}", conn.error().for_log());
        co_return kExitFailure;
      }
      auto report = co_await audit::verify(**conn, *org_id, config.db_query_timeout);
      if (!report) {
        spdlog::error("{}", report.error().for_log());
        co_return kExitFailure;
      }
      if (!report->chained) continue;
      const auto where =
          database.shards().size() > 1 ? " (on shard " + database.shards()[shard] + ")" : "";
      if (report->intact()) {
        std::cout << fmt::format(
            "org {}: {} events sealed, hash chain intact; {} committed events not sealed yet{}\n",
            org_text, report->events, report->unsealed, where);
        co_return 0;
      }
      std::cout << fmt::format(
          "org {}: TAMPERED at event {}: {} ({} events before it verified){}\n", org_text,
          *report->first_bad_seq, report->problem, report->events, where);
      co_return kExitFailure;
    }
    std::cout << fmt::format("org {}: no audit chain (no such organization, on any shard)\n",
                             org_text);
    co_return kExitFailure;
  };
  return run_command(database, run());
}

// How a move may disturb the org and the shards it moves between: the options `shard move` and
// `shard rebalance` share.
struct MovePace {
  int fence_limit_ms = static_cast<int>(shards::MoveOptions{}.fence_limit.count());
  double work_share = shards::MoveOptions{}.work_share;

  void add_options(CLI::App& command) {
    command
        .add_option("--fence-limit", fence_limit_ms,
                    "how long the organization's writes may wait for the switch, in "
                    "milliseconds (default 3000)")
        ->check(CLI::Range(100, 60'000));
    command
        .add_option("--work-share", work_share,
                    "the share of the time the copy and the clean-up work, pausing after each "
                    "batch for the rest; 1 for no pause (default 0.5)")
        ->check(CLI::Range(0.01, 1.0));
  }
  void apply_to(shards::MoveOptions& options) const {
    options.fence_limit = std::chrono::milliseconds(fence_limit_ms);
    options.work_share = work_share;
  }
};

struct MoveCommand {
  std::string org, to;
  bool json = false, abort = false;
  MovePace pace;
};

// The mover's progress on stderr: a bar redrawn in place on a terminal, a line per step and table
// otherwise.
class MoveProgressView {
 public:
  explicit MoveProgressView(bool terminal) : terminal_(terminal) {}
  void show(const shards::MoveProgress& p) {
    auto label = p.table.empty() ? p.step : p.step + " " + p.table;
    const auto now = std::chrono::steady_clock::now();
    if (label == label_ && now - shown_ < std::chrono::milliseconds(100) && p.done != p.total)
      return;
    if (!terminal_) {
      if (label != label_) std::cerr << label << "\n";
      label_ = label;
      return;
    }
    if (label != label_ && !label_.empty()) std::cerr << "\n";
    label_ = label;
    shown_ = now;
    if (p.total <= 0) {
      std::cerr << fmt::format("\r{:<32} {}", label, p.done) << std::flush;
      return;
    }
    constexpr int kWidth = 30;
    auto filled = static_cast<int>(kWidth * p.done / p.total);
    std::cerr << fmt::format("\r{:<32} [{}{}] {:>3}% {}/{}", label, std::string(filled, '#'),
                             std::string(kWidth - filled, '.'), 100 * p.done / p.total, p.done,
                             p.total)
              << std::flush;
  }
  void finish() const {
    if (terminal_ && !label_.empty()) std::cerr << "\n";
  }

 private:
  bool terminal_;
  std::string label_;
  std::chrono::steady_clock::time_point shown_{};
};

// Records the move in the org's audit log (on its new shard), as the system.
int audit_move(const core::Config& config, const db::Uuid& org, const shards::MoveReport& report) {
  core::Registry metrics;
  auto opened = command_database(config, metrics);
  if (!opened) return kExitFailure;
  auto& database = *opened;
  auto run = [&]() -> asio::awaitable<int> {
    auto scope = db::Scope::background(db::Tenant::org(org), std::chrono::minutes(1));
    auto tx = co_await database.begin(scope);
    if (!tx) {
      spdlog::error("recording the move in the audit log: {}", tx.error().for_log());
      co_return kExitFailure;
    }
    audit::Change change{"org.moved", "org", org.to_string(),
                         json::serialize(json::object{{"shard", report.source}}),
                         json::serialize(json::object{{"shard", report.target}})};
    auto appended = co_await audit::append_and_commit(*tx, scope, change);
    if (appended) appended = co_await audit::seal_committed(database, scope);
    if (!appended) {
      spdlog::error("recording the move in the audit log: {}", appended.error().for_log());
      co_return kExitFailure;
    }
    co_return 0;
  };
  return run_command(database, run());
}

// `liftoff shard move --org ID --to SHARD [--json] [--abort]`: moves one organization to another
// shard while it keeps serving, or resumes or rolls back its unfinished move
// (docs/decisions/0021-tenant-shards.md).
int shard_move(const core::Config& config, const MoveCommand& args) {
  auto org = org_option(args.org);
  if (!org) return kExitUsage;
  auto all = clusters(config);
  if (!all) {
    spdlog::error("{}", all.error().for_log());
    return kExitFailure;
  }
  std::vector<shards::ClusterAddress> addresses;
  for (const auto& cluster : *all) addresses.push_back({cluster.name, cluster.direct});
  MoveProgressView view(!args.json && isatty(STDERR_FILENO) == 1);
  shards::MoveOptions options;
  args.pace.apply_to(options);
  if (!args.json) options.progress = [&](const shards::MoveProgress& p) { view.show(p); };
  shards::Mover mover(std::move(addresses), options);
  if (args.abort) {
    auto aborted = block_on(mover.abort(*org));
    if (!aborted) {
      std::cerr << "error: " << aborted.error().for_log() << "\n";
      return kExitFailure;
    }
    std::cout << fmt::format("org {}: the move is rolled back\n", args.org);
    return 0;
  }
  auto report = block_on(mover.move(*org, args.to));
  view.finish();
  if (!report) {
    std::cerr << "error: " << report.error().for_log() << "\n";
    return kExitFailure;
  }
  if (report->moved && audit_move(config, *org, *report) != 0) return kExitFailure;
  auto ms = [](std::chrono::milliseconds d) { return static_cast<std::int64_t>(d.count()); };
  if (args.json) {
    json::object tables;
    for (const auto& t : report->tables) tables[t.name] = t.rows;
    std::cout << json::serialize(json::object{{"org", args.org},
                                              {"source", report->source},
                                              {"target", report->target},
                                              {"moved", report->moved},
                                              {"resumed", report->resumed},
                                              {"rows", std::move(tables)},
                                              {"changes_applied", report->changes_applied},
                                              {"audit_head", report->audit_head},
                                              {"fence_attempts", report->fence_attempts},
                                              {"copy_ms", ms(report->copy)},
                                              {"catch_up_ms", ms(report->catch_up)},
                                              {"fence_ms", ms(report->fence)},
                                              {"clean_up_ms", ms(report->clean_up)},
                                              {"total_ms", ms(report->total)}})
              << "\n";
    return 0;
  }
  if (!report->moved) {
    std::cout << fmt::format("org {}: on shard {} already\n", args.org, report->target);
    return 0;
  }
  std::int64_t rows = 0;
  for (const auto& t : report->tables) rows += t.rows;
  std::cout << fmt::format(
      "org {}: moved from {} to {}{}: {} rows, audit chain head {} equal on both; "
      "{} changes caught up; writes fenced {} ms; total {} ms\n",
      args.org, report->source, report->target, report->resumed ? " (resumed)" : "", rows,
      report->audit_head, report->changes_applied, ms(report->fence), ms(report->total));
  return 0;
}

struct RebalanceCommand {
  bool dry_run = false, json = false;
  std::size_t max_moves = 1;
  int window_hours = 24;
  MovePace pace;
};

// `liftoff shard rebalance [--dry-run] [--max-moves N]`: plans moves that bring the open shards'
// loads (each org's API requests over the window, from the usage meter) closer to even, prints
// the plan, and runs it one move after the other.
int shard_rebalance(const core::Config& config, const RebalanceCommand& args) {
  auto all = clusters(config);
  if (!all) {
    spdlog::error("{}", all.error().for_log());
    return kExitFailure;
  }
  const auto since = std::chrono::time_point_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now() - std::chrono::hours(args.window_hours));
  std::vector<shards::ShardLoad> loads;
  auto measured = block_on([&]() -> asio::awaitable<Result<void>> {
    for (const auto& cluster : *all) {
      auto conn = co_await connect(cluster.direct);
      if (!conn) co_return conn.error();
      auto requests = co_await usage::requests_per_org(**conn, since,
                                                       db::deadline_after(std::chrono::minutes(1)));
      if (!requests) co_return requests.error();
      auto& shard = loads.emplace_back();
      shard.name = cluster.name;
      shard.reserved = std::find(config.shard_reserved.begin(), config.shard_reserved.end(),
                                 cluster.name) != config.shard_reserved.end();
      for (const auto& org : *requests)
        shard.orgs.push_back({org.org, static_cast<double>(org.requests)});
    }
    co_return Result<void>{};
  }());
  if (!measured) {
    spdlog::error("measuring the shards' loads: {}", measured.error().for_log());
    return kExitFailure;
  }
  shards::RebalanceOptions options;
  options.max_moves = args.max_moves;
  auto plan = shards::plan_rebalance(loads, options);
  if (args.json) {
    json::array moves;
    for (const auto& m : plan)
      moves.push_back(json::object{
          {"org", m.org.to_string()}, {"from", m.from}, {"to", m.to}, {"requests", m.load}});
    std::cout << json::serialize(json::object{{"plan", std::move(moves)}}) << "\n";
  } else {
    for (const auto& shard : loads) {
      double total = 0;
      for (const auto& org : shard.orgs) total += org.load;
      std::cout << fmt::format("shard {:<24} {:>12.0f} requests in {} h{}\n", shard.name, total,
                               args.window_hours, shard.reserved ? " (reserved)" : "");
    }
    if (plan.empty()) std::cout << "balanced: nothing to move\n";
    for (const auto& m : plan)
      std::cout << fmt::format("move org {} ({:.0f} requests) from {} to {}\n", m.org.to_string(),
                               m.load, m.from, m.to);
  }
  if (args.dry_run) return 0;
  for (const auto& m : plan) {
    MoveCommand move{m.org.to_string(), m.to, args.json, false, args.pace};
    if (auto status = shard_move(config, move); status != 0) return status;
  }
  return 0;
}

struct PlanCommand {
  std::string org, plan, limits;
  bool force = false;
};

// `liftoff orgs plan --org ID [--plan NAME [--limits JSON] [--force]]`: prints the org's plan, or
// sets it (the operator's way to Enterprise and its contract's limits; audited as the system).
int plan_command(const core::Config& config, const PlanCommand& args) {
  auto org = org_option(args.org);
  if (!org) return kExitUsage;
  core::Registry metrics;
  auto opened = command_database(config, metrics);
  if (!opened) return kExitFailure;
  auto& database = *opened;
  records::RecordService records(database, {});
  jobs::Queue queue(database);
  webhooks::WebhookService hooks(database, queue, metrics, {});
  identity::OrgOptions org_options;
  org_options.tenant_holdings = holdings_of(records, hooks);
  identity::OrgService orgs(database, org_options);
  auto scope = db::Scope::background(db::Tenant::org(*org), std::chrono::minutes(5));
  auto run = [&]() -> asio::awaitable<int> {
    // Not a conditional expression of two co_awaits: GCC 12 miscompiles that.
    Result<identity::OrgService::PlanState> state = make_error(Errc::internal, "not run");
    if (args.plan.empty()) {
      const identity::Access access{*org, identity::Role::owner};
      state = co_await orgs.plan(scope, access);
    } else {
      state = co_await orgs.set_plan(scope, args.plan, args.limits, args.force);
      if (state) {
        // Chained before the command ends: no server may be running to seal it.
        auto sealed = co_await audit::seal_committed(database, scope);
        if (!sealed) spdlog::warn("sealing the audit event: {}", sealed.error().for_log());
      }
    }
    if (!state) {
      std::cerr << "error: " << state.error().detail << "\n";
      for (const auto& f : state.error().fields)
        std::cerr << "  " << f.field << ": " << f.message << "\n";
      co_return state.error().code == Errc::validation_failed ? kExitUsage : kExitFailure;
    }
    std::cout << fmt::format("org {}: plan {}\n", args.org, state->plan->name);
    for (auto limit : plans::kLimits) {
      const auto& held = state->holdings[limit];
      std::cout << fmt::format("  {:<24} {:>14}{}\n", plans::to_string(limit), state->limits[limit],
                               held ? fmt::format("  ({} in use)", *held) : "");
    }
    co_return 0;
  };
  return run_command(database, run());
}

// `liftoff operators grant|revoke --email EMAIL` and `liftoff operators list`: the platform
// operators, who may use the operators' console (docs/decisions/0025-operators-console.md).
int operators_command(const core::Config& config, const std::string& action,
                      const std::string& email) {
  core::Registry metrics;
  auto opened = command_database(config, metrics);
  if (!opened) return kExitFailure;
  auto& database = *opened;
  identity::PlatformService platform(database);
  auto scope = db::Scope::background(db::Tenant::control(), std::chrono::minutes(1));
  auto failed = [](const Error& error) {
    std::cerr << "error: " << error.detail << "\n";
    return error.code == Errc::not_found || error.code == Errc::validation_failed ? kExitUsage
                                                                                  : kExitFailure;
  };
  auto run = [&]() -> asio::awaitable<int> {
    if (action == "grant") {
      auto granted = co_await platform.grant(scope, email);
      if (!granted) co_return failed(granted.error());
      spdlog::info("platform operator granted: {}", granted->user.email);
      std::cout << fmt::format("{} is a platform operator (since {})\n", granted->user.email,
                               core::format_rfc3339(granted->granted_at));
    } else if (action == "revoke") {
      auto revoked = co_await platform.revoke(scope, email);
      if (!revoked) co_return failed(revoked.error());
      if (*revoked) spdlog::info("platform operator revoked: {}", email);
      std::cout << fmt::format(
          "{} {}\n", email,
          *revoked ? "is no longer a platform operator" : "was not a platform operator");
    } else {
      auto all = co_await platform.operators(scope);
      if (!all) co_return failed(all.error());
      for (const auto& op : *all)
        std::cout << fmt::format("{}  {}  since {}\n", op.user.id.to_string(), op.user.email,
                                 core::format_rfc3339(op.granted_at));
    }
    co_return 0;
  };
  return run_command(database, run());
}

int jobs_command(const core::Config& config, const std::string& action, const JobsCommand& args) {
  std::optional<db::Uuid> org;
  if (!args.org.empty()) {
    org = org_option(args.org);
    if (!org) return kExitUsage;
  }
  core::Registry metrics;
  auto opened = command_database(config, metrics);
  if (!opened) return kExitFailure;
  auto& database = *opened;
  jobs::Queue queue(database);
  jobs::JobStore store(queue);
  auto scope = db::Scope::background(db::Tenant::every_org(), std::chrono::minutes(5));
  // Where the jobs asked about are: the --org's shard, else every shard.
  std::vector<db::Scope> where;
  for (std::size_t shard = 0; shard < database.shards().size(); ++shard)
    where.push_back(scope.for_tenant(db::Tenant::every_org_on(shard)));
  if (org) where = {scope.for_tenant(db::Tenant::org(*org))};
  auto print = [](const jobs::Job& job) {
    std::cout << fmt::format("{} {} {:<10} {:<10} {} attempt {}/{}{}\n", job.id.to_string(),
                             job.org_id.to_string(), jobs::to_string(job.state), job.queue,
                             job.kind, job.attempt, job.max_attempts,
                             job.last_error ? " (" + *job.last_error + ")" : "");
  };
  auto run = [&]() -> asio::awaitable<int> {
    if (action == "enqueue") {
      jobs::NewJob job;
      job.kind = args.kind;
      if (!args.queue.empty()) job.queue = args.queue;
      boost::json::error_code ec;
      auto parsed = boost::json::parse(args.args, ec);
      if (ec || !parsed.is_object()) {
        std::cerr << "error: --args: expected a JSON object\n";
        co_return kExitUsage;
      }
      job.args = parsed.as_object();
      if (args.count < 1 || args.count > 1'000'000) {
        std::cerr << "error: --count: expected 1-1000000\n";
        co_return kExitUsage;
      }
      auto target = org ? scope.for_tenant(db::Tenant::org(*org)) : scope;
      // At once: 5,000 jobs a statement. At a rate: a tenth of a second's jobs every 100 ms, each
      // batch at its time from the start (a late one does not push back those after it).
      std::size_t per_batch = args.rate > 0 ? std::max<std::size_t>(1, args.rate / 10) : 5'000;
      auto started = std::chrono::steady_clock::now();
      auto executor = co_await asio::this_coro::executor;
      asio::steady_timer pace(executor);
      for (std::size_t done = 0; done < args.count;) {
        if (args.rate > 0) {
          pace.expires_at(started + std::chrono::microseconds(done * 1'000'000 / args.rate));
          co_await pace.async_wait(asio::use_awaitable);
        }
        std::vector<jobs::NewJob> batch(std::min(per_batch, args.count - done), job);
        auto ids = co_await queue.enqueue(target, batch);
        if (!ids) {
          std::cerr << "error: " << ids.error().for_log() << "\n";
          for (const auto& f : ids.error().fields)
            std::cerr << "  " << f.field << ": " << f.message << "\n";
          co_return ids.error().code == Errc::validation_failed ? kExitUsage : kExitFailure;
        }
        done += batch.size();
      }
      std::cout << fmt::format("enqueued {} job(s) of kind {}\n", args.count, job.kind);
      co_return 0;
    }
    if (action == "list") {
      jobs::JobStore::ListQuery query;
      query.org = org;
      if (!args.state.empty()) {
        query.state = jobs::parse_state(args.state);
        if (!query.state) {
          std::cerr << "error: --state: expected ready, running, completed, discarded or "
                       "cancelled\n";
          co_return kExitUsage;
        }
      }
      if (!args.queue.empty()) query.queue = args.queue;
      query.limit = std::clamp(args.limit, 1, 1000);
      // One org's jobs are on its shard; every org's, on every shard: newest first over all.
      std::vector<jobs::Job> listed;
      for (const auto& target : where) {
        auto found = co_await store.list(target, query);
        if (!found) {
          std::cerr << "error: " << found.error().for_log() << "\n";
          co_return kExitFailure;
        }
        listed.insert(listed.end(), found->begin(), found->end());
      }
      std::sort(listed.begin(), listed.end(),
                [](const jobs::Job& a, const jobs::Job& b) { return b.id.bytes < a.id.bytes; });
      if (listed.size() > static_cast<std::size_t>(query.limit))
        listed.resize(static_cast<std::size_t>(query.limit));
      for (const auto& job : listed) print(job);
      co_return 0;
    }
    if (action == "stats") {
      auto stats = co_await store.stats();
      if (!stats) {
        std::cerr << "error: " << stats.error().for_log() << "\n";
        co_return kExitFailure;
      }
      for (const auto& s : *stats)
        std::cout << fmt::format("{}: {} ready, {} scheduled, {} running, oldest ready {:.1f} s\n",
                                 s.queue, s.ready, s.scheduled, s.running, s.oldest_ready_seconds);
      co_return 0;
    }
    auto id = db::Uuid::parse(args.id);
    if (!id) {
      std::cerr << "error: expected a job id (a UUID)\n";
      co_return kExitUsage;
    }
    auto act = action == "retry"    ? jobs::JobStore::Action::retry
               : action == "cancel" ? jobs::JobStore::Action::cancel
                                    : jobs::JobStore::Action::discard;
    // The job is on one shard: the first that knows it.
    Result<jobs::Job> job = make_error(Errc::not_found, "no such job");
    for (const auto& target : where) {
      job = co_await store.act(target, *id, act);
      if (job || job.error().code != Errc::not_found) break;
    }
    if (!job) {
      std::cerr << "error: " << job.error().detail << "\n";
      co_return kExitFailure;
    }
    print(*job);
    co_return 0;
  };
  // One event loop for the command and the wake-ups it sends the workers (through PostgreSQL)
  // before it leaves; the database's connections close on it.
  asio::io_context io(1);
  std::atomic<bool> stopped{true};
  // A named closure: the coroutine refers to it until it ends.
  auto run_then_wake = [&]() -> asio::awaitable<int> {
    int code = co_await run();
    co_await queue.run(stopped);
    co_return code;
  };
  auto status = asio::co_spawn(io, run_then_wake(), asio::use_future);
  io.run();
  database.stop_worker(0);
  return status.get();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Liftoff: the multi-tenant B2B SaaS backend"};
  cli.require_subcommand(1);
  auto* serve_cmd = cli.add_subcommand(
      "serve",
      "Serve the HTTP API (starts the embedded PostgreSQL when no database is configured)");
  auto* migrate_cmd = cli.add_subcommand("migrate", "Database schema migrations");
  migrate_cmd->require_subcommand(1);
  auto* up_cmd = migrate_cmd->add_subcommand("up", "Apply pending migrations");
  auto* status_cmd =
      migrate_cmd->add_subcommand("status", "List migrations and whether each is applied");
  auto* pg_cmd = cli.add_subcommand("pg", "The embedded private PostgreSQL (in <data_dir>/pgdata)");
  pg_cmd->require_subcommand(1);
  auto* pg_start = pg_cmd->add_subcommand("start", "Initialize if needed and start it");
  auto* pg_stop = pg_cmd->add_subcommand("stop", "Stop it (fast shutdown)");
  auto* pg_status = pg_cmd->add_subcommand("status", "Say whether it runs");
  auto* audit_cmd = cli.add_subcommand("audit", "The audit log");
  audit_cmd->require_subcommand(1);
  auto* verify_cmd = audit_cmd->add_subcommand(
      "verify", "Recompute an organization's audit hash chain and report the first tampered event");
  std::string verify_org;
  verify_cmd->add_option("--org", verify_org, "the organization's id")->required();
  auto* worker_cmd = cli.add_subcommand(
      "worker", "Run background jobs only (serve --role worker: health and metrics over HTTP)");
  auto* jobs_cmd = cli.add_subcommand("jobs", "Background jobs, across every organization");
  jobs_cmd->require_subcommand(1);
  JobsCommand jobs_args;
  auto* jobs_enqueue = jobs_cmd->add_subcommand("enqueue", "Enqueue jobs (e.g. liftoff.noop)");
  jobs_enqueue->add_option("--kind", jobs_args.kind, "the job's kind")->required();
  jobs_enqueue->add_option("--args", jobs_args.args, "its arguments, a JSON object");
  jobs_enqueue->add_option("--queue", jobs_args.queue, "its queue");
  jobs_enqueue->add_option("--count", jobs_args.count, "how many (1-1000000)");
  jobs_enqueue->add_option("--rate", jobs_args.rate,
                           "jobs per second, in batches every 100 ms (default: all at once)");
  jobs_enqueue->add_option("--org", jobs_args.org, "the organization it acts for (default: none)");
  auto* jobs_list = jobs_cmd->add_subcommand("list", "List jobs, newest first");
  jobs_list->add_option("--state", jobs_args.state,
                        "ready, running, completed, discarded or cancelled");
  jobs_list->add_option("--queue", jobs_args.queue, "only this queue");
  jobs_list->add_option("--org", jobs_args.org, "only this organization's");
  jobs_list->add_option("--limit", jobs_args.limit, "at most this many (1-1000)");
  auto* jobs_stats =
      jobs_cmd->add_subcommand("stats", "Ready, scheduled and running jobs by queue");
  std::vector<CLI::App*> jobs_actions;
  for (auto [name, help] :
       {std::pair{"retry", "Run a discarded, cancelled or waiting job again now"},
        std::pair{"cancel", "Cancel a ready or running job"},
        std::pair{"discard", "Discard a ready job"}}) {
    auto* action = jobs_cmd->add_subcommand(name, help);
    action->add_option("id", jobs_args.id, "the job's id")->required();
    jobs_actions.push_back(action);
  }
  auto* webhooks_cmd = cli.add_subcommand("webhooks", "Webhooks");
  webhooks_cmd->require_subcommand(1);
  auto* webhooks_key = webhooks_cmd->add_subcommand(
      "key", "Print a new random webhook_key (the same one goes to every process)");
  auto* orgs_cmd = cli.add_subcommand("orgs", "Organizations, as the operator");
  orgs_cmd->require_subcommand(1);
  PlanCommand plan_args;
  auto* orgs_plan = orgs_cmd->add_subcommand(
      "plan", "Print an organization's plan, limits and usage, or set its plan (--plan)");
  orgs_plan->add_option("--org", plan_args.org, "the organization's id")->required();
  orgs_plan->add_option("--plan", plan_args.plan, "free, starter, pro or enterprise");
  orgs_plan->add_option("--limits", plan_args.limits,
                        "the contract's limits over the plan's, a JSON object, e.g. "
                        "'{\"seats\": 5000}'");
  orgs_plan->add_flag("--force", plan_args.force,
                      "set it even when the organization holds more than it allows");
  auto* operators_cmd = cli.add_subcommand(
      "operators", "Platform operators: the users who may use the operators' console (/console)");
  operators_cmd->require_subcommand(1);
  std::string operator_email;
  std::vector<CLI::App*> operators_actions;
  for (auto [name, help] : {std::pair{"grant", "Make the user with --email a platform operator"},
                            {"revoke", "Take the role back from the user with --email"},
                            {"list", "List the platform operators"}}) {
    auto* action = operators_cmd->add_subcommand(name, help);
    if (std::string_view(name) != "list")
      action->add_option("--email", operator_email, "the user's email")->required();
    operators_actions.push_back(action);
  }
  auto* db_cmd = cli.add_subcommand("db", "The database, as an operator");
  db_cmd->require_subcommand(1);
  AdviseCommand advise_args;
  auto* db_advise_cmd = db_cmd->add_subcommand(
      "advise",
      "Indexes worth creating for the statements that took the most time (pg_stat_statements, "
      "hypopg; pg_qualstats where loaded), tried as hypothetical indexes on each cluster");
  db_advise_cmd->add_flag("--json", advise_args.json, "one JSON object, for scripts");
  db_advise_cmd->add_option("--top", advise_args.top, "statements considered, by total time")
      ->check(CLI::Range(1, 500));
  db_advise_cmd
      ->add_option("--min-gain", advise_args.min_gain,
                   "the least share of their weighted planned cost an index must save")
      ->check(CLI::Range(0.0, 1.0));
  auto* shard_cmd = cli.add_subcommand("shard", "Tenant shards (docs/decisions/0021)");
  shard_cmd->require_subcommand(1);
  bool shard_json = false;
  auto* shard_status_cmd = shard_cmd->add_subcommand(
      "status", "Each shard's organizations, size on disk and schema (exit 1 on a problem)");
  shard_status_cmd->add_flag("--json", shard_json, "one JSON object, for scripts");
  MoveCommand move_args;
  auto* shard_move_cmd = shard_cmd->add_subcommand(
      "move",
      "Move an organization to another shard while it keeps serving; run again to resume an "
      "unfinished move");
  shard_move_cmd->add_option("--org", move_args.org, "the organization's id")->required();
  shard_move_cmd->add_option("--to", move_args.to, "the shard to move it to");
  shard_move_cmd->add_flag("--abort", move_args.abort,
                           "roll back the organization's unfinished move instead");
  move_args.pace.add_options(*shard_move_cmd);
  shard_move_cmd->add_flag("--json", move_args.json,
                           "one JSON object when done, no progress, for scripts");
  RebalanceCommand rebalance_args;
  auto* shard_rebalance_cmd = shard_cmd->add_subcommand(
      "rebalance",
      "Move organizations from the busiest open shard to the idlest (by their API requests), a "
      "few at a time");
  shard_rebalance_cmd->add_flag("--dry-run", rebalance_args.dry_run,
                                "print the plan, move nothing");
  shard_rebalance_cmd
      ->add_option("--max-moves", rebalance_args.max_moves,
                   "moves this run makes at most (default 1)")
      ->check(CLI::Range(1, 100));
  shard_rebalance_cmd
      ->add_option("--window-hours", rebalance_args.window_hours,
                   "the hours of usage the loads are measured over (default 24)")
      ->check(CLI::Range(1, 24 * 31));
  rebalance_args.pace.add_options(*shard_rebalance_cmd);
  shard_rebalance_cmd->add_flag("--json", rebalance_args.json,
                                "the plan, then each move, as JSON objects, for scripts");
  auto* version_cmd = cli.add_subcommand("version", "Print the version");

  // Every command that reads configuration takes every config flag; one value slot per key.
  std::string config_file;
  std::vector<std::string> flag_values(core::config_keys().size());
  std::vector<std::vector<CLI::Option*>> flag_options(core::config_keys().size());
  std::vector<CLI::App*> configured{
      serve_cmd,    worker_cmd, up_cmd,           status_cmd,     pg_start,
      pg_stop,      pg_status,  verify_cmd,       jobs_enqueue,   jobs_list,
      jobs_stats,   orgs_plan,  shard_status_cmd, shard_move_cmd, shard_rebalance_cmd,
      db_advise_cmd};
  configured.insert(configured.end(), jobs_actions.begin(), jobs_actions.end());
  configured.insert(configured.end(), operators_actions.begin(), operators_actions.end());
  for (auto* sub : configured) {
    sub->add_option("--config", config_file,
                    "Config file of `key = value` lines (flags and LIFTOFF_* override it)")
        ->envname("LIFTOFF_CONFIG");
    for (std::size_t i = 0; i < core::config_keys().size(); ++i) {
      const auto& key = core::config_keys()[i];
      flag_options[i].push_back(
          sub->add_option("--" + core::flag_name(key.name), flag_values[i],
                          key.help + " [env " + core::env_name(key.name) + "]"));
    }
  }

  try {
    cli.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    cli.exit(e);
    return kExitUsage;
  }

  if (webhooks_key->parsed()) {
    std::cout << webhooks::SecretBox::generate_key() << "\n";
    return 0;
  }
  if (version_cmd->parsed()) {
    std::cout << "liftoff " << LIFTOFF_VERSION << " (" << LIFTOFF_GIT_COMMIT << ")\n";
    return 0;
  }

  core::ConfigSources sources;
  for (std::size_t i = 0; i < core::config_keys().size(); ++i) {
    for (auto* option : flag_options[i]) {
      if (option->count() > 0) sources.flags[core::config_keys()[i].name] = flag_values[i];
    }
  }
  sources.env = environment();
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) {
      std::cerr << "error: config: cannot read " << config_file << "\n";
      return kExitUsage;
    }
    std::stringstream text;
    text << in.rdbuf();
    sources.file_text = text.str();
    sources.file_name = config_file;
  }
  auto config = core::load_config(sources);
  if (!config) {
    for (const auto& f : config.error().fields)
      std::cerr << "error: config " << f.field << ": " << f.message << "\n";
    return kExitUsage;
  }
  bool serving = serve_cmd->parsed() || worker_cmd->parsed();
  core::init_logging(config->log_level, serving ? config->access_log : "off");

  if (serve_cmd->parsed()) return serve(*config);
  if (worker_cmd->parsed()) {
    config->role = "worker";
    return serve(*config);
  }
  for (auto* sub : jobs_cmd->get_subcommands({})) {
    if (sub->parsed()) return jobs_command(*config, sub->get_name(), jobs_args);
  }
  if (orgs_plan->parsed()) return plan_command(*config, plan_args);
  for (auto* sub : operators_actions) {
    if (sub->parsed()) return operators_command(*config, sub->get_name(), operator_email);
  }
  if (migrate_cmd->parsed()) return migrate(*config, up_cmd->parsed());
  if (shard_status_cmd->parsed()) return shard_status(*config, shard_json);
  if (db_advise_cmd->parsed()) return db_advise(*config, advise_args);
  if (shard_rebalance_cmd->parsed()) return shard_rebalance(*config, rebalance_args);
  if (shard_move_cmd->parsed()) {
    if (move_args.to.empty() == !move_args.abort) {
      std::cerr << "error: shard move: give --to SHARD, or --abort\n";
      return kExitUsage;
    }
    return shard_move(*config, move_args);
  }
  if (verify_cmd->parsed()) return audit_verify(*config, verify_org);
  for (auto* sub : pg_cmd->get_subcommands({})) {
    if (sub->parsed()) return embedded(*config, sub->get_name());
  }
  return kExitUsage;
}

}  // namespace liftoff::app
