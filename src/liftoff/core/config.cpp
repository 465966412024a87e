#include "liftoff/core/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <regex>
#include <sstream>
#include <thread>

#include "liftoff/core/origin.hpp"

namespace liftoff::core {
namespace {

std::optional<std::string> parse_size(const std::string& text, std::size_t min, std::size_t max,
                                      std::size_t& out) {
  // Accepts plain numbers and the suffixes k/KiB, m/MiB (binary units).
  std::size_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr == text.data()) return "expected a non-negative integer";
  std::string suffix(ptr, text.data() + text.size());
  std::transform(suffix.begin(), suffix.end(), suffix.begin(), ::tolower);
  if (suffix == "k" || suffix == "kib") {
    value *= 1024;
  } else if (suffix == "m" || suffix == "mib") {
    value *= 1024 * 1024;
  } else if (!suffix.empty()) {
    return "unknown unit '" + suffix + "' (use k or m)";
  }
  if (value < min || value > max) {
    return "must be between " + std::to_string(min) + " and " + std::to_string(max);
  }
  out = value;
  return std::nullopt;
}

std::optional<std::string> parse_duration(const std::string& text, milliseconds min,
                                          milliseconds max, milliseconds& out) {
  // "250ms", "10s", "2m"; a bare number is milliseconds.
  long long value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr == text.data() || value < 0)
    return "expected a duration like 500ms or 10s";
  std::string unit(ptr, text.data() + text.size());
  milliseconds result{};
  if (unit.empty() || unit == "ms") {
    result = milliseconds(value);
  } else if (unit == "s") {
    result = std::chrono::seconds(value);
  } else if (unit == "m") {
    result = std::chrono::minutes(value);
  } else if (unit == "h") {
    result = std::chrono::hours(value);
  } else if (unit == "d") {
    result = std::chrono::hours(24 * value);
  } else {
    return "unknown unit '" + unit + "' (use ms, s, m, h or d)";
  }
  if (result < min || result > max) {
    return "must be between " + std::to_string(min.count()) + "ms and " +
           std::to_string(max.count()) + "ms";
  }
  out = result;
  return std::nullopt;
}

std::optional<std::string> parse_port(const std::string& text, std::uint16_t& out) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size() || value > 65535) {
    return "expected a port number 0-65535";
  }
  out = static_cast<std::uint16_t>(value);
  return std::nullopt;
}

std::string format_duration(milliseconds d) {
  return std::to_string(d.count()) + "ms";
}

ConfigKey size_key(std::string name, std::string help, std::size_t Config::*field, std::size_t min,
                   std::size_t max) {
  return {std::move(name), std::move(help), false,
          [=](Config& c, const std::string& v) { return parse_size(v, min, max, c.*field); },
          [=](const Config& c) { return std::to_string(c.*field); }};
}

ConfigKey duration_key(std::string name, std::string help, milliseconds Config::*field,
                       milliseconds min, milliseconds max) {
  return {std::move(name), std::move(help), false,
          [=](Config& c, const std::string& v) { return parse_duration(v, min, max, c.*field); },
          [=](const Config& c) { return format_duration(c.*field); }};
}

// A number in [0, 1].
ConfigKey ratio_key(std::string name, std::string help, double Config::*field) {
  return {std::move(name), std::move(help), false,
          [=](Config& c, const std::string& v) -> std::optional<std::string> {
            double value = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
            if (ec != std::errc{} || end != v.data() + v.size() || !(value >= 0 && value <= 1))
              return "expected a number from 0 to 1, like 0.01";
            c.*field = value;
            return std::nullopt;
          },
          [=](const Config& c) { return fmt::format("{}", c.*field); }};
}

// A free-text key; a secret one shows as *** when set.
ConfigKey text_key(std::string name, std::string help, std::string Config::*field,
                   bool secret = false) {
  return {std::move(name), std::move(help), secret,
          [=](Config& c, const std::string& v) -> std::optional<std::string> {
            c.*field = v;
            return std::nullopt;
          },
          [=](const Config& c) { return secret && !(c.*field).empty() ? "***" : c.*field; }};
}

std::string trim(std::string s) {
  auto not_space = [](unsigned char ch) { return !std::isspace(ch); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

// true, 1, on / false, 0, off; nullopt for anything else.
std::optional<bool> parse_bool(const std::string& text) {
  if (text == "true" || text == "1" || text == "on") return true;
  if (text == "false" || text == "0" || text == "off") return false;
  return std::nullopt;
}

ConfigKey bool_key(std::string name, std::string help, bool Config::*field) {
  return {std::move(name), std::move(help), false,
          [=](Config& c, const std::string& v) -> std::optional<std::string> {
            auto on = parse_bool(v);
            if (!on) return "expected true or false";
            c.*field = *on;
            return std::nullopt;
          },
          [=](const Config& c) { return c.*field ? "true" : "false"; }};
}

// "a, b,c" -> {"a", "b", "c"}; "" -> {}.
std::vector<std::string> comma_list(const std::string& text) {
  std::vector<std::string> out;
  if (trim(text).empty()) return out;
  std::size_t pos = 0;
  while (true) {
    auto comma = text.find(',', pos);
    out.push_back(
        trim(text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos)));
    if (comma == std::string::npos) return out;
    pos = comma + 1;
  }
}

// "a=x; b = y" -> {{"a", "x"}, {"b", "y"}}; an entry without '=' has an empty name (which no
// caller accepts). The value keeps its commas: a libpq URI may name several hosts.
std::vector<std::pair<std::string, std::string>> named_list(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto semicolon = text.find(';', pos);
    auto entry = trim(
        text.substr(pos, semicolon == std::string::npos ? std::string::npos : semicolon - pos));
    if (!entry.empty()) {
      auto eq = entry.find('=');
      if (eq == std::string::npos) {
        out.emplace_back("", entry);
      } else {
        out.emplace_back(trim(entry.substr(0, eq)), trim(entry.substr(eq + 1)));
      }
    }
    if (semicolon == std::string::npos) break;
    pos = semicolon + 1;
  }
  return out;
}

