#include "liftoff/identity/store.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include "liftoff/db/database.hpp"
#include "liftoff/identity/revocation_listener.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
using db::Intent;
using db::Params;
using db::Statement;

namespace {
constexpr Statement kInsertUser{
    db::Plane::control, "identity.insert_user",
    "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4) "
    "RETURNING created_at"};
constexpr Statement kUserByEmail{
    db::Plane::control, "identity.user_by_email",
    "SELECT id, email, name, created_at, password_hash, email_verified_at IS NOT NULL "
    "FROM users WHERE email = $1"};
constexpr Statement kSetPassword{
    db::Plane::control, "identity.set_password",
    "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1"};
// Revocations NOTIFY the session ids in the same transaction, so every process's session cache
// evicts them when (and only if) the revocation commits.
// The user's sessions but $2 (none: all of them).
constexpr Statement kRevokeSessions{
    db::Plane::control, "identity.revoke_sessions",
    "WITH revoked AS (UPDATE sessions SET revoked_at = now() "
    "WHERE user_id = $1 AND id IS DISTINCT FROM $2::uuid AND revoked_at IS NULL RETURNING id) "
    "SELECT id, pg_notify('liftoff_sessions', id::text) FROM revoked"};
constexpr Statement kInsertSession{
    db::Plane::control, "identity.insert_session",
    "INSERT INTO sessions (id, user_id, token_hash, expires_at, ip, user_agent) "
    "VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at"};
// The user's organizations come along as one JSON array of [org id, org name, role, plan, plan
// limit overrides, suspended].
constexpr Statement kSessionByDigest{
    db::Plane::control, "identity.session_by_digest",
    "SELECT s.id, s.user_id, s.last_seen_at, s.expires_at, u.email, u.name, u.created_at, "
    "(SELECT COALESCE(json_agg(json_build_array(o.id, o.name, m.role, o.plan, o.plan_limits, "
    "o.suspended_at IS NOT NULL) ORDER "
    "BY o.name, o.id), "
    "'[]')::text FROM memberships m JOIN orgs o ON o.id = m.org_id "
    "WHERE m.user_id = s.user_id AND o.deleted_at IS NULL), u.email_verified_at IS NOT NULL "
    "FROM sessions s JOIN users u ON u.id = s.user_id "
    "WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now() "
    "AND s.last_seen_at > now() - make_interval(secs => $2)"};
constexpr Statement kApiKeyByDigest{
    db::Plane::control, "identity.api_key_by_digest",
    "SELECT k.id, k.org_id, o.name, k.role, COALESCE(k.last_used_at, 'epoch'), o.plan, "
    "o.plan_limits::text, o.suspended_at IS NOT NULL "
    "FROM api_keys k JOIN orgs o ON o.id = k.org_id "
    "WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND o.deleted_at IS NULL"};
// Ids come as one comma-separated text parameter (ids this process generated or read back).
constexpr Statement kTouchApiKeys{
    db::Plane::control, "identity.touch_api_keys",
    "UPDATE api_keys SET last_used_at = now() WHERE id = ANY(string_to_array($1, ',')::uuid[]) "
    "AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')"};
constexpr Statement kTouchSessions{
    db::Plane::control, "identity.touch_sessions",
    "UPDATE sessions SET last_seen_at = now() WHERE id = ANY(string_to_array($1, ',')::uuid[]) "
    "AND last_seen_at < now() - interval '60 seconds'"};
constexpr Statement kRevokeSession{
    db::Plane::control, "identity.revoke_session",
    "WITH revoked AS (UPDATE sessions SET revoked_at = now() "
    "WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > now() RETURNING id) "
    "SELECT id, pg_notify('liftoff_sessions', id::text) FROM revoked"};
constexpr Statement kInsertStreamTicket{
    db::Plane::control, "identity.insert_stream_ticket",
    "INSERT INTO stream_tickets (token_hash, credential_hash, credential_kind, org_id, collection, "
    "expires_at) VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) "
    "RETURNING expires_at"};
constexpr Statement kTakeStreamTicket{
    db::Plane::control, "identity.take_stream_ticket",
    "DELETE FROM stream_tickets WHERE token_hash = $1 "
    "RETURNING credential_hash, credential_kind, org_id, collection, expires_at > now()"};
constexpr Statement kExpireStreamTickets{
    db::Plane::control, "identity.expire_stream_tickets",
    "DELETE FROM stream_tickets WHERE expires_at < now() - interval '1 minute'"};
// Email links: one statement each. Issuing deletes the user's earlier tokens of the purpose; a
// verify_email token is not made for an address verified already.
constexpr Statement kIssueEmailToken{
    db::Plane::control, "identity.issue_email_token",
    "WITH target AS (SELECT id, email, name, email_verified_at IS NOT NULL AS verified "
    "FROM users WHERE id = $1), "
    "cleared AS (DELETE FROM email_tokens WHERE user_id = $1 AND purpose = $2), "
    "issued AS (INSERT INTO email_tokens (token_hash, user_id, purpose, email, expires_at) "
    "SELECT $3, id, $2, email, now() + $4::bigint * interval '1 second' FROM target "
    "WHERE NOT (verified AND $2 = 'verify_email') RETURNING 1) "
    "SELECT email, name, verified FROM target"};
// The user's cached principals are evicted (NOTIFY), since email_verified is part of them.
constexpr Statement kVerifyEmail{
    db::Plane::control, "identity.verify_email",
    "WITH used AS (DELETE FROM email_tokens WHERE token_hash = $1 AND purpose = 'verify_email' "
    "RETURNING user_id, email, expires_at > now() AS live), "
    "verified AS (UPDATE users SET email_verified_at = COALESCE(email_verified_at, now()), "
    "updated_at = now() FROM used WHERE users.id = used.user_id AND users.email = used.email "
    "AND used.live RETURNING users.id) "
    "SELECT id, pg_notify('liftoff_sessions', $2 || id::text) FROM verified"};
constexpr Statement kResetTokenLive{
    db::Plane::control, "identity.reset_token_live",
    "SELECT 1 FROM email_tokens WHERE token_hash = $1 AND purpose = 'password_reset' "
    "AND expires_at > now()"};
constexpr Statement kUseResetToken{
    db::Plane::control, "identity.use_reset_token",
    "WITH used AS (DELETE FROM email_tokens WHERE token_hash = $1 AND purpose = 'password_reset' "
    "AND expires_at > now() RETURNING user_id, email) "
    "UPDATE users SET password_hash = $2, updated_at = now(), "
    "email_verified_at = COALESCE(email_verified_at, now()) FROM used "
    "WHERE users.id = used.user_id RETURNING users.id"};
constexpr Statement kExpireEmailTokens{db::Plane::control, "identity.expire_email_tokens",
                                       "DELETE FROM email_tokens WHERE expires_at < now()"};
constexpr Statement kLiveSessions{
    db::Plane::control, "identity.live_sessions",
    "SELECT id, user_id, created_at, last_seen_at, expires_at, ip, user_agent "
    "FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() "
    "ORDER BY created_at DESC LIMIT 100"};

SessionRecord session_from(const db::Row& row) {
  return {row.get<db::Uuid>(0),
          row.get<db::Uuid>(1),
          row.get<db::Timestamp>(2),
          row.get<db::Timestamp>(3),
          row.get<db::Timestamp>(4),
          row.get<std::optional<std::string>>(5),
          row.get<std::optional<std::string>>(6)};
}
}  // namespace

