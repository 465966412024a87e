#include "load/seed.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <sodium.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include "liftoff/core/time.hpp"
#include "liftoff/identity/credentials.hpp"
#include "liftoff/records/schema.hpp"

namespace liftoff::load {
namespace {

struct PgDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, PgDeleter>;
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

constexpr std::string_view kTicketFields = R"([
  {"name": "title", "type": "text", "required": true},
  {"name": "status", "type": "enum", "values": ["open", "closed"], "required": true, "indexed": true},
  {"name": "priority", "type": "integer", "required": true, "indexed": true}])";

Error pg_error(PGconn* c, std::string_view what) {
  return make_error(Errc::unavailable, fmt::format("{}: {}", what, PQerrorMessage(c)));
}

Result<void> exec(PGconn* c, const std::string& sql) {
  PgResult r(PQexec(c, sql.c_str()));
  auto status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    return pg_error(c, sql.substr(0, 60));
  return {};
}

std::string hex_bytea(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\\\x";  // COPY text format: the backslash itself is escaped
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// Streams rows into `COPY table (columns) FROM STDIN` in 1 MiB pieces.
class Copy {
 public:
  Copy(PGconn* c, std::string table, std::uint64_t total,
       const std::function<void(const SeedProgress&)>& progress)
      : c_(c), table_(std::move(table)), total_(total), progress_(progress) {}

  Result<void> begin(std::string_view columns) {
    PgResult r(PQexec(c_, fmt::format("COPY {} ({}) FROM STDIN", table_, columns).c_str()));
    if (PQresultStatus(r.get()) != PGRES_COPY_IN) return pg_error(c_, "COPY " + table_);
    return {};
  }
  Result<void> row(const std::string& line) {
    buffer_ += line;
    buffer_ += '\n';
    ++done_;
    if (buffer_.size() >= (1 << 20)) return flush();
    return {};
  }
  Result<void> end() {
    auto flushed = flush();
    if (!flushed) return flushed;
    if (PQputCopyEnd(c_, nullptr) != 1) return pg_error(c_, "COPY end");
    PgResult r(PQgetResult(c_));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) return pg_error(c_, "COPY " + table_);
    return {};
  }

 private:
  Result<void> flush() {
    if (!buffer_.empty() &&
        PQputCopyData(c_, buffer_.data(), static_cast<int>(buffer_.size())) != 1)
      return pg_error(c_, "COPY data");
    buffer_.clear();
    if (progress_) progress_({table_, done_, total_});
    return {};
  }
  PGconn* c_;
  std::string table_;
  std::uint64_t total_;
  const std::function<void(const SeedProgress&)>& progress_;
  std::string buffer_;
  std::uint64_t done_ = 0;
};

// to_tsvector('simple', text) for text of lower-case-able ASCII words and numbers, as a tsvector
// literal: each word with its position (what the server stores in `search`).
std::string tsvector_literal(std::string_view text) {
  std::map<std::string, std::vector<int>> words;
  int position = 0;
  std::string word;
  auto take = [&] {
    if (word.empty()) return;
    words[word].push_back(++position);
    word.clear();
  };
  for (char ch : text) {
    if (std::isalnum(static_cast<unsigned char>(ch))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    } else {
      take();
    }
  }
  take();
  std::string out;
  for (const auto& [w, positions] : words) {
    if (!out.empty()) out += ' ';
    out += "'" + w + "':";
    for (std::size_t i = 0; i < positions.size(); ++i)
      out += (i ? "," : "") + std::to_string(positions[i]);
  }
  return out;
}

}  // namespace