// Why `name` cannot name a shard, if it cannot.
std::optional<std::string> shard_name_problem(const std::string& name) {
  bool valid = !name.empty() && name.size() <= 32 && name[0] >= 'a' && name[0] <= 'z' &&
               std::all_of(name.begin(), name.end(), [](char ch) {
                 return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
               });
  if (!valid)
    return "expected name=postgresql://... entries, each name a-z, then a-z, 0-9 or - (at most 32)";
  if (name == "main") return "main is the control database's own shard";
  return std::nullopt;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out.empty() ? std::string("none") : out;
}

bool is_postgres_uri(const std::string& text) {
  return text.rfind("postgres://", 0) == 0 || text.rfind("postgresql://", 0) == 0;
}

// A key holding one libpq URI (empty allowed), shown with its password masked.
ConfigKey postgres_uri_key(std::string name, std::string help, std::string Config::*field) {
  return {std::move(name), std::move(help), true,
          [=](Config& c, const std::string& v) -> std::optional<std::string> {
            if (!v.empty() && !is_postgres_uri(v)) return "expected a postgresql:// URI";
            c.*field = v;
            return std::nullopt;
          },
          [=](const Config& c) { return mask_secrets(c.*field); }};
}

std::vector<ConfigKey> make_keys() {
  using namespace std::chrono_literals;
  std::vector<ConfigKey> keys;
  keys.push_back(postgres_uri_key(
      "database_url",
      "libpq connection URI of the primary (several hosts with target_session_attrs=read-write "
      "follow a failover); empty starts the embedded private PostgreSQL",
      &Config::database_url));
  keys.push_back(
      {"database_pooler",
       "none, or transaction: database_url goes through a transaction-mode pooler such as "
       "PgBouncer (statements are sent unnamed; needs database_direct_url)",
       false,
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "none" && v != "transaction") return "expected none or transaction";
         c.database_pooler = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.database_pooler; }});
  keys.push_back(postgres_uri_key("database_direct_url",
                                  "libpq URI of the primary that bypasses the pooler, for LISTEN "
                                  "and migrations (empty: database_url)",
                                  &Config::database_direct_url));
  keys.push_back(
      {"database_replica_urls",
       "comma-separated libpq URIs of streaming replicas of database_url that serve reads (with "
       "the embedded database, embedded_pg_replicas starts them instead)",
       true,
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         auto urls = comma_list(v);
         if (!std::all_of(urls.begin(), urls.end(), is_postgres_uri))
           return "expected comma-separated postgresql:// URIs";
         c.database_replica_urls = std::move(urls);
         return std::nullopt;
       },
       [](const Config& c) {
         std::vector<std::string> masked;
         for (const auto& url : c.database_replica_urls) masked.push_back(mask_secrets(url));
         return joined(masked);
       }});
  keys.push_back(
      {"shards",
       "tenant shards besides the control database's own (main), separated by ';', each "
       "name=postgresql://... (its primary; a name is a-z, then a-z, 0-9 or -, at most 32)",
       true,
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         std::vector<ShardConfig> shards;
         for (const auto& entry : named_list(v)) {
           const auto& [name, value] = entry;
           if (auto bad = shard_name_problem(name)) return *bad;
           if (!is_postgres_uri(value)) return "shard " + name + ": expected a postgresql:// URI";
           if (std::any_of(shards.begin(), shards.end(),
                           [&](const ShardConfig& s) { return s.name == entry.first; }))
             return "shard " + name + " is listed twice";
           shards.push_back({name, value, {}});
         }
         if (!trim(v).empty() && shards.empty()) return "expected name=postgresql://... entries";
         c.shards = std::move(shards);
         return std::nullopt;
       },
       [](const Config& c) {
         std::string out;
         for (const auto& s : c.shards)
           out += (out.empty() ? "" : ";") + s.name + "=" + mask_secrets(s.url);
         return out.empty() ? std::string("none") : out;
       }});
  keys.push_back({"shard_replica_urls",
                  "streaming replicas of the shards that serve their reads, separated by ';', each "
                  "name=postgresql://...[,postgresql://...] (the shard's name, its replicas' URIs)",
                  true,
                  // Applied after `shards` (keys apply in this order), whose entries it completes.
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    auto entries = named_list(v);
                    if (!trim(v).empty() && entries.empty())
                      return "expected name=postgresql://...[,postgresql://...] entries";
                    for (auto& shard : c.shards) shard.replica_urls.clear();
                    for (const auto& entry : entries) {
                      const auto& [name, value] = entry;
                      auto shard =
                          std::find_if(c.shards.begin(), c.shards.end(),
                                       [&](const ShardConfig& s) { return s.name == entry.first; });
                      if (shard == c.shards.end()) return "shard " + name + " is not one of shards";
                      auto urls = comma_list(value);
                      if (urls.empty() || !std::all_of(urls.begin(), urls.end(), is_postgres_uri))
                        return "shard " + name + ": expected comma-separated postgresql:// URIs";
                      shard->replica_urls = std::move(urls);
                    }
                    return std::nullopt;
                  },
                  [](const Config& c) {
                    std::string out;
                    for (const auto& shard : c.shards) {
                      if (shard.replica_urls.empty()) continue;
                      std::vector<std::string> masked;
                      for (const auto& url : shard.replica_urls)
                        masked.push_back(mask_secrets(url));
                      out += (out.empty() ? "" : ";") + shard.name + "=" + joined(masked);
                    }
                    return out.empty() ? std::string("none") : out;
                  }});
  keys.push_back({"shard_reserved",
                  "shards that get no new organizations, separated by ',' (an Enterprise "
                  "organization's own shard, or main once other shards take new ones)",
                  false,
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    // Checked against the shards when serving (db::ShardPlacement::check).
                    c.shard_reserved = comma_list(v);
                    return std::nullopt;
                  },
                  [](const Config& c) {
                    return c.shard_reserved.empty() ? std::string("none")
                                                    : joined(c.shard_reserved);
                  }});
  keys.push_back(duration_key("max_replica_lag",
                              "a replica further behind the primary leaves the read rotation (it "
                              "returns within half of it)",
                              &Config::max_replica_lag, 10ms, 1h));
  keys.push_back(duration_key("replica_probe_interval",
                              "how often each replica's replay position and health are read",
                              &Config::replica_probe_interval, 10ms, 10'000ms));
  keys.push_back(
      {"redis_url",
       "redis://[:password@]host[:port]: record events travel between processes by Redis pub/sub "
       "instead of PostgreSQL NOTIFY; empty: no Redis",
       true,
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (!v.empty() && v.rfind("redis://", 0) != 0) return "expected a redis:// URI";
         c.redis_url = v;
         return std::nullopt;
       },
       [](const Config& c) { return mask_secrets(c.redis_url); }});
  keys.push_back({"listen", "host:port to serve HTTP on", false,
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    auto colon = v.rfind(':');
                    if (colon == std::string::npos || colon == 0) return "expected host:port";
                    std::string host = v.substr(0, colon);
                    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
                      host = host.substr(1, host.size() - 2);
                    }
                    if (auto err = parse_port(v.substr(colon + 1), c.listen_port)) return err;
                    c.listen_host = host;
                    return std::nullopt;
                  },
                  [](const Config& c) {
                    bool v6 = c.listen_host.find(':') != std::string::npos;
                    return (v6 ? "[" + c.listen_host + "]" : c.listen_host) + ":" +
                           std::to_string(c.listen_port);
                  }});
  keys.push_back({"threads", "worker threads, each with its own event loop (0: one per core)",
                  false,
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    std::size_t n = 0;
                    if (auto err = parse_size(v, 0, 256, n)) return err;
                    c.threads = static_cast<unsigned>(n);
                    return std::nullopt;
                  },
                  [](const Config& c) { return std::to_string(c.effective_threads()); }});
  keys.push_back({"log_level", "trace, debug, info, warn, error or off", false,
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    static const std::vector<std::string> kLevels = {"trace", "debug", "info",
                                                                     "warn",  "error", "off"};
                    if (std::find(kLevels.begin(), kLevels.end(), v) == kLevels.end()) {
                      return "expected one of trace, debug, info, warn, error, off";
                    }
                    c.log_level = v;
                    return std::nullopt;
                  },
                  [](const Config& c) { return c.log_level; }});
  keys.push_back({"access_log", "JSON access log: - (stdout), off, or a file path", false,
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    if (v.empty()) return "must not be empty (use off)";
                    c.access_log = v;
                    return std::nullopt;
                  },
                  [](const Config& c) { return c.access_log; }});
  keys.push_back(size_key("max_connections", "open HTTP connections per process before 503",
                          &Config::max_connections, 1, 1'000'000));
  keys.push_back(size_key("max_connections_per_client",
                          "open HTTP connections from one client address before 429 (load "
                          "balancers in trusted_proxies are exempt; 0: no cap)",
                          &Config::max_connections_per_client, 0, 1'000'000));
  keys.push_back(size_key("header_limit", "largest request header block (431 beyond)",
                          &Config::header_limit, 1024, 1024 * 1024));
  keys.push_back(size_key("body_limit", "largest request body (413 beyond)", &Config::body_limit, 0,
                          1024ull * 1024 * 1024));
  keys.push_back(duration_key("request_timeout",
                              "time from a request's first byte to its last (408 beyond)",
                              &Config::request_timeout, 10ms, 10min));
  keys.push_back(duration_key("handling_timeout",
                              "time from a request's last byte to its answer: every statement it "
                              "runs ends by then (504 beyond)",
                              &Config::handling_timeout, 10ms, 10min));
  keys.push_back(duration_key("idle_timeout", "keep-alive connection idle time before close",
                              &Config::idle_timeout, 10ms, 1h));
  keys.push_back(duration_key("first_byte_timeout",
                              "a new connection closes if its first request does not begin this "
                              "soon (idle_timeout applies between requests)",
                              &Config::first_byte_timeout, 10ms, 1h));
  keys.push_back(duration_key("shutdown_timeout", "time in-flight requests get on SIGTERM",
                              &Config::shutdown_timeout, 0ms, 10min));
  keys.push_back(duration_key("drain_delay",
                              "on SIGTERM, time it keeps serving with /readyz failing and each "
                              "answer closing its connection, before it stops accepting",
                              &Config::drain_delay, 0ms, 10min));
  keys.push_back(size_key("db_pool_size", "database connections per worker thread",
                          &Config::db_pool_size, 1, 1000));
  keys.push_back(size_key(
      "db_shared_connections",
      "connections per worker that pipeline single statements of concurrent requests (0: off)",
      &Config::db_shared_connections, 0, 64));
  keys.push_back(size_key("db_pool_warm",
                          "pooled connections each worker opens to each database server before "
                          "it accepts (at most db_pool_size)",
                          &Config::db_pool_warm, 0, 1000));
  keys.push_back(duration_key("db_acquire_timeout", "wait for a pooled connection before 503",
                              &Config::db_acquire_timeout, 1ms, 10min));
  keys.push_back(duration_key("db_query_timeout", "default deadline of one query",
                              &Config::db_query_timeout, 1ms, 1h));
  keys.push_back(duration_key("slow_statement_threshold",
                              "statements taking this long or longer are logged, the first of "
                              "each in a minute with its plan (0: none)",
                              &Config::slow_statement_threshold, 0ms, 1h));
  keys.push_back(
      size_key("db_scans",
               "statements that scan an organization's data (exact counts, unindexed "
               "filters, searches) running at once in the process (0: half the pooled connections)",
               &Config::db_scans, 0, 1000));
  keys.push_back(size_key("db_scans_per_org", "of them, of one organization",
                          &Config::db_scans_per_org, 1, 1000));
  keys.push_back(size_key("db_scan_queue_per_org",
                          "one organization's scans waiting for their turn before more are "
                          "refused 429",
                          &Config::db_scan_queue_per_org, 0, 100000));
  keys.push_back({"data_dir", "directory of the embedded PostgreSQL and other local state", false,
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    if (v.empty()) return "must not be empty";
                    c.data_dir = v;
                    return std::nullopt;
                  },
                  [](const Config& c) { return c.data_dir; }});
  keys.push_back({"embedded_pg_port", "loopback port of the embedded PostgreSQL", false,
                  [](Config& c, const std::string& v) { return parse_port(v, c.embedded_pg_port); },
                  [](const Config& c) { return std::to_string(c.embedded_pg_port); }});
  keys.push_back(
      size_key("embedded_pg_replicas",
               "streaming replicas the embedded PostgreSQL starts beside its primary, on "
               "the ports after embedded_pg_port; they serve reads",
               &Config::embedded_pg_replicas, 0, 4));
  keys.push_back(size_key("embedded_pg_shards",
                          "tenant shards the embedded PostgreSQL starts beside its own (shard-1, "
                          "...), shard i on embedded_pg_port + 10 * i, each with "
                          "embedded_pg_replicas replicas",
                          &Config::embedded_pg_shards, 0, 8));
  keys.push_back(size_key("password_hash_ops",
                          "Argon2id passes (raising it rehashes on next login)",
                          &Config::password_hash_ops, 1, 20));
  keys.push_back(size_key("password_hash_memory", "Argon2id memory per hash, bytes (k/m suffixes)",
                          &Config::password_hash_memory, 8 * 1024, 1024ull * 1024 * 1024));
  keys.push_back(size_key("password_hash_threads", "threads that hash passwords",
                          &Config::password_hash_threads, 1, 64));
  keys.push_back(size_key("password_hash_queue", "password hashes admitted at once before 429",
                          &Config::password_hash_queue, 1, 100000));
  keys.push_back(size_key("password_hash_per_client",
                          "of those, hashes one client address may hold at once (0: no bound)",
                          &Config::password_hash_per_client, 0, 100000));
  keys.push_back(duration_key("session_ttl", "absolute lifetime of a session", &Config::session_ttl,
                              1min, std::chrono::hours(24 * 365)));
  keys.push_back(duration_key("session_idle", "a session unused this long expires",
                              &Config::session_idle, 1min, std::chrono::hours(24 * 365)));
  keys.push_back(duration_key("session_cache_ttl",
                              "how long a process trusts a checked session (0: off)",
                              &Config::session_cache_ttl, 0ms, 10min));
  keys.push_back(size_key("session_cache_entries",
                          "checked sessions and API keys a process keeps (a full cache drops one)",
                          &Config::session_cache_entries, 16, 100'000'000));
  keys.push_back(
      duration_key("credential_use_flush",
                   "how often a process writes when sessions and API keys were last used",
                   &Config::credential_use_flush, 10ms, 10min));
  keys.push_back(duration_key("usage_flush",
                              "usage counts (API requests, events, jobs) are written in batches "
                              "this often; a crash loses at most this much",
                              &Config::usage_flush, 10ms, 10min));
  keys.push_back(duration_key("usage_holdings_refresh",
                              "an active organization's records and bytes (its quotas and hourly "
                              "usage) are measured again this often",
                              &Config::usage_holdings_refresh, 10ms, 24h));
  keys.push_back(
      duration_key("job_quota_refresh",
                   "how often a worker reads again the jobs enqueued today and the "
                   "plan of each organization whose jobs it ran (the jobs per day quota), and "
                   "which organizations are suspended (their jobs and webhooks wait)",
                   &Config::job_quota_refresh, 10ms, 1h));
  keys.push_back(
      {"database_role",
       "role the server acts as (may only append to the audit log); empty: the connecting user",
       false,
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         bool identifier = std::all_of(v.begin(), v.end(), [](char ch) {
           return std::islower(static_cast<unsigned char>(ch)) ||
                  std::isdigit(static_cast<unsigned char>(ch)) || ch == '_';
         });
         if (!identifier || (!v.empty() && std::isdigit(static_cast<unsigned char>(v[0])))) {
           return "expected a lower-case SQL identifier";
         }
         c.database_role = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.database_role; }});
  keys.push_back(duration_key("org_deletion_grace",
                              "a deleted organization stays restorable this long",
                              &Config::org_deletion_grace, 0ms, std::chrono::hours(24 * 365)));
  keys.push_back(duration_key("org_purge_interval",
                              "how often each process purges organizations past their grace period "
                              "and expired idempotency keys",
                              &Config::org_purge_interval, 100ms, std::chrono::hours(24)));
  keys.push_back(duration_key("invitation_ttl", "an invitation expires this long after it is sent",
                              &Config::invitation_ttl, 1min, std::chrono::hours(24 * 90)));
  keys.push_back(size_key("collections_per_org", "collections one organization may have",
                          &Config::collections_per_org, 1, 100'000));
  keys.push_back(size_key("fields_per_collection", "fields one collection may declare",
                          &Config::fields_per_collection, 1, 1'000));
  keys.push_back(size_key("json_max_depth", "deepest nesting of a record body (400 beyond)",
                          &Config::json_max_depth, 2, 256));
  keys.push_back(size_key("json_max_string_length",
                          "longest string in a record body, bytes (400 beyond)",
                          &Config::json_max_string_length, 16, 64ull * 1024 * 1024));
  keys.push_back(duration_key("events_heartbeat",
                              "an idle event stream sends a comment this often (keeps proxies and "
                              "clients from timing out, finds dead clients)",
                              &Config::events_heartbeat, 100ms, std::chrono::hours(1)));
  keys.push_back(duration_key("events_poll_interval",
                              "every open event stream's org is read again this often, covering "
                              "notifications lost to a reconnect or crash (0: never; tests of "
                              "NOTIFY and Redis delivery)",
                              &Config::events_poll_interval, 0ms, std::chrono::hours(1)));
  keys.push_back(duration_key("events_replay_window",
                              "Last-Event-ID resumes an event stream within this window; older "
                              "positions get a reset event",
                              &Config::events_replay_window, 0ms, std::chrono::hours(24 * 90)));
  keys.push_back(size_key("events_max_replay",
                          "most events a resumed stream replays (a reset event beyond)",
                          &Config::events_max_replay, 1, 1'000'000));
  keys.push_back(size_key("list_cache_bytes",
                          "record list answers kept per process, valid while their organization "
                          "does not change (0: off)",
                          &Config::list_cache_bytes, 0, 64ull * 1024 * 1024 * 1024));
  keys.push_back(size_key("request_budget",
                          "record data one request may read, write or answer with, bytes: a "
                          "batch beyond is refused (413), a list page ends early",
                          &Config::request_budget, 64 * 1024, 64ull * 1024 * 1024 * 1024));
  keys.push_back(size_key("page_budget",
                          "record data one list page (with its expansions) or one expanded record "
                          "answers with, bytes: the page ends early, its cursor continues (at "
                          "most request_budget)",
                          &Config::page_budget, 4 * 1024, 64ull * 1024 * 1024 * 1024));
  keys.push_back(size_key("org_read_rate",
                          "data one organization may read per second on one process (record "
                          "lists, expansions, single reads, what its batches touch, audit reads, "
                          "event replays), averaged, in bursts up to request_budget; 429 with "
                          "Retry-After beyond, exports and replays slow down (0: no limit)",
                          &Config::org_read_rate, 0, 64ull * 1024 * 1024 * 1024));
  keys.push_back(duration_key("audit_seal_interval",
                              "the sealer of each process looks for audit events committed but not "
                              "chained this often (its own process's record writes wake it at "
                              "once): the longest another process's event stays unsealed",
                              &Config::audit_seal_interval, 1ms, std::chrono::seconds(1)));
  keys.push_back(size_key("audit_value_limit",
                          "bytes an audit event keeps of a record's before and after, each (larger "
                          "parts are cut, their size and SHA-256 kept)",
                          &Config::audit_value_limit, 1024, 64ull * 1024 * 1024));
  keys.push_back({"role",
                  "all (the API and the job workers), api, or worker (jobs only; its HTTP listener "
                  "serves health and metrics)",
                  false,
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    if (v != "all" && v != "api" && v != "worker")
                      return "expected all, api or worker";
                    c.role = v;
                    return std::nullopt;
                  },
                  [](const Config& c) { return c.role; }});
  keys.push_back(
      {"job_queues",
       "comma-separated queue:concurrency pairs: the job queues this process works and how many "
       "jobs of each run at once",
       false,
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         std::vector<std::pair<std::string, std::size_t>> queues;
         for (const auto& item : comma_list(v)) {
           auto colon = item.find(':');
           std::size_t concurrency = 0;
           if (colon == std::string::npos || colon == 0 || colon > 100 ||
               item.find_first_not_of(
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") < colon ||
               parse_size(item.substr(colon + 1), 1, 10'000, concurrency))
             return "expected queue:concurrency pairs (a queue of letters, digits and . _ -; "
                    "concurrency 1-10000), e.g. default:10,mail:4";
           queues.emplace_back(item.substr(0, colon), concurrency);
         }
         if (queues.empty()) return "expected at least one queue:concurrency pair";
         c.job_queues = std::move(queues);
         return std::nullopt;
       },
       [](const Config& c) {
         std::string out;
         for (const auto& [queue, concurrency] : c.job_queues)
           out += (out.empty() ? "" : ",") + queue + ":" + std::to_string(concurrency);
         return out;
       }});
  keys.push_back(size_key("job_org_concurrency",
                          "running jobs of one organization per queue across the fleet, so one "
                          "org's backlog cannot hold every worker; 0: no limit",
                          &Config::job_org_concurrency, 0, 100'000));
  keys.push_back(duration_key("job_lease",
                              "a running job's lease: renewed every third of it, and a job whose "
                              "worker died runs again once it expires",
                              &Config::job_lease, 1s, std::chrono::hours(1)));
  keys.push_back(duration_key("job_poll_interval",
                              "how often idle workers look for due jobs without a wake-up "
                              "(scheduled jobs and retries run at most this late)",
                              &Config::job_poll_interval, 10ms, std::chrono::minutes(1)));
  keys.push_back(duration_key("job_retention", "how long completed jobs are kept",
                              &Config::job_retention, 1min, std::chrono::hours(24 * 365)));
  keys.push_back(duration_key("job_failed_retention",
                              "how long discarded and cancelled jobs are kept",
                              &Config::job_failed_retention, 1min, std::chrono::hours(24 * 365)));
  keys.push_back(size_key("memory_high_water",
                          "memory the process may hold before heavy requests (record lists and "
                          "writes, batches, audit reads, event streams) get 503; 0: 80% of the "
                          "cgroup's or machine's memory",
                          &Config::memory_high_water, 0, 1ull << 50));
  keys.push_back(size_key("events_max_streams_per_client",
                          "open event streams from one client address (429 beyond)",
                          &Config::events_max_streams_per_client, 1, 1'000'000));
  keys.push_back(size_key("events_max_streams_per_org",
                          "open event streams of one organization per process (429 beyond)",
                          &Config::events_max_streams_per_org, 1, 1'000'000));
  keys.push_back(size_key("events_max_streams", "open event streams per process (503 beyond)",
                          &Config::events_max_streams, 1, 1'000'000));
  keys.push_back(size_key("events_max_backlog",
                          "event data one stream holds while its client reads too slowly, bytes; "
                          "beyond, the stream ends and the client resumes with Last-Event-ID",
                          &Config::events_max_backlog, 4 * 1024, 1024ull * 1024 * 1024));
  keys.push_back(
      {"trusted_proxies",
       "comma-separated IP addresses of load balancers whose X-Forwarded-For is believed", false,
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         c.trusted_proxies = comma_list(v);
         for (const auto& item : c.trusted_proxies) {
           if (item.empty() ||
               item.find_first_not_of("0123456789abcdefABCDEF.:") != std::string::npos) {
             return "expected IP addresses separated by commas";
           }
         }
         return std::nullopt;
       },
       [](const Config& c) { return joined(c.trusted_proxies); }});
  keys.push_back(
      {"cors_origins",
       "comma-separated origins (scheme://host[:port]) whose pages may call the API from a "
       "browser, on every route; * for any origin; each organization adds its own",
       false,
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         c.cors_origins.clear();
         auto items = comma_list(v);
         if (items.size() == 1 && items.front() == "*") {
           c.cors_origins = std::move(items);
           return std::nullopt;
         }
         for (const auto& item : items) {
           if (item == "*") return "* allows every origin: give it alone";
           auto origin = canonical_origin(item);
           if (!origin || *origin == "null") {
             return "'" + item + "' is not an origin (scheme://host[:port], no path)";
           }
           c.cors_origins.push_back(std::move(*origin));
         }
         return std::nullopt;
       },
       [](const Config& c) { return joined(c.cors_origins); }});
  keys.push_back(duration_key("cors_max_age",
                              "how long a browser may reuse a CORS preflight's answer "
                              "(Access-Control-Max-Age; Chromium caps it at 2h)",
                              &Config::cors_max_age, 0ms, 24h));
  keys.push_back(size_key("tenant_metrics",
                          "organizations /metrics shows by requests, by server errors and by "
                          "database time (tenant_*_total{org}); 0: none",
                          &Config::tenant_metrics, 0, 1000));
  keys.push_back(ratio_key("trace_sample_ratio",
                           "the share of new traces sampled (W3C traceparent's sampled flag; a "
                           "request with a traceparent keeps its caller's decision)",
                           &Config::trace_sample_ratio));
  keys.push_back({"otlp_endpoint",
                  "an OpenTelemetry collector's OTLP/HTTP address (http://host:port); sampled "
                  "requests' spans go to its /v1/traces; empty: spans are not kept",
                  false,
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    static const std::regex kHttpUrl(R"(http://[^/?#@\s]+(/[^?#\s]*)?)");
                    if (!v.empty() && !std::regex_match(v, kHttpUrl))
                      return "expected an http:// URL such as http://127.0.0.1:4318";
                    c.otlp_endpoint = v;
                    return std::nullopt;
                  },
                  [](const Config& c) { return c.otlp_endpoint; }});
  keys.push_back(duration_key("stream_ticket_ttl",
                              "how long an event stream ticket (for a browser's EventSource) may "
                              "wait for its one use",
                              &Config::stream_ticket_ttl, 1s, 10min));
  keys.push_back({"webhook_key",
                  "base64 of 32 random bytes sealing webhook secrets at rest, the same in every "
                  "process (liftoff webhooks key prints one); empty: data_dir/webhook.key with the "
                  "embedded database, else webhooks are off",
                  true,
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    c.webhook_key = v;
                    return std::nullopt;
                  },
                  [](const Config& c) { return c.webhook_key.empty() ? "" : "***"; }});
  keys.push_back(
      bool_key("webhook_allow_private",
               "deliver webhooks to loopback, private and link-local addresses too (tests, "
               "on-premise receivers); off, such endpoints are refused",
               &Config::webhook_allow_private));
  keys.push_back(size_key("webhook_concurrency",
                          "webhook deliveries this process makes at once (the webhooks job queue, "
                          "worked only with a webhook_key); 0: none",
                          &Config::webhook_concurrency, 0, 10'000));
  keys.push_back(duration_key("webhook_timeout",
                              "one webhook delivery's limit: resolving, connecting, TLS and the "
                              "answer",
                              &Config::webhook_timeout, 100ms, 5min));
  keys.push_back(
      {"webhook_retries",
       "comma-separated waits after each consecutive failed webhook delivery; after the last the "
       "endpoint is disabled",
       false,
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         std::vector<milliseconds> retries;
         for (const auto& item : comma_list(v)) {
           milliseconds wait{0};
           if (parse_duration(item, 0ms, std::chrono::hours(24 * 7), wait))
             return "expected durations separated by commas, e.g. 5s,5m,30m";
           retries.push_back(wait);
         }
         if (retries.empty() || retries.size() > 50) return "expected 1-50 durations";
         c.webhook_retries = std::move(retries);
         return std::nullopt;
       },
       [](const Config& c) {
         std::string out;
         for (const auto& wait : c.webhook_retries)
           out += (out.empty() ? "" : ",") + format_duration(wait);
         return out;
       }});
  keys.push_back(text_key("webhook_ca_file",
                          "PEM file of certificate authorities webhook deliveries trust besides "
                          "the system's",
                          &Config::webhook_ca_file));
  keys.push_back(text_key("smtp_host",
                          "the SMTP relay account email goes through (verification, password "
                          "reset, invitations); empty: email is off",
                          &Config::smtp_host));
  keys.push_back(size_key("smtp_port", "the SMTP relay's port", &Config::smtp_port, 1, 65'535));
  keys.push_back({"smtp_security",
                  "starttls (upgrade before anything is said; the certificate is verified), tls "
                  "(from the first byte, port 465) or none (plain text: a relay on loopback)",
                  false,
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    if (v != "starttls" && v != "tls" && v != "none")
                      return "expected starttls, tls or none";
                    c.smtp_security = v;
                    return std::nullopt;
                  },
                  [](const Config& c) { return c.smtp_security; }});
  keys.push_back(
      text_key("smtp_username", "the SMTP AUTH user; empty: no AUTH", &Config::smtp_username));
  keys.push_back(text_key("smtp_password", "the SMTP AUTH password", &Config::smtp_password, true));
  keys.push_back(duration_key("smtp_timeout",
                              "one email's limit: resolving, connecting, TLS and the exchange",
                              &Config::smtp_timeout, 100ms, 10min));
  keys.push_back(text_key("smtp_ca_file",
                          "PEM file of certificate authorities the SMTP client trusts besides "
                          "the system's",
                          &Config::smtp_ca_file));
  keys.push_back(size_key("mail_concurrency",
                          "emails this process sends at once (the mail job queue); 0: none",
                          &Config::mail_concurrency, 0, 10'000));
  keys.push_back(text_key("mail_from", "the address account email comes from", &Config::mail_from));
  keys.push_back(text_key("app_name", "the product's name in account email", &Config::app_name));
  keys.push_back(text_key("app_url",
                          "the web app that links in account email open (/verify-email, "
                          "/reset-password, /invitations, with #token=...)",
                          &Config::app_url));
  keys.push_back(text_key("mail_templates",
                          "a directory of email templates replacing the built-in ones "
                          "(<name>.txt, <name>.html; docs/operations.md)",
                          &Config::mail_templates));
  keys.push_back(duration_key("email_verification_ttl", "how long a verification link works",
                              &Config::email_verification_ttl, 1min, 24h * 30));
  keys.push_back(duration_key("password_reset_ttl", "how long a password reset link works",
                              &Config::password_reset_ttl, 1min, 24h));
  keys.push_back(duration_key("mail_resend_interval",
                              "at most one email of a kind per user (or invitation) this often",
                              &Config::mail_resend_interval, 0ms, 24h));
  keys.push_back(duration_key("notification_retention",
                              "how long in-app notifications are kept, read or not",
                              &Config::notification_retention, 1min, 24h * 3650));
  keys.push_back(size_key("notifications_max_streams_per_user",
                          "open notification streams of one user per process (429 beyond)",
                          &Config::notifications_max_streams_per_user, 1, 10'000));
  keys.push_back(
      bool_key("rate_limits",
               "limit requests per minute by client address, session or API key, and org plan",
               &Config::rate_limits));
  keys.push_back(size_key("rate_limit_per_address",
                          "requests per minute from one client address not signed in (0: no limit)",
                          &Config::rate_limit_per_address, 0, 100'000'000));
  keys.push_back(size_key("rate_limit_per_credential",
                          "requests per minute with one session or API key (0: no limit)",
                          &Config::rate_limit_per_credential, 0, 100'000'000));
  keys.push_back(size_key("signups_per_address",
                          "sign-ups an hour from one client address (0: no limit)",
                          &Config::signups_per_address, 0, 100'000'000));
  keys.push_back(
      duration_key("rate_limit_redis_timeout",
                   "a rate limit decision Redis has not made by then is the process's own",
                   &Config::rate_limit_redis_timeout, 1ms, 1s));
  keys.push_back({"auto_migrate",
                  "apply pending migrations at start (default: true for the embedded database)",
                  false,
                  [](Config& c, const std::string& v) -> std::optional<std::string> {
                    c.auto_migrate = parse_bool(v);
                    if (!c.auto_migrate) return "expected true or false";
                    return std::nullopt;
                  },
                  [](const Config& c) {
                    return c.auto_migrate ? (*c.auto_migrate ? "true" : "false") : "default";
                  }});
  return keys;
}

}  // namespace

unsigned Config::effective_threads() const {
  if (threads != 0) return threads;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> kKeys = make_keys();
  return kKeys;
}

std::string flag_name(const std::string& key) {
  std::string out = key;
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

std::string env_name(const std::string& key) {
  std::string out = "LIFTOFF_" + key;
  std::transform(out.begin(), out.end(), out.begin(), ::toupper);
  return out;
}

Result<Config> load_config(const ConfigSources& sources) {
  std::map<std::string, std::pair<std::string, std::string>> values;  // key -> (value, origin)
  const auto& keys = config_keys();
  auto known = [&](const std::string& k) {
    return std::any_of(keys.begin(), keys.end(), [&](const ConfigKey& ck) { return ck.name == k; });
  };
  Error error{Errc::validation_failed, "invalid configuration", {}};

  if (sources.file_text) {
    std::istringstream in(*sources.file_text);
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      line = trim(line);
      if (line.empty() || line[0] == '#') continue;
      auto eq = line.find('=');
      std::string where = sources.file_name + ":" + std::to_string(line_no);
      if (eq == std::string::npos) {
        error.fields.push_back({where, "expected key = value"});
        continue;
      }
      std::string key = trim(line.substr(0, eq));
      std::string value = trim(line.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      if (!known(key)) {
        error.fields.push_back({key, "unknown key (" + where + ")"});
        continue;
      }
      values[key] = {value, where};
    }
  }
  for (const auto& key : keys) {
    if (auto it = sources.env.find(env_name(key.name)); it != sources.env.end()) {
      values[key.name] = {it->second, env_name(key.name)};
    }
  }
  for (const auto& [key, value] : sources.flags) {
    if (!known(key)) {
      error.fields.push_back({key, "unknown key"});
      continue;
    }
    values[key] = {value, "--" + flag_name(key)};
  }

  Config config;
  for (const auto& key : keys) {
    auto it = values.find(key.name);
    if (it == values.end()) continue;
    if (auto problem = key.apply(config, it->second.first)) {
      error.fields.push_back({key.name, *problem + " (from " + it->second.second + ")"});
    }
  }
  if (!error.fields.empty()) return error;
  if (config.embedded_database() && !config.database_replica_urls.empty()) {
    error.fields.push_back({"database_replica_urls",
                            "needs database_url (the embedded database's replicas come from "
                            "embedded_pg_replicas)"});
  }
  if (config.behind_pooler() && config.embedded_database()) {
    error.fields.push_back({"database_pooler",
                            "needs database_url (the pooler's address); the embedded database "
                            "is reached directly"});
  } else if (config.behind_pooler() && config.database_direct_url.empty()) {
    error.fields.push_back({"database_direct_url",
                            "is needed with database_pooler=transaction: LISTEN and migrations "
                            "cannot go through a transaction-mode pooler"});
  }
  if (!config.embedded_database() && config.embedded_pg_shards > 0) {
    error.fields.push_back({"embedded_pg_shards",
                            "is for the embedded database; with database_url, list the shards in "
                            "shards"});
  }
  for (const auto& shard : config.shards) {
    auto embedded = shard.name.starts_with("shard-") ? shard.name.substr(6) : std::string();
    std::size_t index = 0;
    auto [end, ec] = std::from_chars(embedded.data(), embedded.data() + embedded.size(), index);
    if (!embedded.empty() && ec == std::errc{} && end == embedded.data() + embedded.size() &&
        index >= 1 && index <= config.embedded_pg_shards) {
      error.fields.push_back(
          {"shards", "shard " + shard.name + " is also an embedded shard (embedded_pg_shards)"});
    }
  }
  if (config.behind_pooler() && !config.shards.empty()) {
    error.fields.push_back({"shards",
                            "are reached directly: with database_pooler=transaction, shards are "
                            "not supported yet"});
  }
  if (!config.embedded_database() && config.embedded_pg_replicas > 0) {
    error.fields.push_back({"embedded_pg_replicas",
                            "is for the embedded database; with database_url, list the replicas "
                            "in database_replica_urls"});
  }
  if (!error.fields.empty()) return error;
  return config;
}

std::vector<std::pair<std::string, std::string>> describe(const Config& config) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& key : config_keys()) out.emplace_back(key.name, key.show(config));
  return out;
}

std::string mask_secrets(const std::string& connection_string) {
  static const std::regex kUriPassword(R"(^((?:postgres(?:ql)?|redis)://[^:/@]*:)[^@]*@)");
  static const std::regex kKeywordPassword(R"((password\s*=\s*)('[^']*'|\S+))");
  std::string out = std::regex_replace(connection_string, kUriPassword, "$1***@");
  out = std::regex_replace(out, kKeywordPassword, "$1***");
  return out;
}

}  // namespace liftoff::core
