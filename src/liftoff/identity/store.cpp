#include "liftoff/identity/store.hpp"

#include "liftoff/db/database.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
using db::Intent;
using db::Params;
using db::Statement;
using db::Tenant;

namespace {
constexpr Statement kInsertUser{
    "identity.insert_user",
    "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4) "
    "RETURNING created_at"};
constexpr Statement kUserByEmail{
    "identity.user_by_email",
    "SELECT id, email, name, created_at, password_hash FROM users WHERE email = $1"};
constexpr Statement kSetPassword{
    "identity.set_password",
    "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1"};
// Revocations NOTIFY the session ids in the same transaction, so every process's session cache
// evicts them when (and only if) the revocation commits.
constexpr Statement kRevokeOtherSessions{
    "identity.revoke_other_sessions",
    "WITH revoked AS (UPDATE sessions SET revoked_at = now() "
    "WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL RETURNING id) "
    "SELECT id, pg_notify('liftoff_sessions', id::text) FROM revoked"};
constexpr Statement kInsertSession{
    "identity.insert_session",
    "INSERT INTO sessions (id, user_id, token_hash, expires_at, ip, user_agent) "
    "VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at"};
constexpr Statement kSessionByDigest{
    "identity.session_by_digest",
    "SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.ip, s.user_agent, "
    "u.email, u.name, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id "
    "WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now() "
    "AND s.last_seen_at > now() - make_interval(secs => $2)"};
constexpr Statement kTouchSession{"identity.touch_session",
                                  "UPDATE sessions SET last_seen_at = now() "
                                  "WHERE id = $1 AND last_seen_at < now() - interval '60 seconds'"};
constexpr Statement kRevokeSession{
    "identity.revoke_session",
    "WITH revoked AS (UPDATE sessions SET revoked_at = now() "
    "WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > now() RETURNING id) "
    "SELECT id, pg_notify('liftoff_sessions', id::text) FROM revoked"};
constexpr Statement kLiveSessions{
    "identity.live_sessions",
    "SELECT id, user_id, created_at, last_seen_at, expires_at, ip, user_agent "
    "FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() "
    "ORDER BY created_at DESC LIMIT 100"};

db::Deadline deadline() {
  return db::deadline_after(std::chrono::seconds(5));
}

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

asio::awaitable<Result<User>> IdentityStore::create_user(const db::Uuid& id,
                                                         const std::string& email,
                                                         const std::string& name,
                                                         const std::string& password_hash) {
  Params params(id, email, name, password_hash);
  auto rows = co_await db_.query(Intent::write, Tenant::control(), kInsertUser, params, deadline());
  if (!rows) {
    if (rows.error().code == Errc::conflict)
      co_return make_error(Errc::conflict, "that email is already registered");
    co_return rows.error();
  }
  co_return User{id, email, name, rows->front().get<db::Timestamp>(0)};
}

asio::awaitable<Result<std::optional<StoredUser>>> IdentityStore::user_by_email(
    const std::string& email) {
  Params params(email);
  auto rows = co_await db_.query(Intent::read_your_writes, Tenant::control(), kUserByEmail, params,
                                 deadline());
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<StoredUser>{};
  auto row = rows->front();
  co_return StoredUser{{row.get<db::Uuid>(0), row.get<std::string>(1), row.get<std::string>(2),
                        row.get<db::Timestamp>(3)},
                       row.get<std::string>(4)};
}

asio::awaitable<Result<void>> IdentityStore::set_password_hash(const db::Uuid& user_id,
                                                               const std::string& password_hash) {
  Params params(user_id, password_hash);
  auto rows =
      co_await db_.query(Intent::write, Tenant::control(), kSetPassword, params, deadline());
  if (!rows) co_return rows.error();
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<db::Uuid>>> IdentityStore::change_password(
    const db::Uuid& user_id, const std::string& password_hash, const db::Uuid& keep_session_id) {
  auto tx = co_await db_.begin(Tenant::control(), deadline());
  if (!tx) co_return tx.error();
  Params password(user_id, password_hash);
  auto updated = co_await tx->query(kSetPassword, password, deadline());
  if (!updated) co_return updated.error();
  Params others(user_id, keep_session_id);
  auto revoked = co_await tx->query(kRevokeOtherSessions, others, deadline());
  if (!revoked) co_return revoked.error();
  std::vector<db::Uuid> ids;
  for (int i = 0; i < revoked->size(); ++i) ids.push_back((*revoked)[i].get<db::Uuid>(0));
  auto committed = co_await tx->commit(deadline());
  if (!committed) co_return committed.error();
  co_return ids;
}

asio::awaitable<Result<db::Timestamp>> IdentityStore::create_session(const NewSession& s) {
  Params params(s.id, s.user_id, db::Bytes{s.token_digest}, s.expires_at, s.ip, s.user_agent);
  auto rows =
      co_await db_.query(Intent::write, Tenant::control(), kInsertSession, params, deadline());
  if (!rows) co_return rows.error();
  co_return rows->front().get<db::Timestamp>(0);
}

asio::awaitable<Result<std::optional<std::pair<SessionRecord, User>>>>
IdentityStore::session_by_digest(const std::string& digest, std::int32_t idle_seconds) {
  Params params(db::Bytes{digest}, static_cast<double>(idle_seconds));
  auto rows = co_await db_.query(Intent::read_your_writes, Tenant::control(), kSessionByDigest,
                                 params, deadline());
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return std::optional<std::pair<SessionRecord, User>>{};
  auto row = rows->front();
  auto session = session_from(row);
  User user{session.user_id, row.get<std::string>(7), row.get<std::string>(8),
            row.get<db::Timestamp>(9)};
  co_return std::make_pair(std::move(session), std::move(user));
}

asio::awaitable<Result<void>> IdentityStore::touch_session(const db::Uuid& session_id) {
  Params params(session_id);
  auto rows =
      co_await db_.query(Intent::write, Tenant::control(), kTouchSession, params, deadline());
  if (!rows) co_return rows.error();
  co_return Result<void>{};
}

asio::awaitable<Result<bool>> IdentityStore::revoke_session(const db::Uuid& session_id,
                                                            const db::Uuid& user_id) {
  Params params(session_id, user_id);
  auto rows =
      co_await db_.query(Intent::write, Tenant::control(), kRevokeSession, params, deadline());
  if (!rows) co_return rows.error();
  co_return rows->size() == 1;
}

asio::awaitable<Result<std::vector<SessionRecord>>> IdentityStore::live_sessions(
    const db::Uuid& user_id) {
  Params params(user_id);
  auto rows = co_await db_.query(Intent::read_your_writes, Tenant::control(), kLiveSessions, params,
                                 deadline());
  if (!rows) co_return rows.error();
  std::vector<SessionRecord> out;
  for (int i = 0; i < rows->size(); ++i) out.push_back(session_from((*rows)[i]));
  co_return out;
}

}  // namespace liftoff::identity
