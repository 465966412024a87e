#include "liftoff/audit/audit.hpp"

#include <sodium.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <limits>

#include "liftoff/core/id.hpp"
#include "liftoff/core/text.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/db/database.hpp"

namespace liftoff::audit {
namespace asio = boost::asio;
namespace json = boost::json;
using db::Params;
using db::Statement;

namespace {
constexpr Statement kStartChain{
    db::Plane::tenant, "audit.start_chain",
    "INSERT INTO audit_chains (org_id, last_seq, last_hash) VALUES ($1, 0, ''::bytea)"};
// A mutation's event is inserted unnumbered and unchained (migrations/control/0019): the sealer
// numbers and links it later (audit_seal), so the write takes no lock one org's writers share.
constexpr Statement kAppend{
    db::Plane::tenant, "audit.append",
    "INSERT INTO audit_pending (org_id, id, occurred_at, actor_type, actor_id, action, "
    "target_type, target_id, before, after, ip, user_agent, request_id) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::json, $10::json, $11, $12, $13)"};
// kAppend for several events of one request (same org, actor and time): $2 is a JSON array of
// each event's id, action, target and before/after text, inserted in its order.
constexpr Statement kAppendMany{
    db::Plane::tenant, "audit.append_many",
    "INSERT INTO audit_pending (org_id, id, occurred_at, actor_type, actor_id, action, "
    "target_type, target_id, before, after, ip, user_agent, request_id) "
    "SELECT $1, e.id, $3, $4, $5, e.action, e.target_type, e.target_id, e.before::json, "
    "e.after::json, $6, $7, $8 FROM ROWS FROM (jsonb_to_recordset($2) AS (id uuid, action text, "
    "target_type text, target_id text, before text, after text)) WITH ORDINALITY "
    "AS e(id, action, target_type, target_id, before, after, n) ORDER BY e.n"};
// Events relayed to the org's shard (receive_relayed): $1 is a JSON array of every column of
// each, in their order. The first event of an org on a shard starts its chain there.
constexpr Statement kReceive{
    db::Plane::tenant, "audit.receive",
    "WITH e AS MATERIALIZED (SELECT * FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS ("
    "org_id uuid, id uuid, occurred_us bigint, actor_type text, actor_id uuid, action text, "
    "target_type text, target_id text, before text, after text, ip text, user_agent text, "
    "request_id text)) "
    "WITH ORDINALITY AS e(org_id, id, occurred_us, actor_type, actor_id, action, target_type, "
    "target_id, before, after, ip, user_agent, request_id, n)), "
    "chains AS (INSERT INTO audit_chains (org_id, last_seq, last_hash) "
    "SELECT DISTINCT org_id, 0, ''::bytea FROM e ON CONFLICT (org_id) DO NOTHING) "
    "INSERT INTO audit_pending (org_id, id, occurred_at, actor_type, actor_id, action, "
    "target_type, target_id, before, after, ip, user_agent, request_id) "
    "SELECT org_id, id, timestamptz 'epoch' + occurred_us * interval '1 microsecond', actor_type, "
    "actor_id, action, target_type, target_id, before::json, after::json, ip, user_agent, "
    "request_id FROM e ORDER BY n"};
// The outbox's kind of relayed events.
constexpr std::string_view kOutboxKind = "audit";

// $1: the orgs to seal, waiting for their heads (null: every org with pending events whose head is
// free); $2: at most that many events of each.
constexpr Statement kSeal{db::Plane::tenant, "audit.seal",
                          "SELECT org_id, last_seq, sealed FROM audit_seal($1::uuid[], $2)"};

#define LIFTOFF_AUDIT_COLUMNS                                                            \
  "org_id, seq, id, occurred_at, actor_type, actor_id, action, target_type, target_id, " \
  "before::text, after::text, ip, user_agent, request_id, prev_hash, hash"
constexpr Statement kList{
    db::Plane::tenant, "audit.list",
    "SELECT " LIFTOFF_AUDIT_COLUMNS
    " FROM audit_events WHERE org_id = $1 AND ($2::text IS NULL OR action = $2) "
    "AND ($3::uuid IS NULL OR actor_id = $3) AND ($4::timestamptz IS NULL OR occurred_at >= $4) "
    "AND ($5::timestamptz IS NULL OR occurred_at < $5) AND seq < $6 "
    "ORDER BY seq DESC LIMIT $7"};
// The seq of the $7-th and next matching events, newest first (the same filter as kList).
constexpr Statement kContinuation{
    db::Plane::tenant, "audit.continuation",
    "SELECT seq FROM audit_events WHERE org_id = $1 AND ($2::text IS NULL OR action = $2) "
    "AND ($3::uuid IS NULL OR actor_id = $3) AND ($4::timestamptz IS NULL OR occurred_at >= $4) "
    "AND ($5::timestamptz IS NULL OR occurred_at < $5) AND seq < $6 "
    "ORDER BY seq DESC OFFSET $7 LIMIT 2"};
// The events after $2 up to $3, each with its canonical text (audit_canonical, the form the sealer
// hashed).
constexpr Statement kChainPage{
    db::Plane::tenant, "audit.chain_page",
    "SELECT " LIFTOFF_AUDIT_COLUMNS
    ", audit_canonical(org_id, seq, id, occurred_at, actor_type, actor_id, action, target_type, "
    "target_id, before, after, ip, user_agent, request_id) FROM audit_events "
    "WHERE org_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT 1000"};
#undef LIFTOFF_AUDIT_COLUMNS
// The head and the number of events committed but not sealed yet, in one snapshot.
constexpr Statement kChainHead{
    db::Plane::tenant, "audit.chain_head",
    "SELECT last_seq, last_hash, (SELECT count(*) FROM audit_pending WHERE org_id = $1) "
    "FROM audit_chains WHERE org_id = $1"};

constexpr Statement kHead{db::Plane::tenant, "audit.head",
                          "SELECT last_seq FROM audit_chains WHERE org_id = $1"};
constexpr Statement kCommitted{db::Plane::tenant, "audit.committed",
                               "SELECT " LIFTOFF_AUDIT_COMMITTED_OF_ORG_1};

#define LIFTOFF_ENTRY_COLUMNS                                                                 \
  "org_id, seq, occurred_at, action, target_type, before::text, after::text, id, target_id, " \
  "actor_type, actor_id"
constexpr Statement kEntries{db::Plane::tenant, "audit.entries",
                             "SELECT " LIFTOFF_ENTRY_COLUMNS
                             " FROM audit_events WHERE org_id = $1 AND seq > $2 AND seq <= $3 "
                             "ORDER BY seq LIMIT $4"};
// $1 is [{"org_id": …, "after_seq": seq}, …].
constexpr Statement kEntriesAfter{
    db::Plane::tenant, "audit.entries_after",
    "SELECT e." LIFTOFF_ENTRY_COLUMNS
    " FROM jsonb_to_recordset($1) AS s(org_id uuid, after_seq bigint) CROSS JOIN LATERAL "
    "(SELECT * FROM audit_events a WHERE a.org_id = s.org_id AND a.seq > s.after_seq "
    "ORDER BY a.seq LIMIT $2) e"};
#undef LIFTOFF_ENTRY_COLUMNS

Entry entry_from(const db::Row& row) {
  Entry entry{row.get<db::Uuid>(0),
              row.get<std::int64_t>(1),
              row.get<db::Timestamp>(2),
              row.get<std::string>(3),
              row.get<std::string>(4),
              row.get<std::optional<std::string>>(5),
              row.get<std::optional<std::string>>(6)};
  entry.id = row.get<db::Uuid>(7);
  entry.target_id = row.get<std::string>(8);
  entry.actor_type = row.get<std::string>(9);
  entry.actor_id = row.get<std::optional<db::Uuid>>(10);
  return entry;
}

Event event_from(const db::Row& row) {
  Event e;
  e.org_id = row.get<db::Uuid>(0);
  e.seq = row.get<std::int64_t>(1);
  e.id = row.get<db::Uuid>(2);
  e.occurred_at = row.get<db::Timestamp>(3);
  e.actor.type = row.get<std::string>(4);
  e.actor.id = row.get<std::optional<db::Uuid>>(5);
  e.change.action = row.get<std::string>(6);
  e.change.target_type = row.get<std::string>(7);
  e.change.target_id = row.get<std::string>(8);
  e.change.before = row.get<std::optional<std::string>>(9);
  e.change.after = row.get<std::optional<std::string>>(10);
  e.actor.ip = row.get<std::string>(11);
  e.actor.user_agent = row.get<std::string>(12);
  e.actor.request_id = row.get<std::string>(13);
  e.prev_hash = row.get<db::Bytes>(14).data;
  e.hash = row.get<db::Bytes>(15).data;
  return e;
}
}  // namespace

std::string chain_hash(std::string_view prev_hash, std::string_view canonical) {
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(prev_hash.data()),
                            prev_hash.size());
  crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(canonical.data()),
                            canonical.size());
  std::string digest(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256_final(&state, reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

namespace {

json::value text_or_null(const std::optional<std::string>& text) {
  return text ? json::value(*text) : json::value(nullptr);
}

db::Timestamp now_in_micros() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

// The events of an org whose shard is another cluster than `tx`'s: posted there through the
// outbox, each with every column it will have (receive_relayed writes them).
asio::awaitable<Result<void>> post_and_commit(db::Transaction& tx, const db::Scope& scope,
                                              std::span<const Change> changes) {
  const auto occurred_us = now_in_micros().time_since_epoch().count();
  const auto& actor = scope.actor;
  for (const auto& change : changes) {
    db::Uuid id{core::new_uuid_v7()};
    json::object event{{"org_id", scope.org().to_string()},
                       {"id", id.to_string()},
                       {"occurred_us", occurred_us},
                       {"actor_type", actor.type},
                       {"actor_id", actor.id ? json::value(actor.id->to_string()) : nullptr},
                       {"action", change.action},
                       {"target_type", change.target_type},
                       {"target_id", change.target_id},
                       {"before", text_or_null(change.before)},
                       {"after", text_or_null(change.after)},
                       {"ip", actor.ip},
                       {"user_agent", actor.user_agent},
                       {"request_id", actor.request_id}};
    db::OutboxItem item{id, scope.org(), std::string(kOutboxKind), json::serialize(event)};
    auto posted = co_await tx.post(item);
    if (!posted) co_return posted.error();
  }
  co_return co_await tx.commit();
}

}  // namespace

void receive_relayed(db::Database& database) {
  database.outbox().receive(
      std::string(kOutboxKind),
      [](db::Transaction& tx,
         std::span<const db::OutboxItem> items) -> asio::awaitable<Result<void>> {
        Params params(db::Json{db::bodies_as_array(items)});
        co_return co_await tx.execute(kReceive, params);
      });
}

asio::awaitable<Result<void>> start_chain(db::Transaction& tx, const db::Uuid& org_id) {
  auto here = co_await tx.holds_tenant(org_id);
  if (!here) co_return here.error();
  if (!*here) co_return Result<void>{};  // its first relayed event starts it on its shard
  Params params(org_id);
  auto rows = co_await tx.query(kStartChain, params);
  if (!rows) co_return rows.error();
  co_return Result<void>{};
}

asio::awaitable<Result<void>> append_and_commit(db::Transaction& tx, const db::Scope& scope,
                                                const Change& change) {
  auto here = co_await tx.holds_tenant(scope.org());
  if (!here) co_return here.error();
  if (!*here) co_return co_await post_and_commit(tx, scope, std::span<const Change>(&change, 1));
  auto occurred_at = now_in_micros();
  const auto& actor = scope.actor;
  Params params;
  params.add(scope.org()).add(db::Uuid{core::new_uuid_v7()}).add(occurred_at);
  params.add(actor.type).add(actor.id);
  params.add(change.action).add(change.target_type).add(change.target_id);
  params.add(change.before).add(change.after);
  params.add(actor.ip).add(actor.user_agent).add(actor.request_id);
  auto appended = co_await tx.commit_after(kAppend, params);
  if (!appended) co_return appended.error();
  co_return Result<void>{};
}

asio::awaitable<Result<void>> append_and_commit(db::Transaction& tx, const db::Scope& scope,
                                                std::span<const Change> changes) {
  if (changes.size() == 1) co_return co_await append_and_commit(tx, scope, changes.front());
  if (changes.empty()) co_return co_await tx.commit();
  auto here = co_await tx.holds_tenant(scope.org());
  if (!here) co_return here.error();
  if (!*here) co_return co_await post_and_commit(tx, scope, changes);
  auto occurred_at = now_in_micros();
  json::array events;
  events.reserve(changes.size());
  for (const auto& c : changes) {
    events.push_back(json::object{{"id", db::Uuid{core::new_uuid_v7()}.to_string()},
                                  {"action", c.action},
                                  {"target_type", c.target_type},
                                  {"target_id", c.target_id},
                                  {"before", text_or_null(c.before)},
                                  {"after", text_or_null(c.after)}});
  }
  const auto& actor = scope.actor;
  Params params(scope.org(), db::Json{json::serialize(events)}, occurred_at, actor.type, actor.id,
                actor.ip, actor.user_agent, actor.request_id);
  auto appended = co_await tx.commit_after(kAppendMany, params);
  if (!appended) co_return appended.error();
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<Sealed>>> seal(db::Database& database, const db::Scope& scope,
                                                  std::int32_t max_per_org) {
  std::optional<std::string> orgs;  // a uuid[] literal; null: every org's (the background sealer)
  if (const auto& org = scope.tenant.org_id()) orgs = "{" + org->to_string() + "}";
  Params params(orgs, max_per_org);
  Result<db::Rows> rows = make_error(Errc::internal, "not run");
  if (orgs) {
    // One org's events: where its reads will look for them (read-your-writes).
    rows = co_await database.query(db::Intent::write, scope, kSeal, params);
  } else {
    // A round over every org may take a while: on a connection of its own, not ahead of other
    // requests' statements on a shared one.
    auto lease = co_await database.acquire(db::Intent::write, scope);
    if (!lease) co_return lease.error();
    rows = co_await (*lease)->query(kSeal, params, database.statement_deadline(scope));
  }
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, [](const db::Row& row) {
    return Sealed{row.get<db::Uuid>(0), row.get<std::int64_t>(1), row.get<std::int32_t>(2)};
  });
}

asio::awaitable<Result<void>> seal_committed(db::Database& database, const db::Scope& scope) {
  constexpr std::int32_t kRound = 10'000;
  for (;;) {
    auto sealed = co_await seal(database, scope, kRound);
    if (!sealed) co_return sealed.error();
    if (sealed->empty() || sealed->front().sealed < kRound) co_return Result<void>{};
  }
}

asio::awaitable<Result<std::vector<Event>>> list(db::Database& database, const db::Scope& scope,
                                                 const Filter& filter) {
  Params params;
  params.add(scope.org())
      .add(filter.action)
      .add(filter.actor_id)
      .add(filter.since)
      .add(filter.until);
  params.add(filter.before_seq.value_or(std::numeric_limits<std::int64_t>::max()));
  params.add(static_cast<std::int64_t>(filter.limit));
  auto rows = co_await database.query(db::Intent::read_your_writes, scope, kList, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, event_from);
}

asio::awaitable<Result<std::optional<std::int64_t>>> continuation(db::Database& database,
                                                                  const db::Scope& scope,
                                                                  const Filter& filter,
                                                                  std::int32_t limit) {
  Params params;
  params.add(scope.org())
      .add(filter.action)
      .add(filter.actor_id)
      .add(filter.since)
      .add(filter.until);
  params.add(filter.before_seq.value_or(std::numeric_limits<std::int64_t>::max()));
  params.add(static_cast<std::int64_t>(limit - 1));
  auto rows = co_await database.query(db::Intent::read_your_writes, scope, kContinuation, params);
  if (!rows) co_return rows.error();
  if (rows->size() < 2) co_return std::optional<std::int64_t>{};
  co_return std::optional<std::int64_t>{rows->front().get<std::int64_t>(0)};
}

void append_json(std::string& out, const Event& e) {
  auto key = [&](std::string_view name) {  // "name": after a comma unless first in its object
    if (out.back() != '{') out += ',';
    out += '"';
    out += name;
    out += "\":";
  };
  auto raw = [&](std::string_view name, std::string_view json_text) {
    key(name);
    out += json_text;
  };
  auto text = [&](std::string_view name, std::string_view value) {
    raw(name, json::serialize(json::string_view(value.data(), value.size())));
  };
  out += '{';
  text("id", e.id.to_string());
  raw("seq", std::to_string(e.seq));
  text("occurred_at", core::format_rfc3339(e.occurred_at));
  key("actor");
  out += '{';
  text("type", e.actor.type);
  if (e.actor.id) {
    text("id", e.actor.id->to_string());
  } else {
    raw("id", "null");
  }
  out += '}';
  text("action", e.change.action);
  key("target");
  out += '{';
  text("type", e.change.target_type);
  text("id", e.change.target_id);
  out += '}';
  raw("before", e.change.before ? std::string_view(*e.change.before) : "null");  // as stored
  raw("after", e.change.after ? std::string_view(*e.change.after) : "null");
  text("ip", e.actor.ip);
  text("user_agent", e.actor.user_agent);
  text("request_id", e.actor.request_id);
  text("hash", core::hex(e.hash));
  out += '}';
}

asio::awaitable<Result<VerifyReport>> verify(db::Connection& connection, const db::Uuid& org_id,
                                             std::chrono::milliseconds statement_timeout) {
  VerifyReport report;
  auto fail = [&](std::int64_t seq, std::string problem) {
    report.first_bad_seq = seq;
    report.problem = std::move(problem);
  };
  // The head first: events sealed while the walk runs come after it and are left for the next
  // verification, so a chain growing underneath is never mistaken for one cut short.
  Params head_params(org_id);
  auto head =
      co_await connection.query(kChainHead, head_params, db::deadline_after(statement_timeout));
  if (!head) co_return head.error();
  std::int64_t head_seq = 0;
  std::string head_hash;
  report.chained = !head->empty();
  if (report.chained) {
    head_seq = head->front().get<std::int64_t>(0);
    head_hash = head->front().get<db::Bytes>(1).data;
    report.unsealed = head->front().get<std::int64_t>(2);
  }
  std::int64_t last_seq = 0;
  std::string last_hash;
  while (report.intact()) {
    Params page_params(org_id, last_seq,
                       head->empty() ? std::numeric_limits<std::int64_t>::max() : head_seq);
    auto rows =
        co_await connection.query(kChainPage, page_params, db::deadline_after(statement_timeout));
    if (!rows) co_return rows.error();
    if (rows->empty()) break;
    for (int i = 0; i < rows->size() && report.intact(); ++i) {
      auto e = event_from((*rows)[i]);
      auto canonical = (*rows)[i].get<std::string>(16);
      if (e.seq != last_seq + 1) {
        fail(last_seq + 1, "event " + std::to_string(last_seq + 1) + " is missing");
      } else if (e.prev_hash != last_hash) {
        fail(e.seq, "its prev_hash does not match the hash of the event before it");
      } else if (chain_hash(e.prev_hash, canonical) != e.hash) {
        fail(e.seq, "its contents do not match its hash (altered)");
      } else {
        ++report.events;
        last_seq = e.seq;
        last_hash = e.hash;
      }
    }
  }
  if (!report.intact()) co_return report;
  if (head->empty()) {
    if (last_seq > 0) fail(1, "the organization's chain head is missing");
  } else if (head_seq != last_seq) {
    fail(last_seq + 1, "the chain head is at event " + std::to_string(head_seq) +
                           " but the log ends at " + std::to_string(last_seq) +
                           " (events removed from the end)");
  } else if (head_hash != last_hash) {
    fail(last_seq, "the last event's hash does not match the chain head (altered)");
  }
  co_return report;
}

namespace {
asio::awaitable<Result<std::int64_t>> org_count(db::Database& database, const db::Scope& scope,
                                                const Statement& statement) {
  Params params(scope.org());
  auto rows = co_await database.query(db::Intent::read_your_writes, scope, statement, params);
  if (!rows) co_return rows.error();
  if (rows->empty() || rows->front().is_null(0))
    co_return make_error(Errc::not_found, "no such organization");
  co_return rows->front().get<std::int64_t>(0);
}
}  // namespace

asio::awaitable<Result<std::int64_t>> head(db::Database& database, const db::Scope& scope) {
  co_return co_await org_count(database, scope, kHead);
}

asio::awaitable<Result<std::int64_t>> committed(db::Database& database, const db::Scope& scope) {
  co_return co_await org_count(database, scope, kCommitted);
}

asio::awaitable<Result<std::vector<Entry>>> entries(db::Database& database, const db::Scope& scope,
                                                    std::int64_t after, std::int64_t until,
                                                    std::int32_t limit) {
  Params params(scope.org(), after, until, limit);
  // Up to `until`, a position the event hub learned from the primary: a lagging replica would
  // leave out the end of the range.
  auto rows = co_await database.query(db::Intent::latest, scope, kEntries, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, entry_from);
}

asio::awaitable<Result<std::vector<Entry>>> entries_after(db::Database& database,
                                                          const db::Scope& scope,
                                                          const std::vector<ReadFrom>& from,
                                                          std::int32_t per_org) {
  json::array request;
  for (const auto& f : from)
    request.push_back(json::object{{"org_id", f.org_id.to_string()}, {"after_seq", f.after}});
  Params params(db::Json{json::serialize(request)}, per_org);
  // What a notification announced, which a replica may not have replayed yet.
  auto rows = co_await database.query(db::Intent::latest, scope, kEntriesAfter, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, entry_from);
}

}  // namespace liftoff::audit
