#include "liftoff/identity/service.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "liftoff/core/id.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/identity/account_mail.hpp"
#include "liftoff/identity/credentials.hpp"
#include "liftoff/trace/span.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;

namespace {
constexpr std::size_t kMaxUserAgentLength = 512;

db::Uuid new_id() {
  return db::Uuid{core::new_uuid_v7()};
}

Error invalid_credentials() {
  return make_error(Errc::unauthenticated, "invalid email or password");
}

db::Timestamp now() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

// Holds a wrong password's answer for the throttle's delay (a timer, not a blocked thread).
asio::awaitable<void> hold(std::chrono::milliseconds delay) {
  if (delay.count() <= 0) co_return;
  asio::steady_timer timer(co_await asio::this_coro::executor, delay);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}
}  // namespace

asio::awaitable<Result<IssuedSession>> IdentityService::issue(const db::Scope& scope,
                                                              const User& user) {
  auto token = new_session_token();
  NewSession session{
      new_id(),
      user.id,
      token_digest(token),
      now() + std::chrono::duration_cast<std::chrono::microseconds>(options_.session_ttl),
      scope.actor.ip,
      scope.actor.user_agent.substr(0, kMaxUserAgentLength)};
  auto created = co_await store_.create_session(scope, session);
  if (!created) co_return created.error();
  co_return IssuedSession{user, session.id, std::move(token), session.expires_at};
}

