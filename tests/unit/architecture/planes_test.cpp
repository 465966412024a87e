// The control plane and the tenant plane (docs/architecture.md, "Two planes"): every table has one
// plane, every fixed statement declares one, and a statement names only tables of its plane. Read
// from the sources themselves, so a new table or statement cannot skip the check. Database refuses
// a statement issued for a tenant of another plane (check_plane); tenant sharding routes on it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "liftoff/db/database.hpp"

namespace liftoff::db {
namespace {
namespace fs = std::filesystem;

// The one list of tables and their planes (docs/architecture.md shows the same).
const std::map<std::string, Plane>& table_planes() {
  static const std::map<std::string, Plane> planes{
      {"liftoff_installation", Plane::control},
      {"users", Plane::control},
      {"sessions", Plane::control},
      {"orgs", Plane::control},
      {"memberships", Plane::control},
      {"invitations", Plane::control},
      {"api_keys", Plane::control},
      {"stream_tickets", Plane::control},
      {"email_tokens", Plane::control},
      {"platform_operators", Plane::control},
      {"collections", Plane::tenant},
      {"records", Plane::tenant},
      {"collection_rewrites", Plane::tenant},
      {"idempotency_keys", Plane::tenant},
      {"audit_chains", Plane::tenant},
      {"audit_events", Plane::tenant},
      {"audit_pending", Plane::tenant},
      {"jobs", Plane::tenant},
      {"usage_hourly", Plane::tenant},
      {"usage_batches", Plane::tenant},
      {"job_unique_keys", Plane::tenant},
      {"job_schedules", Plane::tenant},
      {"webhook_endpoints", Plane::tenant},
      {"webhook_deliveries", Plane::tenant},
      {"notification_heads", Plane::control},
      {"notifications", Plane::control},
      {"shard_outbox", Plane::control},
      {"shard_inbox", Plane::tenant},
      {"shard_moves", Plane::control},
      {"shard_move_marks", Plane::tenant},
      {"shard_move_changes", Plane::tenant},
  };
  return planes;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Declared {
  std::string domain;  // the directory under src/liftoff: "records", "identity", ...
  std::string file;
  std::string constant;  // kName
  std::string plane;     // as written: "db::Plane::control"
  std::string name;      // the statement's name
  std::string sql;       // its string literals, joined
  // The text of the string macros it uses (LIFTOFF_...), by the domain that defines each: another
  // domain's SQL offered for use in this statement (e.g. audit's head subquery).
  std::map<std::string, std::string> borrowed;
};

struct StringMacro {
  std::string domain;
  std::string text;
};

// Every object-like macro `#define LIFTOFF_X "..."` of the sources, by name.
const std::map<std::string, StringMacro>& string_macros();

// The string literal starting at text[at] ('"' or 'R'); returns its contents and moves `at` past
// it.
std::string literal(const std::string& text, std::size_t& at) {
  if (text[at] == 'R') {
    auto open = text.find('(', at);
    auto delimiter = ")" + text.substr(at + 2, open - at - 2) + "\"";
    auto close = text.find(delimiter, open);
    auto contents = text.substr(open + 1, close - open - 1);
    at = close + delimiter.size();
    return contents;
  }
  std::string contents;
  for (++at; text[at] != '"'; ++at) {
    if (text[at] == '\\') ++at;
    contents += text[at];
  }
  ++at;
  return contents;
}

// Every `Statement kX{plane, "name", "SQL" ...}` of a source file.
std::vector<Declared> declarations(const fs::path& path) {
  std::vector<Declared> out;
  auto text = read_file(path);
  static const std::regex kStart(R"(Statement (k\w+)\s*\{)");
  for (std::sregex_iterator it(text.begin(), text.end(), kStart), end; it != end; ++it) {
    auto line = text.rfind('\n', static_cast<std::size_t>(it->position())) + 1;
    if (text.compare(text.find_first_not_of(' ', line), 2, "//") == 0) continue;  // a comment
    Declared d{
        path.parent_path().filename().string(), path.filename().string(), (*it)[1], {}, {}, {}};
    auto at = static_cast<std::size_t>(it->position() + it->length());
    auto comma = text.find(',', at);
    d.plane = text.substr(at, comma - at);
    d.plane.erase(0, d.plane.find_first_not_of(" \n"));
    bool first = true;
    for (at = comma; at < text.size() && text[at] != '}';) {
      bool raw = text.compare(at, 2, "R\"") == 0;
      if (text[at] == '"' || raw) {
        auto contents = literal(text, at);
        (first ? d.name : d.sql) += contents;
        first = false;
      } else if (text.compare(at, 8, "LIFTOFF_") == 0) {
        auto end = text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", at);
        auto it = string_macros().find(text.substr(at, end - at));
        if (it != string_macros().end()) d.borrowed[it->second.domain] += it->second.text;
        at = end;
      } else {
        ++at;
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

const std::map<std::string, StringMacro>& string_macros() {
  static const auto macros = [] {
    std::map<std::string, StringMacro> out;
    static const std::regex kDefine(R"re(#define (LIFTOFF_[A-Z0-9_]+)[ \\\n]+")re");
    for (const auto& entry : fs::recursive_directory_iterator(LIFTOFF_SOURCE_DIR "/src/liftoff")) {
      auto text = read_file(entry.path());
      for (std::sregex_iterator it(text.begin(), text.end(), kDefine), end; it != end; ++it) {
        auto at = static_cast<std::size_t>(it->position() + it->length() - 1);
        auto& macro = out[(*it)[1]];
        macro.domain = entry.path().parent_path().filename().string();
        while (at < text.size() && text[at] == '"') {
          macro.text += literal(text, at);
          at = text.find_first_not_of(" \\\n", at);
        }
      }
    }
    return out;
  }();
  return macros;
}

std::vector<Declared> all_declarations() {
  std::vector<Declared> out;
  for (const auto& entry : fs::recursive_directory_iterator(LIFTOFF_SOURCE_DIR "/src/liftoff")) {
    if (entry.path().extension() != ".cpp" && entry.path().extension() != ".hpp") continue;
    auto found = declarations(entry.path());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

// The migrations' functions that statements select from like tables (FROM f(...)): their planes
// and owning domains.
struct TableFunction {
  Plane plane;
  std::string owner;
};
const std::map<std::string, TableFunction>& table_functions() {
  static const std::map<std::string, TableFunction> functions{
      {"audit_seal", {Plane::tenant, "audit"}},
  };
  return functions;
}

// The tables and table functions a statement names.
std::set<std::string> tables_named(const std::string& sql) {
  static const std::regex kTable(R"(\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+([a-z_]+))");
  std::set<std::string> tables;
  for (std::sregex_iterator it(sql.begin(), sql.end(), kTable), end; it != end; ++it) {
    if (table_planes().contains((*it)[1]) || table_functions().contains((*it)[1]))
      tables.insert((*it)[1]);
  }
  return tables;
}

Plane plane_of(const std::string& table) {
  auto function = table_functions().find(table);
  return function != table_functions().end() ? function->second.plane : table_planes().at(table);
}

TEST(Planes, EveryTableOfTheMigrationsHasAPlane) {
  static const std::regex kCreate(R"(CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+))");
  std::size_t tables = 0;
  for (const auto& entry : fs::directory_iterator(LIFTOFF_SOURCE_DIR "/migrations/control")) {
    auto sql = read_file(entry.path());
    for (std::sregex_iterator it(sql.begin(), sql.end(), kCreate), end; it != end; ++it) {
      ++tables;
      EXPECT_TRUE(table_planes().contains((*it)[1]))
          << (*it)[1] << " (" << entry.path().filename()
          << ") has no plane: add it to table_planes() and docs/architecture.md";
    }
  }
  EXPECT_EQ(tables, table_planes().size());
}

// The listing the issue asks for: each statement with its plane, checked against its tables.
TEST(Planes, EveryStatementNamesOnlyTablesOfItsPlane) {
  auto declared = all_declarations();
  std::map<std::string, std::size_t> per_file;
  for (const auto& d : declared) {
    ++per_file[d.domain + "/" + d.file];
    auto sql = d.sql;
    for (const auto& [domain, text] : d.borrowed) sql += " " + text;
    auto tables = tables_named(sql);
    std::string listing = d.file + " " + d.constant + " (" + d.name + ", " + d.plane + "): ";
    for (const auto& t : tables) listing += t + " ";
    SCOPED_TRACE(listing);
    if (d.plane.ends_with("Plane::any")) {
      EXPECT_TRUE(tables.empty()) << "a statement of no plane names a plane's table";
    } else if (d.plane.ends_with("Plane::control")) {
      EXPECT_FALSE(tables.empty());
      for (const auto& t : tables) EXPECT_EQ(plane_of(t), Plane::control) << t;
    } else if (d.plane.ends_with("Plane::tenant")) {
      EXPECT_FALSE(tables.empty());
      for (const auto& t : tables) EXPECT_EQ(plane_of(t), Plane::tenant) << t;
    } else {
      ADD_FAILURE() << "the plane is not written first";
    }
  }
  // The reader finds the statements of every domain (it would pass vacuously if it found none).
  EXPECT_GE(declared.size(), 80u);
  for (const auto* file :
       {"audit/audit.cpp", "identity/store.cpp", "identity/org_store.cpp", "records/store.cpp",
        "records/idempotency.cpp", "records/events.cpp", "db/database.cpp", "db/migrations.cpp"})
    EXPECT_GT(per_file[file], 0u) << file;
}

// Which domain owns each table: only its statements name it (docs/architecture.md, "Stores").
// Another domain asks the owner (records asks audit for the org's head and its events).
const std::map<std::string, std::string>& table_owners() {
  static const std::map<std::string, std::string> owners{
      {"liftoff_installation", "db"},
      {"users", "identity"},
      {"sessions", "identity"},
      {"orgs", "identity"},
      {"memberships", "identity"},
      {"invitations", "identity"},
      {"api_keys", "identity"},
      {"stream_tickets", "identity"},
      {"email_tokens", "identity"},
      {"platform_operators", "identity"},
      {"collections", "records"},
      {"records", "records"},
      {"collection_rewrites", "records"},
      {"idempotency_keys", "records"},
      {"audit_chains", "audit"},
      {"audit_events", "audit"},
      {"audit_pending", "audit"},
      {"jobs", "jobs"},
      {"job_unique_keys", "jobs"},
      {"job_schedules", "jobs"},
      {"webhook_endpoints", "webhooks"},
      {"webhook_deliveries", "webhooks"},
      {"notification_heads", "notify"},
      {"notifications", "notify"},
      {"usage_hourly", "usage"},
      {"usage_batches", "usage"},
      {"shard_outbox", "db"},
      {"shard_inbox", "db"},
      {"shard_moves", "shards"},
      {"shard_move_marks", "shards"},
      {"shard_move_changes", "shards"},
  };
  return owners;
}

TEST(Domains, EveryTableHasAnOwner) {
  for (const auto& [table, plane] : table_planes()) EXPECT_TRUE(table_owners().contains(table));
  EXPECT_EQ(table_owners().size(), table_planes().size());
}

std::string owner_of(const std::string& table) {
  auto function = table_functions().find(table);
  return function != table_functions().end() ? function->second.owner : table_owners().at(table);
}

TEST(Domains, AStatementNamesOnlyTablesItsDomainOwns) {
  std::map<std::string, std::size_t> per_domain;
  for (const auto& d : all_declarations()) {
    ++per_domain[d.domain];
    for (const auto& t : tables_named(d.sql)) {
      EXPECT_EQ(owner_of(t), d.domain)
          << d.domain << "/" << d.file << " " << d.constant << " names " << t;
    }
    for (const auto& [domain, text] : d.borrowed) {
      for (const auto& t : tables_named(text)) {
        EXPECT_EQ(owner_of(t), domain)
            << d.domain << "/" << d.file << " " << d.constant << " borrows " << t;
      }
    }
  }
  // No SQL above the domains: api and app ask services.
  EXPECT_EQ(per_domain["api"], 0u);
  EXPECT_EQ(per_domain["app"], 0u);
  for (const auto* domain : {"identity", "records", "audit", "jobs", "webhooks", "db"})
    EXPECT_GT(per_domain[domain], 0u) << domain;
}

constexpr Statement kControl{Plane::control, "test.control", "SELECT 1 FROM users"};
constexpr Statement kTenant{Plane::tenant, "test.tenant", "SELECT 1 FROM records"};
constexpr Statement kNone{Plane::any, "test.none", "SELECT 1"};

TEST(Planes, AStatementRunsOnlyForATenantOfItsPlane) {
  auto org = Tenant::org(*Uuid::parse("0190a000-0000-7000-8000-000000000001"));
  EXPECT_TRUE(check_plane(kControl, Tenant::control()));
  EXPECT_TRUE(check_plane(kTenant, org));
  EXPECT_TRUE(check_plane(kTenant, Tenant::every_org()));
  for (const auto& tenant : {Tenant::control(), org, Tenant::every_org()})
    EXPECT_TRUE(check_plane(kNone, tenant));
  // An org's transaction over both planes (an org change with its audit event).
  EXPECT_TRUE(check_plane(kControl, org, Planes::both));
  EXPECT_TRUE(check_plane(kTenant, org, Planes::both));
}

#ifndef NDEBUG
TEST(PlanesDeathTest, ATenantPlaneStatementWithoutATenantIsABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH((void)check_plane(kTenant, Tenant::control()), "another plane");
  EXPECT_DEATH((void)check_plane(kControl, Tenant::every_org()), "another plane");
  // Both planes are for an org's transaction; the control plane alone never reaches a tenant's.
  EXPECT_DEATH((void)check_plane(kTenant, Tenant::control(), Planes::both), "another plane");
}
#else
TEST(Planes, ATenantPlaneStatementWithoutATenantIsRefused) {
  EXPECT_EQ(check_plane(kTenant, Tenant::control()).error().code, Errc::internal);
  EXPECT_EQ(check_plane(kControl, Tenant::every_org()).error().code, Errc::internal);
}
#endif

}  // namespace
}  // namespace liftoff::db