Role role_from(const db::Row& row, int column) {
  auto role = parse_role(row.get<std::string>(column));
  if (!role) throw db::DecodeError("unknown role in the database");
  return *role;
}

namespace {

// The user kInsertUser made, from its answer.
Result<User> inserted_user(const Result<db::Rows>& rows, const db::Uuid& id,
                           const std::string& email, const std::string& name) {
  if (!rows) {
    if (rows.error().code == Errc::conflict)
      return make_error(Errc::conflict, "that email is already registered");
    return rows.error();
  }
  return User{id, email, name, rows->front().get<db::Timestamp>(0)};
}

}  // namespace

asio::awaitable<Result<User>> IdentityStore::create_user(const db::Scope& scope, const db::Uuid& id,
                                                         const std::string& email,
                                                         const std::string& name,
                                                         const std::string& password_hash) {
  Params params(id, email, name, password_hash);
  auto rows = co_await db_.query(Intent::write, scope, kInsertUser, params);
  co_return inserted_user(rows, id, email, name);
}

asio::awaitable<Result<User>> IdentityStore::create_user(db::Transaction& tx, const db::Uuid& id,
                                                         const std::string& email,
                                                         const std::string& name,
                                                         const std::string& password_hash) {
  Params params(id, email, name, password_hash);
  auto rows = co_await tx.query(kInsertUser, params);
  co_return inserted_user(rows, id, email, name);
}

