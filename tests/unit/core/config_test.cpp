#include "liftoff/core/config.hpp"

#include <gtest/gtest.h>

namespace liftoff::core {
namespace {

TEST(Config, DefaultsWithoutSources) {
  auto c = load_config({});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->listen_host, "127.0.0.1");
  EXPECT_EQ(c->listen_port, 8080);
  EXPECT_TRUE(c->embedded_database());
  EXPECT_GE(c->effective_threads(), 1u);
}

TEST(Config, FlagsBeatEnvironmentBeatsFile) {
  // Made with the text (see UnknownFileKeyAndBadLineAreErrors).
  ConfigSources s{.file_text = "listen = 127.0.0.1:1000\nthreads = 3\nlog_level = debug\n"};
  s.env = {{"LIFTOFF_LISTEN", "127.0.0.1:2000"}, {"LIFTOFF_THREADS", "5"}};
  s.flags = {{"listen", "127.0.0.1:3000"}};
  auto c = load_config(s);
  ASSERT_TRUE(c) << c.error().detail;
  EXPECT_EQ(c->listen_port, 3000);   // flag
  EXPECT_EQ(c->threads, 5u);         // env over file
  EXPECT_EQ(c->log_level, "debug");  // file over default
}

TEST(Config, InvalidValuesNameTheKeyAndSource) {
  ConfigSources s;
  s.env = {{"LIFTOFF_THREADS", "many"}, {"LIFTOFF_LISTEN", "nohost"}};
  auto c = load_config(s);
  ASSERT_FALSE(c);
  ASSERT_EQ(c.error().fields.size(), 2u);
  bool saw_threads = false;
  for (const auto& f : c.error().fields) {
    if (f.field == "threads") {
      saw_threads = true;
      EXPECT_NE(f.message.find("LIFTOFF_THREADS"), std::string::npos);
    }
  }
  EXPECT_TRUE(saw_threads);
}

TEST(Config, UnknownFileKeyAndBadLineAreErrors) {
  // Made with the text, not assigned it after: GCC 12 at -O2 takes an assignment to the unset
  // optional for a read of an uninitialized string (-Wmaybe-uninitialized), failing the release
  // build.
  const ConfigSources s{.file_text = "# comment\n\nlisten_port = 9\nthis line has no equals\n"};
  auto c = load_config(s);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().fields.size(), 2u);
}

TEST(Config, SizesDurationsAndBounds) {
  ConfigSources s;
  s.flags = {{"body_limit", "2m"},
             {"header_limit", "8k"},
             {"request_timeout", "2s"},
             {"idle_timeout", "1500ms"},
             {"session_cache_entries", "250000"}};
  auto c = load_config(s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->session_cache_entries, 250000u);
  EXPECT_EQ(c->body_limit, 2u * 1024 * 1024);
  EXPECT_EQ(c->header_limit, 8u * 1024);
  EXPECT_EQ(c->request_timeout, std::chrono::seconds(2));
  EXPECT_EQ(c->idle_timeout, std::chrono::milliseconds(1500));

  s.flags = {{"header_limit", "10"}};  // below the minimum
  EXPECT_FALSE(load_config(s));
  s.flags = {{"session_cache_entries", "0"}};  // a cache of no entries: use session_cache_ttl=0
  EXPECT_FALSE(load_config(s));
  s.flags = {{"request_timeout", "5h"}};
  EXPECT_FALSE(load_config(s));
  s.flags = {{"listen", "127.0.0.1:70000"}};
  EXPECT_FALSE(load_config(s));
}

TEST(Config, RatiosAreNumbersFromZeroToOne) {
  ConfigSources s;
  EXPECT_EQ(load_config(s)->trace_sample_ratio, 0.01);
  for (const auto& [text, value] :
       {std::pair{"0", 0.0}, {"1", 1.0}, {"0.25", 0.25}, {"1e-3", 0.001}}) {
    s.flags = {{"trace_sample_ratio", text}};
    auto c = load_config(s);
    ASSERT_TRUE(c) << text;
    EXPECT_EQ(c->trace_sample_ratio, value) << text;
  }
  for (const char* bad : {"1.5", "-0.1", "half", "0.5x", "", "nan"}) {
    s.flags = {{"trace_sample_ratio", bad}};
    auto c = load_config(s);
    ASSERT_FALSE(c) << bad;
    ASSERT_EQ(c.error().fields.size(), 1u);
    EXPECT_EQ(c.error().fields[0].field, "trace_sample_ratio");
  }
}