asio::awaitable<Result<IssuedSession>> IdentityService::signup(const db::Scope& scope,
                                                               const std::string& email,
                                                               const std::string& password,
                                                               const std::string& name) {
  Error invalid{Errc::validation_failed, "the account details are invalid", {}};
  auto normalized = normalize_email(email);
  if (!normalized) invalid.fields.push_back({"email", "is not a valid email address"});
  if (auto problem = password_problem(password)) invalid.fields.push_back({"password", *problem});
  if (auto problem = name_problem(name)) invalid.fields.push_back({"name", *problem});
  if (!invalid.fields.empty()) co_return invalid;

  auto hash = co_await hasher_.hash(password, scope.actor.ip);
  if (!hash) co_return hash.error();
  auto id = new_id();
  if (!mail_ || !mail_->enabled()) {
    auto user = co_await store_.create_user(scope, id, *normalized, name, *hash);
    if (!user) co_return user.error();
    co_return co_await issue(scope, *user);
  }
  // The user and their verification email's job commit together (the job is a platform job, in
  // the tenant plane: both planes).
  auto tx = co_await store_.database().begin(scope.for_tenant(db::Tenant::every_org()),
                                             db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto user = co_await store_.create_user(*tx, id, *normalized, name, *hash);
  if (!user) co_return user.error();
  auto queued = co_await mail_->verification(*tx, id);
  if (!queued) co_return queued.error();
  auto committed = co_await tx->commit();
  if (!committed) co_return committed.error();
  co_return co_await issue(scope, *user);
}

asio::awaitable<Result<std::size_t>> IdentityService::expire_tokens(const db::Scope& scope) {
  auto tickets = co_await store_.expire_stream_tickets(scope);
  if (!tickets) co_return tickets.error();
  auto links = co_await store_.expire_email_tokens(scope);
  if (!links) co_return links.error();
  co_return *tickets + *links;
}

Result<void> IdentityService::mail_enabled() const {
  if (mail_ && mail_->enabled()) return {};
  return make_error(Errc::unavailable,
                    "email is off on this server: its operator sets smtp_host to turn it on");
}

asio::awaitable<Result<void>> IdentityService::send_verification(const db::Scope& scope,
                                                                 const Principal& who) {
  if (auto on = mail_enabled(); !on) co_return on.error();
  if (who.user.email_verified)
    co_return make_error(Errc::conflict, "the email address is verified already");
  auto queued = co_await mail_->verification(scope, who.user.id);
  co_return queued;
}

asio::awaitable<Result<void>> IdentityService::verify_email(const db::Scope& scope,
                                                            std::string_view token) {
  Error invalid{Errc::validation_failed,
                "the verification link is invalid",
                {{"token", "is unknown, used or expired"}}};
  if (!token_shaped(token, kVerifyEmailPrefix)) co_return invalid;
  auto verified = co_await store_.verify_email(scope, token_digest(token));
  if (!verified) co_return verified.error();
  if (!*verified) co_return invalid;
  if (cache_) cache_->evict_user(**verified);
  co_return Result<void>{};
}

asio::awaitable<Result<void>> IdentityService::request_password_reset(const db::Scope& scope,
                                                                      const std::string& email) {
  if (auto on = mail_enabled(); !on) co_return on.error();
  auto normalized = normalize_email(email);
  if (!normalized) {
    co_return Error{Errc::validation_failed,
                    "the request is invalid",
                    {{"email", "is not a valid email address"}}};
  }
  auto stored = co_await store_.user_by_email(scope, *normalized);
  if (!stored) co_return stored.error();
  if (!*stored) co_return Result<void>{};  // no account: the same answer, no email
  auto queued = co_await mail_->password_reset(scope, (*stored)->user.id);
  co_return queued;
}

asio::awaitable<Result<void>> IdentityService::reset_password(const db::Scope& scope,
                                                              std::string_view token,
                                                              const std::string& password) {
  Error invalid_token{Errc::validation_failed,
                      "the password reset link is invalid",
                      {{"token", "is unknown, used or expired"}}};
  if (!token_shaped(token, kPasswordResetPrefix)) co_return invalid_token;
  if (auto problem = password_problem(password)) {
    co_return Error{
        Errc::validation_failed, "the new password is not acceptable", {{"password", *problem}}};
  }
  auto digest = token_digest(token);
  // The token first: a request without a live one costs no Argon2id hash.
  auto live = co_await store_.reset_token_live(scope, digest);
  if (!live) co_return live.error();
  if (!*live) co_return invalid_token;
  auto hash = co_await hasher_.hash(password, scope.actor.ip);
  if (!hash) co_return hash.error();
  auto revoked = co_await store_.reset_password(scope, digest, *hash);
  if (!revoked) co_return revoked.error();
  if (!*revoked) co_return invalid_token;  // used meanwhile by a concurrent request
  if (cache_) {
    for (const auto& id : **revoked) cache_->evict_credential(id);
  }
  co_return Result<void>{};
}

asio::awaitable<Result<IssuedSession>> IdentityService::login(const db::Scope& scope,
                                                              const std::string& email,
                                                              const std::string& password) {
  auto normalized = normalize_email(email).value_or("");
  auto account = normalized.empty() ? email.substr(0, 254) : normalized;
  auto attempt = throttle_.attempt(account, scope.actor.ip);
  if (attempt.locked) {
    co_return Error{
        Errc::too_many_requests, "too many failed logins; try again later", {}, *attempt.locked};
  }
  std::optional<StoredUser> stored;
  if (!normalized.empty()) {
    auto found = co_await store_.user_by_email(scope, normalized);
    if (!found) co_return found.error();
    stored = std::move(*found);
  }
  // Unknown users cost one Argon2id verification too: the answer's timing does not tell them apart.
  std::string hash = stored ? stored->password_hash : hasher_.decoy_hash();
  auto verified = co_await hasher_.verify(password, hash, scope.actor.ip);
  if (!verified) co_return verified.error();
  if (!stored || !verified->matches) {
    throttle_.failed(scope.actor.ip);
    co_await hold(attempt.delay);
    co_return invalid_credentials();
  }
  throttle_.succeeded(account);
  if (verified->needs_rehash) {
    auto rehashed = co_await hasher_.hash(password, scope.actor.ip);
    if (rehashed)
      (void)co_await store_.set_password_hash(scope, stored->user.id, *rehashed);  // best effort
  }
  co_return co_await issue(scope, stored->user);
}

asio::awaitable<Result<Principal>> IdentityService::authenticate(const db::Scope& scope,
                                                                 std::string_view token) {
  auto credential = credential_of(token);
  if (!credential) co_return credential.error();
  co_return co_await authenticate(scope, *credential);
}

asio::awaitable<Result<Principal>> IdentityService::authenticate(const db::Scope& scope,
                                                                 const Credential& credential) {
  bool session = credential.kind == Credential::Kind::session;
  const auto& digest = credential.digest;
  std::uint64_t generation = 0;
  if (cache_) {
    trace::CacheLookup lookup(scope.trace, "session");
    auto hit = cache_->get(digest);
    lookup.hit(hit.has_value());
    if (hit) co_return std::move(*hit);
    generation = cache_->generation();
  }
  // No co_await inside ?: (GCC 12 evaluates it twice; see Params::none()).
  Result<std::optional<IdentityStore::LiveCredential>> found = std::nullopt;
  if (session) {
    auto idle = static_cast<std::int32_t>(options_.session_idle.count());
    found = co_await store_.session_by_digest(scope, digest, idle);
  } else {
    found = co_await store_.api_key_by_digest(scope, digest);
  }
  if (!found) co_return found.error();
  if (!*found) co_return make_error(Errc::unauthenticated, "invalid or expired credentials");
  auto& live = **found;
  // Use is recorded at most once a minute per credential, by record_uses() in batches: a request
  // neither writes nor waits for a write.
  if (now() - live.last_used_at > std::chrono::minutes(1)) {
    std::lock_guard lock(uses_mutex_);
    (session ? used_sessions_ : used_api_keys_).insert(live.principal.credential_id);
  }
  if (cache_) cache_->put(digest, live.principal, live.expires_at, generation);
  co_return std::move(live.principal);
}

asio::awaitable<Result<IdentityService::IssuedTicket>> IdentityService::issue_stream_ticket(
    const db::Scope& scope, const StreamTicket& stands_for) {
  auto ticket = new_token(kStreamTicketPrefix);
  auto expires_at = co_await store_.insert_stream_ticket(scope, token_digest(ticket), stands_for,
                                                         options_.stream_ticket_ttl);
  if (!expires_at) co_return expires_at.error();
  co_return IssuedTicket{std::move(ticket), *expires_at};
}

asio::awaitable<Result<StreamTicket>> IdentityService::redeem_stream_ticket(
    const db::Scope& scope, std::string_view ticket) {
  auto invalid = make_error(Errc::unauthenticated, "invalid, used or expired stream ticket");
  if (!token_shaped(ticket, kStreamTicketPrefix)) co_return invalid;
  auto taken = co_await store_.take_stream_ticket(scope, token_digest(ticket));
  if (!taken) co_return taken.error();
  if (!*taken) co_return invalid;
  co_return std::move(**taken);
}

asio::awaitable<Result<std::size_t>> IdentityService::record_uses(const db::Scope& scope) {
  std::vector<db::Uuid> sessions, api_keys;
  {
    std::lock_guard lock(uses_mutex_);
    sessions.assign(used_sessions_.begin(), used_sessions_.end());
    api_keys.assign(used_api_keys_.begin(), used_api_keys_.end());
    used_sessions_.clear();
    used_api_keys_.clear();
  }
  if (sessions.empty() && api_keys.empty()) co_return std::size_t{0};
  auto touched = co_await store_.touch(scope, sessions, api_keys);
  if (!touched) co_return touched.error();  // lost: the next use notes them again
  co_return sessions.size() + api_keys.size();
}

asio::awaitable<Result<void>> IdentityService::logout(const db::Scope& scope,
                                                      const Principal& who) {
  auto revoked = co_await store_.revoke_session(scope, who.credential_id, who.user.id);
  if (!revoked) co_return revoked.error();
  if (cache_) cache_->evict_credential(who.credential_id);
  co_return Result<void>{};
}

asio::awaitable<Result<void>> IdentityService::change_password(const db::Scope& scope,
                                                               const Principal& who,
                                                               const std::string& current_password,
                                                               const std::string& new_password) {
  if (auto problem = password_problem(new_password)) {
    co_return Error{Errc::validation_failed,
                    "the new password is not acceptable",
                    {{"new_password", *problem}}};
  }
  auto stored = co_await store_.user_by_email(scope, who.user.email);
  if (!stored) co_return stored.error();
  if (!*stored) co_return make_error(Errc::unauthenticated, "invalid or expired session token");
  // A stolen session must not become a way to guess the password: the same throttle as login.
  auto attempt = throttle_.attempt((*stored)->user.email, scope.actor.ip);
  if (attempt.locked) {
    co_return Error{Errc::too_many_requests,
                    "too many wrong current passwords; try again later",
                    {},
                    *attempt.locked};
  }
  auto verified =
      co_await hasher_.verify(current_password, (*stored)->password_hash, scope.actor.ip);
  if (!verified) co_return verified.error();
  if (!verified->matches) {
    throttle_.failed(scope.actor.ip);
    co_await hold(attempt.delay);
    co_return Error{Errc::validation_failed,
                    "the current password is incorrect",
                    {{"current_password", "is incorrect"}}};
  }
  throttle_.succeeded((*stored)->user.email);
  auto hash = co_await hasher_.hash(new_password, scope.actor.ip);
  if (!hash) co_return hash.error();
  auto revoked = co_await store_.change_password(scope, who.user.id, *hash, who.credential_id);
  if (!revoked) co_return revoked.error();
  if (cache_) {
    for (const auto& id : *revoked) cache_->evict_credential(id);
  }
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<SessionRecord>>> IdentityService::sessions(
    const db::Scope& scope, const Principal& who) {
  co_return co_await store_.live_sessions(scope, who.user.id);
}

asio::awaitable<Result<void>> IdentityService::revoke(const db::Scope& scope, const Principal& who,
                                                      const db::Uuid& session_id) {
  auto revoked = co_await store_.revoke_session(scope, session_id, who.user.id);
  if (!revoked) co_return revoked.error();
  if (!*revoked) co_return make_error(Errc::not_found, "no such session");
  if (cache_) cache_->evict_credential(session_id);
  co_return Result<void>{};
}

}  // namespace liftoff::identity