asio::awaitable<Result<std::optional<IdentityStore::Recipient>>> IdentityStore::issue_email_token(
    const db::Scope& scope, const db::Uuid& user_id, std::string_view purpose,
    const std::string& digest, std::chrono::seconds ttl) {
  db::Bytes token{digest};
  Params params(user_id, std::string(purpose), token, static_cast<std::int64_t>(ttl.count()));
  auto rows = co_await db_.query(Intent::write, scope, kIssueEmailToken, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<Recipient>{};
  auto row = rows->front();
  co_return Recipient{row.get<std::string>(0), row.get<std::string>(1), row.get<bool>(2)};
}

asio::awaitable<Result<std::optional<db::Uuid>>> IdentityStore::verify_email(
    const db::Scope& scope, const std::string& digest) {
  db::Bytes token{digest};
  Params params(token, std::string(kUserPayloadPrefix));
  auto rows = co_await db_.query(Intent::write, scope, kVerifyEmail, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<db::Uuid>{};
  co_return rows->front().get<db::Uuid>(0);
}

asio::awaitable<Result<bool>> IdentityStore::reset_token_live(const db::Scope& scope,
                                                              const std::string& digest) {
  db::Bytes token{digest};
  Params params(token);
  auto rows = co_await db_.query(Intent::write, scope, kResetTokenLive, params);
  if (!rows) co_return rows.error();
  co_return !rows->empty();
}

asio::awaitable<Result<std::optional<std::vector<db::Uuid>>>> IdentityStore::reset_password(
    const db::Scope& scope, const std::string& digest, const std::string& password_hash) {
  using Revoked = std::optional<std::vector<db::Uuid>>;
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  db::Bytes token{digest};
  Params use(token, password_hash);
  auto updated = co_await tx->query(kUseResetToken, use);
  if (!updated) co_return updated.error();
  if (updated->empty()) co_return Revoked{};
  auto user_id = updated->front().get<db::Uuid>(0);
  Params user(user_id, std::optional<db::Uuid>{});
  auto revoked = co_await tx->query(kRevokeSessions, user);
  if (!revoked) co_return revoked.error();
  auto ids = db::decode_all(*revoked, [](const db::Row& row) { return row.get<db::Uuid>(0); });
  auto committed = co_await tx->commit();
  if (!committed) co_return committed.error();
  co_return Revoked{std::move(ids)};
}

asio::awaitable<Result<std::size_t>> IdentityStore::expire_email_tokens(const db::Scope& scope) {
  auto rows = co_await db_.query(Intent::write, scope, kExpireEmailTokens, Params::none());
  if (!rows) co_return rows.error();
  co_return static_cast<std::size_t>(rows->affected());
}

asio::awaitable<Result<std::optional<StoredUser>>> IdentityStore::user_by_email(
    const db::Scope& scope, const std::string& email) {
  Params params(email);
  auto rows = co_await db_.query(Intent::latest, scope, kUserByEmail, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<StoredUser>{};
  auto row = rows->front();
  co_return StoredUser{{row.get<db::Uuid>(0), row.get<std::string>(1), row.get<std::string>(2),
                        row.get<db::Timestamp>(3), row.get<bool>(5)},
                       row.get<std::string>(4)};
}

asio::awaitable<Result<void>> IdentityStore::set_password_hash(const db::Scope& scope,
                                                               const db::Uuid& user_id,
                                                               const std::string& password_hash) {
  Params params(user_id, password_hash);
  auto rows = co_await db_.query(Intent::write, scope, kSetPassword, params);
  if (!rows) co_return rows.error();
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<db::Uuid>>> IdentityStore::change_password(
    const db::Scope& scope, const db::Uuid& user_id, const std::string& password_hash,
    const db::Uuid& keep_session_id) {
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  Params password(user_id, password_hash);
  auto updated = co_await tx->query(kSetPassword, password);
  if (!updated) co_return updated.error();
  Params others(user_id, std::optional<db::Uuid>(keep_session_id));
  auto revoked = co_await tx->query(kRevokeSessions, others);
  if (!revoked) co_return revoked.error();
  auto ids = db::decode_all(*revoked, [](const db::Row& row) { return row.get<db::Uuid>(0); });
  auto committed = co_await tx->commit();
  if (!committed) co_return committed.error();
  co_return ids;
}

asio::awaitable<Result<db::Timestamp>> IdentityStore::create_session(const db::Scope& scope,
                                                                     const NewSession& s) {
  Params params(s.id, s.user_id, db::Bytes{s.token_digest}, s.expires_at, s.ip, s.user_agent);
  auto rows = co_await db_.query(Intent::write, scope, kInsertSession, params);
  if (!rows) co_return rows.error();
  co_return rows->front().get<db::Timestamp>(0);
}

asio::awaitable<Result<std::optional<IdentityStore::LiveCredential>>>
IdentityStore::session_by_digest(const db::Scope& scope, const std::string& digest,
                                 std::int32_t idle_seconds) {
  Params params(db::Bytes{digest}, static_cast<double>(idle_seconds));
  auto rows = co_await db_.query(Intent::latest, scope, kSessionByDigest, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<LiveCredential>{};
  auto row = rows->front();
  LiveCredential live;
  live.principal.kind = Principal::Kind::user;
  live.principal.credential_id = row.get<db::Uuid>(0);
  live.principal.user = User{row.get<db::Uuid>(1), row.get<std::string>(4), row.get<std::string>(5),
                             row.get<db::Timestamp>(6), row.get<bool>(8)};
  live.last_used_at = row.get<db::Timestamp>(2);
  live.expires_at = row.get<db::Timestamp>(3);
  auto memberships = boost::json::parse(row.get<std::string>(7));
  for (const auto& item : memberships.as_array()) {
    const auto& m = item.as_array();
    auto org_id = db::Uuid::parse(m.at(0).as_string());
    auto role = parse_role(m.at(2).as_string());
    const auto* plan = plans::find_plan(m.at(3).as_string());
    if (!org_id || !role || !plan) throw db::DecodeError("malformed membership row");
    live.principal.memberships.push_back({*org_id, std::string(m.at(1).as_string()), *role, plan,
                                          plans::effective_limits(*plan, m.at(4).as_object()),
                                          m.at(5).as_bool()});
  }
  co_return live;
}

asio::awaitable<Result<std::optional<IdentityStore::LiveCredential>>>
IdentityStore::api_key_by_digest(const db::Scope& scope, const std::string& digest) {
  Params params(db::Bytes{digest});
  auto rows = co_await db_.query(Intent::latest, scope, kApiKeyByDigest, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<LiveCredential>{};
  auto row = rows->front();
  LiveCredential live;
  live.principal.kind = Principal::Kind::api_key;
  live.principal.credential_id = row.get<db::Uuid>(0);
  const auto* plan = plans::find_plan(row.get<std::string>(5));
  if (!plan) throw db::DecodeError("an org on an unknown plan");
  live.principal.memberships.push_back(
      {row.get<db::Uuid>(1), row.get<std::string>(2), role_from(row, 3), plan,
       plans::effective_limits(*plan, row.get<std::string>(6)), row.get<bool>(7)});
  live.last_used_at = row.get<db::Timestamp>(4);
  live.expires_at = db::Timestamp::max();
  co_return live;
}

asio::awaitable<Result<void>> IdentityStore::touch(const db::Scope& scope,
                                                   const std::vector<db::Uuid>& sessions,
                                                   const std::vector<db::Uuid>& api_keys) {
  // On a connection of its own: a long UPDATE on the shared pipelined connections would hold up
  // every request's statements queued behind it. In small statements with a pause between them:
  // written back to back, the thousands of sessions first seen in ten seconds took a core for a
  // moment, a spike in every request's latency (the mix over 10,000 connections at 2,000 req/s:
  // p99.9 31-36 ms with a 38-49 ms second, 8.5 ms and no spike once paced).
  constexpr std::size_t kPerStatement = 250;
  constexpr auto kPause = std::chrono::milliseconds(10);
  auto lease = co_await db_.acquire(Intent::write, scope);
  if (!lease) co_return lease.error();
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer pause(executor);
  bool first = true;
  for (auto [ids, statement] :
       {std::pair{&sessions, &kTouchSessions}, {&api_keys, &kTouchApiKeys}}) {
    for (std::size_t at = 0; at < ids->size(); at += kPerStatement) {
      if (!first) {
        pause.expires_after(kPause);
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      first = false;
      std::string list;
      for (std::size_t i = at; i < std::min(ids->size(), at + kPerStatement); ++i) {
        if (!list.empty()) list += ',';
        list += (*ids)[i].to_string();
      }
      Params params(list);
      auto rows = co_await (*lease)->query(*statement, params, db_.statement_deadline(scope));
      if (!rows) co_return rows.error();
    }
  }
  co_return Result<void>{};
}

asio::awaitable<Result<bool>> IdentityStore::revoke_session(const db::Scope& scope,
                                                            const db::Uuid& session_id,
                                                            const db::Uuid& user_id) {
  Params params(session_id, user_id);
  auto rows = co_await db_.query(Intent::write, scope, kRevokeSession, params);
  if (!rows) co_return rows.error();
  co_return rows->size() == 1;
}

asio::awaitable<Result<std::vector<SessionRecord>>> IdentityStore::live_sessions(
    const db::Scope& scope, const db::Uuid& user_id) {
  Params params(user_id);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kLiveSessions, params);
  if (!rows) co_return rows.error();
  co_return db::decode_all(*rows, session_from);
}

namespace {
constexpr std::string_view kind_text(Credential::Kind kind) {
  return kind == Credential::Kind::session ? "session" : "api_key";
}
}  // namespace

asio::awaitable<Result<db::Timestamp>> IdentityStore::insert_stream_ticket(
    const db::Scope& scope, const std::string& digest, const StreamTicket& ticket,
    std::chrono::seconds ttl) {
  Params params(db::Bytes{digest}, db::Bytes{ticket.credential.digest},
                std::string(kind_text(ticket.credential.kind)), ticket.org_id, ticket.collection,
                static_cast<double>(ttl.count()));
  auto rows = co_await db_.query(Intent::write, scope, kInsertStreamTicket, params);
  if (!rows) co_return rows.error();
  co_return rows->front().get<db::Timestamp>(0);
}

asio::awaitable<Result<std::optional<StreamTicket>>> IdentityStore::take_stream_ticket(
    const db::Scope& scope, const std::string& digest) {
  Params params(db::Bytes{digest});
  auto rows = co_await db_.query(Intent::write, scope, kTakeStreamTicket, params);
  if (!rows) co_return rows.error();
  if (rows->empty() || !rows->front().get<bool>(4)) co_return std::optional<StreamTicket>{};
  auto row = rows->front();
  auto kind = row.get<std::string>(1) == kind_text(Credential::Kind::session)
                  ? Credential::Kind::session
                  : Credential::Kind::api_key;
  co_return StreamTicket{Credential{kind, row.get<db::Bytes>(0).data},
                         row.get<std::optional<db::Uuid>>(2),
                         row.get<std::optional<std::string>>(3)};
}

asio::awaitable<Result<std::size_t>> IdentityStore::expire_stream_tickets(const db::Scope& scope) {
  auto rows = co_await db_.query(Intent::write, scope, kExpireStreamTickets, Params::none());
  if (!rows) co_return rows.error();
  co_return static_cast<std::size_t>(rows->affected());
}

}  // namespace liftoff::identity
