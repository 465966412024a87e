#pragma once
// Identity rules: signing up, logging in, authenticating a bearer token, and managing one's
// sessions. No HTTP types here; handlers in api/identity.cpp translate.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/identity/credentials.hpp"
#include "liftoff/identity/login_throttle.hpp"
#include "liftoff/identity/password_hasher.hpp"
#include "liftoff/identity/session_cache.hpp"
#include "liftoff/identity/store.hpp"

namespace liftoff::identity {

class AccountMail;

struct IdentityOptions {
  std::chrono::seconds session_ttl{std::chrono::hours(24 * 30)};  // absolute lifetime
  std::chrono::seconds session_idle{std::chrono::hours(24 * 7)};  // unused this long: expired
  std::chrono::seconds stream_ticket_ttl{30};                     // a stream ticket's life
  LoginThrottleOptions throttle;
};

struct IssuedSession {
  User user;
  db::Uuid session_id;
  std::string token;  // shown once; only its digest is stored
  db::Timestamp expires_at;
};

class IdentityService {
 public:
  // `cache` may be null (no caching); when set, a SessionRevocationListener must keep it honest.
  // Every method taking a Principal expects a user (kind user), not an API key.
  // `mail` may be null (no email): then signup sends no verification email and the email flows
  // answer unavailable.
  IdentityService(IdentityStore& store, PasswordHasher& hasher, IdentityOptions options,
                  SessionCache* cache = nullptr, AccountMail* mail = nullptr)
      : store_(store),
        hasher_(hasher),
        options_(options),
        throttle_(options.throttle),
        cache_(cache),
        mail_(mail) {}

  // validation_failed with per-field errors; conflict when the email is registered. With email on,
  // the verification email's job commits with the user.
  [[nodiscard]] boost::asio::awaitable<Result<IssuedSession>> signup(const db::Scope& scope,
                                                                     const std::string& email,
                                                                     const std::string& password,
                                                                     const std::string& name);
  // unauthenticated for a wrong email or a wrong password alike, at the cost of one Argon2id check;
  // repeated failures are slowed down, then refused with too_many_requests (see LoginThrottle).
  [[nodiscard]] boost::asio::awaitable<Result<IssuedSession>> login(const db::Scope& scope,
                                                                    const std::string& email,
                                                                    const std::string& password);
  // unauthenticated unless `token` is a live session's token or a live API key.
  [[nodiscard]] boost::asio::awaitable<Result<Principal>> authenticate(const db::Scope& scope,
                                                                       std::string_view token);
  // The same for a credential kept from a request.
  [[nodiscard]] boost::asio::awaitable<Result<Principal>> authenticate(
      const db::Scope& scope, const Credential& credential);

  // A stream ticket: what a browser's EventSource, which cannot send Authorization, passes in the
  // stream's URL instead. It stands for `credential` on one stream (see StreamTicket), once,
  // until `ttl` is over; only its digest is stored.
  struct IssuedTicket {
    std::string ticket;  // shown once
    db::Timestamp expires_at;
  };
  [[nodiscard]] boost::asio::awaitable<Result<IssuedTicket>> issue_stream_ticket(
      const db::Scope& scope, const StreamTicket& stands_for);
  // Uses the ticket up (a second use fails); unauthenticated when it is unknown, used or expired.
  [[nodiscard]] boost::asio::awaitable<Result<StreamTicket>> redeem_stream_ticket(
      const db::Scope& scope, std::string_view ticket);
  // Deletes stream tickets and email link tokens that expired unused (housekeeping); returns how
  // many.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> expire_tokens(const db::Scope& scope);
  [[nodiscard]] boost::asio::awaitable<Result<void>> logout(const db::Scope& scope,
                                                            const Principal& who);
  // Writes when the sessions and API keys authenticated since the last call were used (a batch of
  // statements; the server calls it every `credential_use_flush` and at shutdown). Returns how
  // many credentials it recorded.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> record_uses(const db::Scope& scope);
  // validation_failed when the current password is wrong or the new one breaks the policy; on
  // success every other session of the user is revoked.
  [[nodiscard]] boost::asio::awaitable<Result<void>> change_password(
      const db::Scope& scope, const Principal& who, const std::string& current_password,
      const std::string& new_password);
  // Email links (account_mail.hpp). Each answers unavailable when email is off.
  // Sends the verification email again (throttled); conflict when the address is verified.
  [[nodiscard]] boost::asio::awaitable<Result<void>> send_verification(const db::Scope& scope,
                                                                       const Principal& who);
  // Uses up a verification link's token; validation_failed (field token) when it is malformed,
  // unknown, used or expired.
  [[nodiscard]] boost::asio::awaitable<Result<void>> verify_email(const db::Scope& scope,
                                                                  std::string_view token);
  // Sends a password reset link when `email` is a user's (throttled per user); the same success
  // when it is not, so the answer does not tell who has an account.
  [[nodiscard]] boost::asio::awaitable<Result<void>> request_password_reset(
      const db::Scope& scope, const std::string& email);
  // Sets a new password with a reset link's token and signs out every session of the user.
  // validation_failed naming token (malformed, unknown, used, expired) or password (the policy);
  // the token is checked before the password is hashed.
  [[nodiscard]] boost::asio::awaitable<Result<void>> reset_password(const db::Scope& scope,
                                                                    std::string_view token,
                                                                    const std::string& password);

  [[nodiscard]] boost::asio::awaitable<Result<std::vector<SessionRecord>>> sessions(
      const db::Scope& scope, const Principal& who);
  // not_found unless `session_id` is one of who's live sessions.
  [[nodiscard]] boost::asio::awaitable<Result<void>> revoke(const db::Scope& scope,
                                                            const Principal& who,
                                                            const db::Uuid& session_id);

 private:
  [[nodiscard]] boost::asio::awaitable<Result<IssuedSession>> issue(const db::Scope& scope,
                                                                    const User& user);

  IdentityStore& store_;
  PasswordHasher& hasher_;
  IdentityOptions options_;
  LoginThrottle throttle_;
  [[nodiscard]] Result<void> mail_enabled() const;

  SessionCache* cache_;
  AccountMail* mail_;
  std::mutex uses_mutex_;  // authenticate() runs on every worker thread
  std::unordered_set<db::Uuid, db::UuidHash> used_sessions_, used_api_keys_;
};

}  // namespace liftoff::identity
