#pragma once
// The audit log: who did what to which object of an organization, written in the same transaction
// as the change itself, append-only, and chained per organization:
//   hash(n) = SHA-256(hash(n-1) || canonical(event n)),  hash(0) = "" (empty)
// so `verify` can name the first event that was altered, removed or inserted behind the server's
// back. A change's transaction inserts its event unnumbered and unchained, sharing no row with the
// org's other writers; the sealer (Sealer, audit_seal in migrations/control/0020) numbers and links
// committed events in batches, in commit order for the events of any one record
// (docs/decisions/0020-audit-sealing.md). Readers of the log by position (the audit listing,
// record event streams, webhooks) read sealed events. The server's database role can neither
// rewrite nor remove events: it may insert pending events and call the sealing function.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"

namespace boost::json {
class object;
}

namespace liftoff::db {
class Connection;
class Database;
class Transaction;
}  // namespace liftoff::db

namespace liftoff::audit {

// What happened: an action on a target, with its state before and after where meaningful.
struct Change {
  std::string action;       // "org.created", "member.role_changed", ...
  std::string target_type;  // "org", "user", "invitation", "api_key"
  std::string target_id;
  std::optional<std::string> before;  // serialized JSON object
  std::optional<std::string> after;
};

// One stored event.
struct Event {
  db::Uuid org_id;
  std::int64_t seq = 0;  // 1, 2, 3, ... per org
  db::Uuid id;
  db::Timestamp occurred_at;
  db::Actor actor;
  Change change;
  std::string prev_hash;  // raw 32 bytes; empty for the first event
  std::string hash;
};

// The form of a before/after value an audit event stores: `json_text` itself when it is at most
// `limit` bytes; else the same JSON with its largest parts cut, each replaced by
//   {"$cut":{"bytes":N,"sha256":"<hex of the cut part's JSON text>"}}
// (largest first, innermost first, until the whole fits), so one event stays small while what was
// cut stays provable against a copy of the record. Parts of at most 256 bytes are never cut alone,
// and the top level's members are never cut whole, so a record keeps its id, version and times
// (the result may then exceed a limit below about 1 KiB). Text that is not JSON becomes one marker.
[[nodiscard]] std::string bounded_value(std::string json_text, std::size_t limit);

// SHA-256(prev_hash || canonical): one link of the chain. The canonical text of an event is built
// by PostgreSQL from every column but the hashes (see audit.cpp), when appending and when
// verifying.
[[nodiscard]] std::string chain_hash(std::string_view prev_hash, std::string_view canonical);

// Starts an organization's chain; call in the transaction that creates the organization. For an
// org whose shard is another cluster than `tx`'s, its first relayed event starts it there.
[[nodiscard]] boost::asio::awaitable<Result<void>> start_chain(db::Transaction& tx,
                                                               const db::Uuid& org_id);

// Writes the events relayed to an org's shard (db::Outbox): what append_and_commit() posts for an
// org whose shard is another cluster than its transaction's (a change of the control plane for
// it). Register on every Database that relays.
void receive_relayed(db::Database& database);

// Appends one event, by the scope's actor, for the scope's org, as the last statement of `tx`, and
// commits (one round trip): the event commits or rolls back with the change it records. It is
// committed unsealed: the sealer gives it its seq and hash soon after. For an org whose shard is
// another cluster than `tx`'s, the event is posted through the outbox, committed with the change,
// and written on the shard by the relay before the call returns (or by the background relay).
[[nodiscard]] boost::asio::awaitable<Result<void>> append_and_commit(db::Transaction& tx,
                                                                     const db::Scope& scope,
                                                                     const Change& change);

// Several events of one request, in their order (a batch's records), in one statement.
[[nodiscard]] boost::asio::awaitable<Result<void>> append_and_commit(
    db::Transaction& tx, const db::Scope& scope, std::span<const Change> changes);

// One org's chain after a sealing round: its new head, and how many events the round sealed.
struct Sealed {
  db::Uuid org_id;
  std::int64_t last_seq = 0;
  std::int32_t sealed = 0;
};
// Seals committed events, at most `max_per_org` of each org, oldest first, in one statement. For a
// scope of every org: the orgs with unsealed events whose chains no other sealer holds at the
// moment (what the background Sealer runs); for one org's scope: that org, waiting for its chain.
// Returns the orgs whose chains advanced.
[[nodiscard]] boost::asio::awaitable<Result<std::vector<Sealed>>> seal(db::Database& database,
                                                                       const db::Scope& scope,
                                                                       std::int32_t max_per_org);
// Seals every event of the scope's org committed before the call (a reader that must see what
// the org's earlier requests wrote: the audit listing).
[[nodiscard]] boost::asio::awaitable<Result<void>> seal_committed(db::Database& database,
                                                                  const db::Scope& scope);

// The org's newest sealed seq: where readers of the log by position stand.
[[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> head(db::Database& database,
                                                                const db::Scope& scope);
// How many events of the org have committed, sealed or not: every audited change of the org
// increases it in its own transaction, so it identifies the org's committed state (what record list
// caches are keyed on).
[[nodiscard]] boost::asio::awaitable<Result<std::int64_t>> committed(db::Database& database,
                                                                     const db::Scope& scope);
// committed() of the org in $1 as a scalar subquery (NULL: no such org), for another domain's
// statement that must read it in the same snapshot and round trip as its own rows. Written here so
// that audit keeps owning its SQL.
#define LIFTOFF_AUDIT_COMMITTED_OF_ORG_1                                            \
  "(SELECT last_seq + (SELECT count(*) FROM audit_pending WHERE org_id = $1) FROM " \
  "audit_chains WHERE org_id = $1)"

// head() of the org in $1 as a scalar subquery (NULL: no such org).
#define LIFTOFF_AUDIT_HEAD_OF_ORG_1 "(SELECT last_seq FROM audit_chains WHERE org_id = $1)"
// The sealed head of every org as a table (org_id, last_seq) to join, for another domain's
// statement that finds the orgs with events after a position of its own (webhook endpoints with
// events due).
#define LIFTOFF_AUDIT_HEADS "(SELECT org_id, last_seq FROM audit_chains)"

// An event as readers of what happened need it (record event streams, webhooks): no request
// details (address, user agent), no hashes.
struct Entry {
  db::Uuid org_id;
  std::int64_t seq = 0;
  db::Timestamp occurred_at;
  std::string action;
  std::string target_type;
  std::optional<std::string> before;  // serialized JSON
  std::optional<std::string> after;
  db::Uuid id;
  std::string target_id;
  std::string actor_type;  // "user", "api_key" or "system"
  std::optional<db::Uuid> actor_id;
};

// The scope's org's events after seq `after` up to seq `until` (inclusive), oldest first, at most
// `limit`.
[[nodiscard]] boost::asio::awaitable<Result<std::vector<Entry>>> entries(db::Database& database,
                                                                         const db::Scope& scope,
                                                                         std::int64_t after,
                                                                         std::int64_t until,
                                                                         std::int32_t limit);

// Several orgs' events at once, in one statement (for a scope of every org): of each org, those
// after its seq, oldest first, at most `per_org`.
struct ReadFrom {
  db::Uuid org_id;
  std::int64_t after = 0;
};
[[nodiscard]] boost::asio::awaitable<Result<std::vector<Entry>>> entries_after(
    db::Database& database, const db::Scope& scope, const std::vector<ReadFrom>& from,
    std::int32_t per_org);

struct Filter {
  std::optional<std::string> action;
  std::optional<db::Uuid> actor_id;
  std::optional<db::Timestamp> since;      // inclusive
  std::optional<db::Timestamp> until;      // exclusive
  std::optional<std::int64_t> before_seq;  // the cursor: events older than this one
  std::int32_t limit = 50;
};

// Newest first.
[[nodiscard]] boost::asio::awaitable<Result<std::vector<Event>>> list(db::Database& database,
                                                                      const db::Scope& scope,
                                                                      const Filter& filter);

// Where a listing of at most `limit` events (newest first, from filter.before_seq down) stops when
// more events match: the cursor that continues after it (the seq of its last event); nullopt when
// `limit` covers them all. One index scan of at most limit + 1 entries.
[[nodiscard]] boost::asio::awaitable<Result<std::optional<std::int64_t>>> continuation(
    db::Database& database, const db::Scope& scope, const Filter& filter, std::int32_t limit);

// Appends the API's JSON form of an event to `out`: before/after as stored (JSON the database
// checked), times in RFC 3339.
void append_json(std::string& out, const Event& event);

struct VerifyReport {
  bool chained = false;       // the org has a chain in this database (none: nothing was checked)
  std::int64_t events = 0;    // sealed events checked
  std::int64_t unsealed = 0;  // committed events not sealed yet when the walk began
  std::optional<std::int64_t> first_bad_seq;
  std::string problem;  // why that event fails (empty when the chain is intact)
  [[nodiscard]] bool intact() const { return !first_bad_seq && problem.empty(); }
};

// Walks the org's chain in order up to its head as read first, recomputing every hash; each page of
// events may take `statement_timeout`. Events sealed during the walk are left for the next one.
[[nodiscard]] boost::asio::awaitable<Result<VerifyReport>> verify(
    db::Connection& connection, const db::Uuid& org_id,
    std::chrono::milliseconds statement_timeout);

}  // namespace liftoff::audit