Result<void> seed(const std::string& database_url, const Dataset& d,
                  const std::function<void(const SeedProgress&)>& progress) {
  if (sodium_init() < 0) return make_error(Errc::internal, "libsodium failed to start");
  Conn conn(PQconnectdb(database_url.c_str()));
  PGconn* c = conn.get();
  if (PQstatus(c) != CONNECTION_OK) return pg_error(c, "connect");
  if (!exec(c, "SELECT 1 FROM collections LIMIT 0")) {
    return make_error(Errc::unavailable,
                      "the database has no Liftoff schema: run `liftoff migrate up` first");
  }
  {
    auto sql = fmt::format("SELECT 1 FROM orgs WHERE id = '{}'", d.org_id(0).to_string());
    PgResult r(PQexec(c, sql.c_str()));
    if (PQntuples(r.get()) > 0)
      return make_error(Errc::conflict,
                        "run '" + d.run + "' is already seeded: pick another --run");
  }
  // One Argon2id hash for every user, with the server's default parameters (no rehash at login).
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, kBenchPassword.data(), kBenchPassword.size(), 2, 64 * 1024 * 1024) !=
      0)
    return make_error(Errc::internal, "hashing the benchmark password ran out of memory");
  auto schema = records::Schema::parse(boost::json::parse(kTicketFields), {});
  if (!schema) return schema.error();
  auto fields = boost::json::serialize(schema->to_json());
  auto expires = core::format_rfc3339(std::chrono::time_point_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now() + std::chrono::hours(24 * 30)));

  auto started = exec(c, "BEGIN");
  if (!started) return started;
  auto load = [&](const std::string& table, std::string_view columns, std::uint64_t total,
                  const std::function<std::string(std::uint64_t)>& line) -> Result<void> {
    Copy copy(c, table, total, progress);
    auto begun = copy.begin(columns);
    if (!begun) return begun;
    for (std::uint64_t i = 0; i < total; ++i) {
      auto written = copy.row(line(i));
      if (!written) return written;
    }
    return copy.end();
  };
  Result<void> done;
  done = load("users", "id, email, name, password_hash", d.users, [&](std::uint64_t u) {
    return fmt::format("{}\t{}\tBench User {}\t{}", d.user_id(u).to_string(), d.user_email(u), u,
                       hash);
  });
  if (!done) return done;
  done = load("sessions", "id, user_id, token_hash, expires_at", d.users, [&](std::uint64_t u) {
    return fmt::format("{}\t{}\t{}\t{}", d.session_id(u).to_string(), d.user_id(u).to_string(),
                       hex_bytea(identity::token_digest(d.session_token(u))), expires);
  });
  if (!done) return done;
  done = load("orgs", "id, name", d.orgs(), [&](std::uint64_t o) {
    return fmt::format("{}\tBench Org {}", d.org_id(o).to_string(), o);
  });
  if (!done) return done;
  done = load("audit_chains", "org_id, last_seq, last_hash", d.orgs(), [&](std::uint64_t o) {
    return fmt::format("{}\t0\t\\\\x", d.org_id(o).to_string());
  });
  if (!done) return done;
  done = load("memberships", "org_id, user_id, role", d.users, [&](std::uint64_t u) {
    return fmt::format("{}\t{}\t{}", d.org_id(Dataset::org_of(u)).to_string(),
                       d.user_id(u).to_string(), Dataset::role_of(u));
  });
  if (!done) return done;
  done = load("collections", "id, org_id, name, fields", d.orgs(), [&](std::uint64_t o) {
    return fmt::format("{}\t{}\ttickets\t{}", d.collection_id(o).to_string(),
                       d.org_id(o).to_string(), fields);
  });
  if (!done) return done;
  // Records org by org: (org, index) pairs enumerated in one pass.
  std::uint64_t org = 0, index = 0;
  done =
      load("records", "collection_id, id, org_id, data, t1, n1, search", d.total_records(),
           [&](std::uint64_t) {
             while (index >= d.records_in_org(org)) {
               ++org;
               index = 0;
             }
             auto status = index % 10 == 0 ? "open" : "closed";
             auto priority = index % 100;
             auto title = fmt::format("ticket {}", index);
             auto line = fmt::format(
                 "{}\t{}\t{}\t{{\"title\": \"{}\", \"status\": \"{}\", \"priority\": {}}}\t{}\t{}"
                 "\t{}",
                 d.collection_id(org).to_string(), d.record_id(org, index).to_string(),
                 d.org_id(org).to_string(), title, status, priority, status, priority,
                 tsvector_literal(title + " " + status));
             ++index;
             return line;
           });
  if (!done) return done;
  auto committed = exec(c, "COMMIT");
  if (!committed) return committed;
  // Vacuumed as well as analyzed, as a database in steady state is: otherwise autovacuum visits
  // the freshly loaded tables during the first measurements, and index-only scans cannot skip
  // the heap until the visibility map is set.
  return exec(c,
              "VACUUM (ANALYZE) users, sessions, orgs, memberships, collections, audit_chains, "
              "records");
}

}  // namespace liftoff::load
