#pragma once
// SQL for users and sessions. Every statement is a named constant; nothing here knows HTTP.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/identity/credentials.hpp"
#include "liftoff/identity/roles.hpp"
#include "liftoff/plans/plans.hpp"

namespace liftoff::db {
class Database;
class Transaction;
}  // namespace liftoff::db

namespace liftoff::identity {

struct User {
  db::Uuid id;
  std::string email;
  std::string name;
  db::Timestamp created_at;
  bool email_verified = false;  // the user opened a link sent to `email`
};

struct Membership {
  db::Uuid org_id;
  std::string org_name;
  Role role;
  // The org's plan and its limits (with the org's overrides), loaded with the membership and
  // refreshed with it when the plan changes: what quotas and rate limits read on every request.
  const plans::Plan* plan = &plans::default_plan();
  plans::Limits limits = plans::default_plan().limits;
  // Suspended by a platform operator: OrgService::access refuses its routes (403). Loaded and
  // refreshed with the plan.
  bool suspended = false;
};

// Who is behind a bearer credential: a user (by session token) or an organization's API key.
struct Principal {
  enum class Kind { user, api_key };
  Kind kind = Kind::user;
  User user;               // the user (kind user); empty for a key
  db::Uuid credential_id;  // the session's or the API key's id
  // The user's organizations; for a key, its one organization with the key's role.
  std::vector<Membership> memberships;

  [[nodiscard]] bool is_user() const { return kind == Kind::user; }
  // The acting user's or key's id, as the audit log records it.
  [[nodiscard]] const db::Uuid& actor_id() const { return is_user() ? user.id : credential_id; }
  [[nodiscard]] const Membership* membership_in(const db::Uuid& org_id) const {
    for (const auto& m : memberships) {
      if (m.org_id == org_id) return &m;
    }
    return nullptr;
  }
  [[nodiscard]] std::optional<Role> role_in(const db::Uuid& org_id) const {
    const auto* m = membership_in(org_id);
    return m ? std::optional<Role>(m->role) : std::nullopt;
  }
};

// What a stream ticket stands for (IdentityService::issue_stream_ticket): an org's collection's
// event stream, or with neither the notification feed of the session's user.
struct StreamTicket {
  Credential credential;
  std::optional<db::Uuid> org_id;
  std::optional<std::string> collection;
};

struct StoredUser {
  User user;
  std::string password_hash;
};

struct SessionRecord {
  db::Uuid id;
  db::Uuid user_id;
  db::Timestamp created_at;
  db::Timestamp last_seen_at;
  db::Timestamp expires_at;
  std::optional<std::string> ip;
  std::optional<std::string> user_agent;
};

struct NewSession {
  db::Uuid id;
  db::Uuid user_id;
  std::string token_digest;
  db::Timestamp expires_at;
  std::string ip;
  std::string user_agent;
};

// A role column (its name) as a Role; db::DecodeError for a name this binary does not know.
[[nodiscard]] Role role_from(const db::Row& row, int column);

class IdentityStore {
 public:
  explicit IdentityStore(db::Database& database) : db_(database) {}

  [[nodiscard]] db::Database& database() { return db_; }

  // Errc::conflict when the email is taken.
  [[nodiscard]] boost::asio::awaitable<Result<User>> create_user(const db::Scope& scope,
                                                                 const db::Uuid& id,
                                                                 const std::string& email,
                                                                 const std::string& name,
                                                                 const std::string& password_hash);
  // The same in `tx`.
  [[nodiscard]] boost::asio::awaitable<Result<User>> create_user(db::Transaction& tx,
                                                                 const db::Uuid& id,
                                                                 const std::string& email,
                                                                 const std::string& name,
                                                                 const std::string& password_hash);

