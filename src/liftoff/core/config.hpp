#pragma once
// Liftoff's configuration. Every key comes from, in order of precedence: a command-line flag
// (--database-url), the environment (LIFTOFF_DATABASE_URL), an optional config file (database_url =
// ...), then its default. One table (config_keys()) drives all three sources, validation and the
// docs.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"

namespace liftoff::core {

using std::chrono::milliseconds;

// A tenant shard beside the control cluster's own (shard "main"): a PostgreSQL primary with its
// streaming replicas (docs/decisions/0021-tenant-shards.md).
struct ShardConfig {
  std::string name;  // [a-z][a-z0-9-]*, at most 32; never "main"
  std::string url;   // libpq URI of its primary
  std::vector<std::string> replica_urls;
  bool operator==(const ShardConfig&) const = default;
};

struct Config {
  std::string database_url;  // libpq URI; empty: the embedded private PostgreSQL
  // "none", or "transaction": database_url (and the replicas') reach PostgreSQL through a
  // transaction-mode pooler (PgBouncer); database_direct_url then reaches the primary directly.
  std::string database_pooler = "none";
  std::string database_direct_url;                 // for LISTEN and migrations; empty: database_url
  std::vector<std::string> database_replica_urls;  // libpq URIs of streaming replicas for reads
  milliseconds max_replica_lag{5'000};             // a replica further behind leaves the rotation
  milliseconds replica_probe_interval{100};        // how often replicas' positions are read
  std::vector<ShardConfig> shards;  // tenant shards besides main; the embedded ones come after
  std::vector<std::string> shard_reserved;  // shards new organizations are not placed on
  std::string redis_url;                    // redis://[:password@]host[:port]; empty: no Redis
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  unsigned threads = 0;  // 0: one per core
  std::string log_level = "info";
  std::string access_log = "-";  // "-": stdout, "off", or a file path
  std::size_t max_connections = 10000;
  std::size_t max_connections_per_client = 1000;  // per client address; 0: no cap
  std::size_t header_limit = 16 * 1024;
  std::size_t body_limit = 1024 * 1024;
  milliseconds request_timeout{10'000};    // first byte of a request to its last
  milliseconds handling_timeout{10'000};   // a request's last byte to its answer
  milliseconds idle_timeout{60'000};       // keep-alive connection with no request
  milliseconds first_byte_timeout{5'000};  // a new connection's wait for its first request
  milliseconds shutdown_timeout{10'000};
  // From SIGTERM to the drain: /readyz answers 503 and every answer closes its connection, while
  // the server still accepts and serves, so load balancers take it out first. 0: drain at once.
  milliseconds drain_delay{0};
  std::size_t db_pool_size = 16;          // per worker thread
  std::size_t db_shared_connections = 2;  // per worker: pipelined connections for single statements
  std::size_t db_pool_warm = 2;  // per worker and server: pooled connections opened at start
  milliseconds db_acquire_timeout{2'000};
  milliseconds db_query_timeout{5'000};
  // Statements taking at least this long are logged (with a sampled EXPLAIN); 0: none.
  milliseconds slow_statement_threshold{250};
  // Statements that scan an organization's data (exact counts, unindexed filters, searches):
  // how many run at once in the process (0: half the pooled connections), how many of one
  // organization,
  // and how many of one organization may wait before more are refused 429.
  std::size_t db_scans = 0;
  std::size_t db_scans_per_org = 1;
  std::size_t db_scan_queue_per_org = 16;
  std::string data_dir = ".liftoff";  // embedded PostgreSQL lives in <data_dir>/pgdata
  std::uint16_t embedded_pg_port = 54320;
  std::size_t embedded_pg_replicas = 0;  // streaming replicas on the next ports: they serve reads
  // Tenant shards the embedded PostgreSQL starts beside its own: shard-<i> in data_dir/shard-<i>
  // on port embedded_pg_port + 10 * i (its replicas, embedded_pg_replicas of them, on the next).
  std::size_t embedded_pg_shards = 0;
  std::optional<bool> auto_migrate;   // default: on for the embedded database, off otherwise
  std::size_t password_hash_ops = 2;  // Argon2id passes
  std::size_t password_hash_memory = 64 * 1024 * 1024;  // Argon2id memory, bytes
  std::size_t password_hash_threads = 2;
  std::size_t password_hash_queue = 64;       // admitted hashes before 429
  std::size_t password_hash_per_client = 16;  // of them, from one client address (0: no bound)
  milliseconds session_ttl{30LL * 24 * 3600 * 1000};
  milliseconds session_idle{7LL * 24 * 3600 * 1000};
  milliseconds session_cache_ttl{60'000};  // 0: every request checks the session in the database
  std::size_t session_cache_entries = 100'000;   // checked sessions and API keys kept per process
  milliseconds credential_use_flush{10'000};     // last-use times are written in batches this often
  milliseconds usage_flush{5'000};               // usage counts are written in batches this often
  milliseconds usage_holdings_refresh{60'000};   // an active org's records and bytes measured again
  milliseconds job_quota_refresh{10'000};        // an org's jobs today and plan read again
  std::vector<std::string> trusted_proxies;      // peers whose X-Forwarded-For names the client
  std::vector<std::string> cors_origins;         // canonical origins, or just "*"
  milliseconds cors_max_age{2LL * 3600 * 1000};  // Access-Control-Max-Age of a preflight
  double trace_sample_ratio = 0.01;
  // The organizations /metrics shows by each of requests, server errors and database time.
  std::size_t tenant_metrics = 10;
  std::string
      otlp_endpoint;  // OTLP/HTTP collector for sampled spans (http://host:4318); empty: none  //
                      // new traces sampled (a caller's traceparent decides its own)
  milliseconds stream_ticket_ttl{30'000};     // an event stream ticket's life
  std::string database_role = "liftoff_app";  // SET ROLE for serving; empty: the connecting user
  milliseconds org_deletion_grace{30LL * 24 * 3600 * 1000};
  milliseconds org_purge_interval{10LL * 60 * 1000};  // how often a process purges expired orgs
  milliseconds invitation_ttl{7LL * 24 * 3600 * 1000};
  std::size_t collections_per_org = 100;
  std::size_t fields_per_collection = 64;
  std::size_t json_max_depth = 32;                 // record bodies: nesting
  std::size_t json_max_string_length = 64 * 1024;  // record bodies: longest string, bytes
  milliseconds events_heartbeat{15'000};           // event streams: idle comment interval
  milliseconds events_poll_interval{1'000};        // event streams: fallback read of every org
  milliseconds events_replay_window{24LL * 3600 * 1000};
  std::size_t events_max_replay = 10'000;
  std::size_t events_max_streams = 10'000;          // per process
  std::size_t events_max_streams_per_client = 100;  // per client address
  std::size_t events_max_streams_per_org = 1'000;   // per organization, per process
  std::size_t events_max_backlog = 8 << 20;         // event data one stream holds for its client
  std::size_t list_cache_bytes = 64 * 1024 * 1024;  // record list bodies kept per process
  std::size_t request_budget = 32 * 1024 * 1024;    // record data one request may touch or answer
  std::size_t page_budget = 1024 * 1024;            // record data one list page or record answers
  std::size_t audit_value_limit = 64 * 1024;        // an audit event's before/after, bytes each
  milliseconds audit_seal_interval{100};            // how often the sealer looks for others' events
  std::size_t org_read_rate = 8 * 1024 * 1024;      // record bytes/s an org may read per process
  // Rate limits (docs/decisions/0017): requests per minute of one client address and of one session
  // or API key (0: none), besides each org's plan's; cluster-wide through redis_url when set.
  bool rate_limits = true;
  std::size_t rate_limit_per_address = 6'000;
  std::size_t rate_limit_per_credential = 3'000;
  std::size_t signups_per_address = 60;                   // an hour (0: no limit)
  std::chrono::milliseconds rate_limit_redis_timeout{5};  // slower: the process decides alone
  // What the process does: "all" (the API and the job workers), "api" or "worker" (jobs only; its
  // HTTP listener serves health and metrics).
  std::string role = "all";
  // The job queues this process works, each with how many of its jobs run at once.
  std::vector<std::pair<std::string, std::size_t>> job_queues{{"default", 10}};
  std::size_t job_org_concurrency = 0;    // running jobs of one org per queue, fleet-wide; 0: any
  milliseconds job_lease{30'000};         // a running job's lease, renewed every third of it
  milliseconds job_poll_interval{1'000};  // how often idle workers look without a wake-up
  milliseconds job_retention{24LL * 3600 * 1000};              // completed jobs are kept this long
  milliseconds job_failed_retention{30LL * 24 * 3600 * 1000};  // discarded and cancelled ones
  std::size_t memory_high_water = 0;  // bytes held before heavy requests get 503; 0: 80% of limit
  // Webhooks: the key sealing endpoints' secrets at rest (base64 of 32 bytes; empty: with the
  // embedded database, data_dir/webhook.key, made on first start; else webhooks are off).
  std::string webhook_key;
  bool webhook_allow_private = false;  // deliveries to loopback and private addresses too
  std::size_t webhook_concurrency =
      10;  // deliveries at once (the webhooks job queue); 0: none here
  milliseconds webhook_timeout{10'000};  // one delivery: resolve, connect, TLS, answer
  // The wait after each consecutive failed delivery; after the last, the endpoint is disabled.
  std::vector<milliseconds> webhook_retries{
      milliseconds(5'000),      milliseconds(300'000),    milliseconds(1'800'000),
      milliseconds(7'200'000),  milliseconds(18'000'000), milliseconds(36'000'000),
      milliseconds(36'000'000), milliseconds(86'400'000), milliseconds(86'400'000)};
  std::string webhook_ca_file;  // PEM of CAs trusted besides the system's
  // Account email over SMTP (docs/operations.md); without smtp_host email is off.
  std::string smtp_host;
  std::size_t smtp_port = 587;
  std::string smtp_security = "starttls";  // starttls, tls or none
  std::string smtp_username;
  std::string smtp_password;
  milliseconds smtp_timeout{30'000};
  std::string smtp_ca_file;
  std::size_t mail_concurrency = 4;  // the mail job queue's workers in this process
  std::string mail_from = "no-reply@localhost";
  std::string app_name = "Liftoff";
  std::string app_url;  // empty: http://<listen_host>:<listen_port>
  std::string mail_templates;
  milliseconds email_verification_ttl{48LL * 3600 * 1000};
  milliseconds password_reset_ttl{3600LL * 1000};
  milliseconds mail_resend_interval{60'000};
  // In-app notifications.
  milliseconds notification_retention{90LL * 24 * 3600 * 1000};  // then deleted, read or not
  std::size_t notifications_max_streams_per_user = 20;           // per process (429 beyond)

  [[nodiscard]] bool embedded_database() const { return database_url.empty(); }
  [[nodiscard]] bool behind_pooler() const { return database_pooler == "transaction"; }
  [[nodiscard]] bool serves_api() const { return role != "worker"; }
  [[nodiscard]] bool runs_jobs() const { return role != "api"; }
  [[nodiscard]] unsigned effective_threads() const;
};

struct ConfigKey {
  std::string name;  // snake_case; flag --name-with-dashes, env LIFTOFF_NAME
  std::string help;
  bool secret = false;
  // Parses and stores the value; returns an error message (without the key name) when invalid.
  std::function<std::optional<std::string>(Config&, const std::string&)> apply;
  std::function<std::string(const Config&)> show;
};

[[nodiscard]] const std::vector<ConfigKey>& config_keys();

[[nodiscard]] std::string flag_name(const std::string& key);  // "database_url" -> "database-url"
[[nodiscard]] std::string env_name(
    const std::string& key);  // "database_url" -> "LIFTOFF_DATABASE_URL"

struct ConfigSources {
  std::map<std::string, std::string> flags;  // by key name, only flags given
  std::map<std::string, std::string> env;    // the process environment (all of it is fine)
  std::optional<std::string> file_text;      // contents of the config file, if any
  std::string file_name = "config";
};

// Merges the sources; an invalid value or unknown file key is a validation error naming the key.
[[nodiscard]] Result<Config> load_config(const ConfigSources& sources);

// `key = value` lines, one per key, for logging at start; secrets masked.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> describe(const Config& config);

// postgresql://user:secret@host/db -> postgresql://user:***@host/db (redis:// too); also masks
// password=... pairs.
[[nodiscard]] std::string mask_secrets(const std::string& connection_string);

}  // namespace liftoff::core