TEST(Config, DatabaseUrlMustBeAPostgresUri) {
  ConfigSources s;
  s.env = {{"LIFTOFF_DATABASE_URL", "mysql://x"}};
  EXPECT_FALSE(load_config(s));
  s.env = {{"LIFTOFF_DATABASE_URL", "postgresql://u:p@h/db"}};
  auto c = load_config(s);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->embedded_database());
}

// The first field an invalid configuration names (empty when it loads).
std::string refused_key(const ConfigSources& s) {
  auto c = load_config(s);
  return c ? "" : c.error().fields.front().field;
}

TEST(Config, ReplicasPoolerAndDirectUrlAreCheckedTogether) {
  ConfigSources s;
  s.env = {{"LIFTOFF_DATABASE_URL", "postgresql://u:p@h1,h2/db?target_session_attrs=read-write"},
           {"LIFTOFF_DATABASE_REPLICA_URLS", "postgresql://u:p@r1/db, postgresql://u:p@r2/db"}};
  auto c = load_config(s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->database_replica_urls.size(), 2u);
  s.env["LIFTOFF_DATABASE_REPLICA_URLS"] = "postgresql://u:p@r1/db,r2";
  EXPECT_EQ(refused_key(s), "database_replica_urls");
  // Replicas are the configured primary's: the embedded database brings its own.
  s.env = {{"LIFTOFF_DATABASE_REPLICA_URLS", "postgresql://u:p@r1/db"}};
  EXPECT_EQ(refused_key(s), "database_replica_urls");
  s.env = {{"LIFTOFF_DATABASE_URL", "postgresql://u:p@h/db"},
           {"LIFTOFF_EMBEDDED_PG_REPLICAS", "2"}};
  EXPECT_EQ(refused_key(s), "embedded_pg_replicas");
  // A transaction pooler needs the direct URL for LISTEN and migrations.
  s.env = {{"LIFTOFF_DATABASE_URL", "postgresql://u:p@bouncer/db"},
           {"LIFTOFF_DATABASE_POOLER", "transaction"}};
  EXPECT_EQ(refused_key(s), "database_direct_url");
  s.env["LIFTOFF_DATABASE_DIRECT_URL"] = "postgresql://u:p@h/db";
  ASSERT_TRUE(load_config(s));
  EXPECT_TRUE(load_config(s)->behind_pooler());
  s.env["LIFTOFF_DATABASE_POOLER"] = "session";
  EXPECT_EQ(refused_key(s), "database_pooler");
  s.env = {{"LIFTOFF_DATABASE_POOLER", "transaction"}};
  EXPECT_EQ(refused_key(s), "database_pooler");
  s.env = {{"LIFTOFF_MAX_REPLICA_LAG", "5ms"}};
  EXPECT_EQ(refused_key(s), "max_replica_lag");
}

