#pragma once
// Account email (docs/decisions/0014-email.md): the verification email at signup, the password
// reset email, and the invitation email, each sent by a job on the `mail` queue over SMTP.
//
// The job is enqueued in the transaction of the change that calls for it (a signup, an
// invitation), so a committed change always gets its email and a rolled-back one never does. The
// link's token is made by the job when it sends, and only its digest is stored: the token in the
// clear exists in memory and in the email, never in the database or the job's arguments. A retry
// makes a new token, replacing the one of the attempt that failed. Each kind is throttled per
// user (or invitation) by the jobs' unique keys: one email per `resend_interval` at most.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "liftoff/core/error.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/identity/org_store.hpp"
#include "liftoff/identity/store.hpp"
#include "liftoff/mail/message.hpp"
#include "liftoff/mail/smtp.hpp"
#include "liftoff/mail/templates.hpp"
#include "liftoff/trace/span.hpp"

namespace liftoff::db {
class Database;
class Transaction;
}  // namespace liftoff::db
namespace liftoff::jobs {
class Queue;
class Runner;
struct Job;
struct NewJob;
struct Outcome;
}  // namespace liftoff::jobs

namespace liftoff::identity {

inline constexpr std::string_view kMailQueue = "mail";
inline constexpr std::string_view kVerifyEmailPrefix = "lv_";    // verification link tokens
inline constexpr std::string_view kPasswordResetPrefix = "lr_";  // password reset link tokens

struct AccountMailOptions {
  mail::SmtpOptions smtp;  // smtp.host empty: email is off
  mail::Address from{"", "no-reply@localhost"};
  std::string app_name = "Liftoff";
  // Links are app_url + "/verify-email", "/reset-password" or "/invitations", with the token in
  // the fragment ("#token=..."): a browser does not send a fragment to any server, so the token
  // stays out of access logs and Referer headers.
  std::string app_url = "http://localhost:8080";
  std::chrono::seconds verify_ttl{std::chrono::hours(48)};
  std::chrono::seconds reset_ttl{std::chrono::hours(1)};
  std::chrono::seconds resend_interval{60};  // per user and kind (per invitation)
  int max_attempts = 12;                     // of a job, with the jobs' backoff: about a day
  mail::Templates templates;
};

// `seconds` in words for an email: "1 hour", "48 hours", "7 days", "90 minutes".
[[nodiscard]] std::string describe_duration(std::chrono::seconds seconds);

class AccountMail {
 public:
  AccountMail(db::Database& database, jobs::Queue& queue, AccountMailOptions options);

  [[nodiscard]] bool enabled() const { return !options_.smtp.host.empty(); }
  [[nodiscard]] const AccountMailOptions& options() const { return options_; }

  // Enqueue, in `tx` (a transaction over both planes), the job sending that email; nothing when
  // email is off, or when the same email was enqueued within resend_interval. The user's emails
  // are platform jobs; an invitation's is its org's. The password reset is requested with no
  // other change, so it has only the form with a transaction of its own.
  [[nodiscard]] boost::asio::awaitable<Result<void>> verification(db::Transaction& tx,
                                                                  const db::Uuid& user_id);
  [[nodiscard]] boost::asio::awaitable<Result<void>> invitation(db::Transaction& tx,
                                                                const db::Uuid& org_id,
                                                                const db::Uuid& invitation_id);
  // The same in a transaction of their own, when nothing else changes with them.
  [[nodiscard]] boost::asio::awaitable<Result<void>> verification(const db::Scope& scope,
                                                                  const db::Uuid& user_id);
  [[nodiscard]] boost::asio::awaitable<Result<void>> password_reset(const db::Scope& scope,
                                                                    const db::Uuid& user_id);

  // Registers the jobs' handlers (mail.verify_email, mail.password_reset, mail.invitation).
  void add_to(jobs::Runner& runner);

 private:
  // The job sending email `kind` about `subject` (its argument `key_name`).
  [[nodiscard]] jobs::NewJob job(std::string_view kind, std::string_view key_name,
                                 const db::Uuid& subject) const;
  [[nodiscard]] boost::asio::awaitable<Result<void>> enqueue(db::Transaction& tx,
                                                             const db::Uuid& org,
                                                             const jobs::NewJob& job);
  [[nodiscard]] boost::asio::awaitable<Result<void>> enqueue(const db::Scope& scope,
                                                             const jobs::NewJob& job);
  [[nodiscard]] boost::asio::awaitable<jobs::Outcome> send_user_mail(const jobs::Job& job,
                                                                     const db::Scope& scope,
                                                                     std::string_view purpose);
  [[nodiscard]] boost::asio::awaitable<jobs::Outcome> send_invitation(const jobs::Job& job,
                                                                      const db::Scope& scope);
  // Renders `template_name` and sends it to `to`, as a span under `trace` whose traceparent the
  // message carries: done, retried, or discarded for a permanent refusal.
  [[nodiscard]] boost::asio::awaitable<jobs::Outcome> deliver(std::string_view template_name,
                                                              const mail::Address& to,
                                                              mail::Values values,
                                                              const trace::Context& trace);

  jobs::Queue& queue_;
  IdentityStore users_;
  OrgStore orgs_;
  AccountMailOptions options_;
  mail::SmtpClient smtp_;
};

}  // namespace liftoff::identity