  // Email links (account_mail.hpp). Whom an email of `purpose` goes to.
  struct Recipient {
    std::string email;
    std::string name;
    bool verified = false;
  };
  // A new token (its digest) of `purpose` ("verify_email", "password_reset") for the user, valid
  // for `ttl` and replacing the user's earlier one of that purpose; with the user's address and
  // name. No token for verify_email when the address is verified already (`verified`); nullopt
  // when the user is gone.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Recipient>>> issue_email_token(
      const db::Scope& scope, const db::Uuid& user_id, std::string_view purpose,
      const std::string& digest, std::chrono::seconds ttl);
  // Uses up a live verify_email token and marks the address it was sent to verified (if it is
  // still the user's): the user; nullopt when the token is unknown, used or expired.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<db::Uuid>>> verify_email(
      const db::Scope& scope, const std::string& digest);
  // Whether a password_reset token is live (checked before the new password is hashed).
  [[nodiscard]] boost::asio::awaitable<Result<bool>> reset_token_live(const db::Scope& scope,
                                                                      const std::string& digest);
  // In one transaction: uses up the live password_reset token, sets the password hash, revokes
  // every session of the user (returned, for the session cache) and marks the address verified
  // (the link reached it); nullopt when the token is not live.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<std::vector<db::Uuid>>>> reset_password(
      const db::Scope& scope, const std::string& digest, const std::string& password_hash);
  // Deletes expired email tokens (housekeeping); returns how many.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> expire_email_tokens(
      const db::Scope& scope);
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<StoredUser>>> user_by_email(
      const db::Scope& scope, const std::string& email);
  [[nodiscard]] boost::asio::awaitable<Result<void>> set_password_hash(
      const db::Scope& scope, const db::Uuid& user_id, const std::string& password_hash);

  // In one transaction: the new hash, and every other session of the user revoked (their ids
  // returned).
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<db::Uuid>>> change_password(
      const db::Scope& scope, const db::Uuid& user_id, const std::string& password_hash,
      const db::Uuid& keep_session_id);

  [[nodiscard]] boost::asio::awaitable<Result<db::Timestamp>> create_session(
      const db::Scope& scope, const NewSession& session);
  // The live session (not revoked, not expired, used within `idle_seconds`) as a principal: its
  // user with their memberships; and when it was last seen and expires.
  struct LiveCredential {
    Principal principal;
    db::Timestamp last_used_at;
    db::Timestamp expires_at;
  };
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<LiveCredential>>> session_by_digest(
      const db::Scope& scope, const std::string& digest, std::int32_t idle_seconds);
  // The live API key (not revoked, its org not deleted) as a principal.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<LiveCredential>>> api_key_by_digest(
      const db::Scope& scope, const std::string& digest);
  // Records that these sessions and API keys were used now (rows touched in the last minute are
  // left alone): a few statements for any number of credentials.
  [[nodiscard]] boost::asio::awaitable<Result<void>> touch(const db::Scope& scope,
                                                           const std::vector<db::Uuid>& sessions,
                                                           const std::vector<db::Uuid>& api_keys);
  // False when there was no live session of that user with that id.
  [[nodiscard]] boost::asio::awaitable<Result<bool>> revoke_session(const db::Scope& scope,
                                                                    const db::Uuid& session_id,
                                                                    const db::Uuid& user_id);
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<SessionRecord>>> live_sessions(
      const db::Scope& scope, const db::Uuid& user_id);

  // Returns when the ticket (by its digest) expires.
  [[nodiscard]] boost::asio::awaitable<Result<db::Timestamp>> insert_stream_ticket(
      const db::Scope& scope, const std::string& digest, const StreamTicket& ticket,
      std::chrono::seconds ttl);
  // Deletes the ticket and returns what it stood for, unless it expired (nullopt: unknown, used
  // or expired).
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<StreamTicket>>> take_stream_ticket(
      const db::Scope& scope, const std::string& digest);
  // Deletes tickets that expired unused; returns how many.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> expire_stream_tickets(
      const db::Scope& scope);

 private:
  db::Database& db_;
};

}  // namespace liftoff::identity