TEST(Config, ShardsAreNamedWithTheirPrimariesAndReplicas) {
  ConfigSources s;
  s.env = {{"LIFTOFF_DATABASE_URL", "postgresql://u:p@control/db"},
           {"LIFTOFF_SHARDS",
            "eu-1=postgresql://u:p@a1,a2/db?target_session_attrs=read-write; "
            "us-1 = postgresql://u:p@b/db"},
           {"LIFTOFF_SHARD_REPLICA_URLS", "us-1=postgresql://u:p@b1/db, postgresql://u:p@b2/db"}};
  auto c = load_config(s);
  ASSERT_TRUE(c) << c.error().for_log();
  ASSERT_EQ(c->shards.size(), 2u);
  // A URI keeps its commas (several hosts); entries are separated by ';'.
  EXPECT_EQ(c->shards[0],
            (ShardConfig{"eu-1", "postgresql://u:p@a1,a2/db?target_session_attrs=read-write", {}}));
  EXPECT_EQ(c->shards[1], (ShardConfig{"us-1",
                                       "postgresql://u:p@b/db",
                                       {"postgresql://u:p@b1/db", "postgresql://u:p@b2/db"}}));
  for (const auto& [key, value] : describe(*c)) {
    if (key == "shards" || key == "shard_replica_urls") {
      EXPECT_EQ(value.find(":p@"), std::string::npos) << key << " shows a password: " << value;
    }
  }

  auto refused = [&](const std::string& key, const std::string& value) {
    auto bad = s;
    bad.env[key] = value;
    return refused_key(bad);
  };
  EXPECT_EQ(refused("LIFTOFF_SHARDS", "main=postgresql://u:p@x/db"), "shards");
  EXPECT_EQ(refused("LIFTOFF_SHARDS", "EU=postgresql://u:p@x/db"), "shards");
  EXPECT_EQ(refused("LIFTOFF_SHARDS", "postgresql://u:p@x/db"), "shards");
  EXPECT_EQ(refused("LIFTOFF_SHARDS", "a=mysql://x"), "shards");
  EXPECT_EQ(refused("LIFTOFF_SHARDS", "a=postgresql://x/db;a=postgresql://y/db"), "shards");
  EXPECT_EQ(refused("LIFTOFF_SHARD_REPLICA_URLS", "eu-2=postgresql://u:p@x/db"),
            "shard_replica_urls");
  EXPECT_EQ(refused("LIFTOFF_SHARD_REPLICA_URLS", "us-1=r1"), "shard_replica_urls");
  // Embedded shards are the embedded database's, and take the names shard-1, ...
  EXPECT_EQ(refused("LIFTOFF_EMBEDDED_PG_SHARDS", "1"), "embedded_pg_shards");
  ConfigSources embedded;
  embedded.env = {{"LIFTOFF_EMBEDDED_PG_SHARDS", "2"}};
  ASSERT_TRUE(load_config(embedded));
  embedded.env["LIFTOFF_SHARDS"] = "shard-2=postgresql://u:p@x/db";
  EXPECT_EQ(refused_key(embedded), "shards");
  embedded.env["LIFTOFF_SHARDS"] = "shard-3=postgresql://u:p@x/db";
  EXPECT_TRUE(load_config(embedded));
}

TEST(Config, SecretsAreMaskedWhenDescribed) {
  EXPECT_EQ(mask_secrets("postgresql://user:s3cret@db:5432/app"),
            "postgresql://user:***@db:5432/app");
  EXPECT_EQ(mask_secrets("host=db password=s3cret user=x"), "host=db password=*** user=x");
  EXPECT_EQ(mask_secrets("postgresql://db/app"), "postgresql://db/app");
  EXPECT_EQ(mask_secrets("redis://:s3cret@cache:6380"), "redis://:***@cache:6380");
  ConfigSources s;
  s.env = {{"LIFTOFF_DATABASE_URL", "postgres://u:topsecret@h/db"},
           {"LIFTOFF_DATABASE_REPLICA_URLS", "postgres://u:topsecret@r/db"},
           {"LIFTOFF_DATABASE_DIRECT_URL", "postgres://u:topsecret@d/db"}};
  auto c = load_config(s);
  ASSERT_TRUE(c);
  for (const auto& [key, value] : describe(*c))
    EXPECT_EQ(value.find("topsecret"), std::string::npos) << key;
}

TEST(Config, TrustedProxiesAreAListOfAddresses) {
  ConfigSources s;
  s.flags = {{"trusted_proxies", "10.0.0.1, 10.0.0.2,::1"}};
  auto c = load_config(s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->trusted_proxies, (std::vector<std::string>{"10.0.0.1", "10.0.0.2", "::1"}));
  s.flags = {{"trusted_proxies", "10.0.0.1,evil.example.com"}};
  EXPECT_FALSE(load_config(s));
}

TEST(Config, NamesOfFlagsAndEnvironment) {
  EXPECT_EQ(flag_name("database_url"), "database-url");
  EXPECT_EQ(env_name("database_url"), "LIFTOFF_DATABASE_URL");
}

}  // namespace
}  // namespace liftoff::core
