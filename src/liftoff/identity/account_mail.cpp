#include "liftoff/identity/account_mail.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include "liftoff/db/database.hpp"
#include "liftoff/identity/credentials.hpp"
#include "liftoff/jobs/queue.hpp"
#include "liftoff/jobs/runner.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::string_view kVerifyEmailJob = "mail.verify_email";
constexpr std::string_view kPasswordResetJob = "mail.password_reset";
constexpr std::string_view kInvitationJob = "mail.invitation";

// The id in the job's argument `name`, or nullopt.
std::optional<db::Uuid> uuid_arg(const jobs::Job& job, std::string_view name) {
  json::error_code malformed;
  auto args = json::parse(job.args, malformed);
  const auto* object = malformed ? nullptr : args.if_object();
  const auto* value = object ? object->if_contains(name) : nullptr;
  if (!value || !value->is_string()) return std::nullopt;
  return db::Uuid::parse(value->as_string());
}

std::string plural(long long count, std::string_view unit) {
  return std::to_string(count) + " " + std::string(unit) + (count == 1 ? "" : "s");
}

}  // namespace

std::string describe_duration(std::chrono::seconds seconds) {
  auto s = seconds.count();
  if (s > 2 * 86'400 && s % 86'400 == 0) return plural(s / 86'400, "day");  // "48 hours", "3 days"
  if (s >= 3'600 && s % 3'600 == 0) return plural(s / 3'600, "hour");
  if (s >= 60 && s % 60 == 0) return plural(s / 60, "minute");
  return plural(s, "second");
}

AccountMail::AccountMail(db::Database& database, jobs::Queue& queue, AccountMailOptions options)
    : queue_(queue),
      users_(database),
      orgs_(database),
      options_(std::move(options)),
      smtp_(options_.smtp) {}

jobs::NewJob AccountMail::job(std::string_view kind, std::string_view key_name,
                              const db::Uuid& subject) const {
  jobs::NewJob job;
  job.kind = std::string(kind);
  job.args = json::object{{key_name, subject.to_string()}};
  job.queue = std::string(kMailQueue);
  job.max_attempts = options_.max_attempts;
  job.timeout = options_.smtp.timeout + std::chrono::seconds(10);
  job.unique =
      jobs::NewJob::Unique{std::string(kind) + ":" + subject.to_string(), options_.resend_interval};
  return job;
}

asio::awaitable<Result<void>> AccountMail::enqueue(db::Transaction& tx, const db::Uuid& org,
                                                   const jobs::NewJob& job) {
  if (!enabled()) co_return Result<void>{};
  std::span<const jobs::NewJob> jobs(&job, 1);
  auto enqueued = co_await queue_.enqueue(tx, org, jobs);
  if (!enqueued) co_return enqueued.error();
  co_return Result<void>{};
}

asio::awaitable<Result<void>> AccountMail::enqueue(const db::Scope& scope,
                                                   const jobs::NewJob& job) {
  if (!enabled()) co_return Result<void>{};
  std::span<const jobs::NewJob> jobs(&job, 1);
  // A platform job: every_org's scope enqueues for kPlatform.
  auto enqueued = co_await queue_.enqueue(scope.for_tenant(db::Tenant::every_org()), jobs);
  if (!enqueued) co_return enqueued.error();
  co_return Result<void>{};
}

asio::awaitable<Result<void>> AccountMail::verification(db::Transaction& tx,
                                                        const db::Uuid& user_id) {
  auto done = co_await enqueue(tx, jobs::kPlatform, job(kVerifyEmailJob, "user_id", user_id));
  co_return done;
}

asio::awaitable<Result<void>> AccountMail::invitation(db::Transaction& tx, const db::Uuid& org_id,
                                                      const db::Uuid& invitation_id) {
  auto done = co_await enqueue(tx, org_id, job(kInvitationJob, "invitation_id", invitation_id));
  co_return done;
}

asio::awaitable<Result<void>> AccountMail::verification(const db::Scope& scope,
                                                        const db::Uuid& user_id) {
  auto done = co_await enqueue(scope, job(kVerifyEmailJob, "user_id", user_id));
  co_return done;
}

asio::awaitable<Result<void>> AccountMail::password_reset(const db::Scope& scope,
                                                          const db::Uuid& user_id) {
  auto done = co_await enqueue(scope, job(kPasswordResetJob, "user_id", user_id));
  co_return done;
}

void AccountMail::add_to(jobs::Runner& runner) {
  auto verify = [this](const jobs::Job& job,
                       const db::Scope& scope) -> asio::awaitable<jobs::Outcome> {
    auto outcome = co_await send_user_mail(job, scope, "verify_email");
    co_return outcome;
  };
  auto reset = [this](const jobs::Job& job,
                      const db::Scope& scope) -> asio::awaitable<jobs::Outcome> {
    auto outcome = co_await send_user_mail(job, scope, "password_reset");
    co_return outcome;
  };
  auto invite = [this](const jobs::Job& job,
                       const db::Scope& scope) -> asio::awaitable<jobs::Outcome> {
    auto outcome = co_await send_invitation(job, scope);
    co_return outcome;
  };
  runner.handle(std::string(kVerifyEmailJob), verify);
  runner.handle(std::string(kPasswordResetJob), reset);
  runner.handle(std::string(kInvitationJob), invite);
}

asio::awaitable<jobs::Outcome> AccountMail::send_user_mail(const jobs::Job& job,
                                                           const db::Scope& scope,
                                                           std::string_view purpose) {
  if (!enabled()) co_return jobs::Outcome::discard("email is off (no smtp_host)");
  auto user_id = uuid_arg(job, "user_id");
  if (!user_id) co_return jobs::Outcome::discard("the job has no valid user_id");
  bool verify = purpose == "verify_email";
  auto token = new_token(verify ? kVerifyEmailPrefix : kPasswordResetPrefix);
  auto ttl = verify ? options_.verify_ttl : options_.reset_ttl;
  auto recipient = co_await users_.issue_email_token(scope.control(), *user_id, purpose,
                                                     token_digest(token), ttl);
  if (!recipient) co_return jobs::Outcome::retry(recipient.error().for_log());
  if (!*recipient) co_return jobs::Outcome::done();  // the user is gone: nothing to send
  if (verify && (*recipient)->verified) co_return jobs::Outcome::done();
  auto link =
      options_.app_url + (verify ? "/verify-email#token=" : "/reset-password#token=") + token;
  mail::Values values{{"app_name", options_.app_name},   {"app_url", options_.app_url},
                      {"user_name", (*recipient)->name}, {"email", (*recipient)->email},
                      {"link", std::move(link)},         {"expires", describe_duration(ttl)}};
  mail::Address to{(*recipient)->name, (*recipient)->email};
  auto outcome = co_await deliver(purpose, to, std::move(values), scope.trace);
  co_return outcome;
}

asio::awaitable<jobs::Outcome> AccountMail::send_invitation(const jobs::Job& job,
                                                            const db::Scope& scope) {
  if (!enabled()) co_return jobs::Outcome::discard("email is off (no smtp_host)");
  auto id = uuid_arg(job, "invitation_id");
  if (!id) co_return jobs::Outcome::discard("the job has no valid invitation_id");
  auto token = new_token(kInvitationTokenPrefix);
  auto found =
      co_await orgs_.invitation_for_mail(scope.control(), job.org_id, *id, token_digest(token));
  if (!found) co_return jobs::Outcome::retry(found.error().for_log());
  // Accepted, revoked or expired meanwhile, or the org was deleted: nothing to send.
  if (!*found) co_return jobs::Outcome::done();
  const auto& invitation = **found;
  auto expires_in = std::chrono::duration_cast<std::chrono::seconds>(
      invitation.expires_at - std::chrono::system_clock::now());
  mail::Values values{
      {"app_name", options_.app_name},
      {"app_url", options_.app_url},
      {"email", invitation.email},
      {"link", options_.app_url + "/invitations#token=" + token},
      {"expires", describe_duration(std::chrono::duration_cast<std::chrono::hours>(expires_in) +
                                    std::chrono::hours(1))},
      {"inviter_name", invitation.inviter_name.value_or("An administrator")},
      {"org_name", invitation.org_name},
      {"role", std::string(to_string(invitation.role))}};
  mail::Address to{"", invitation.email};
  auto outcome = co_await deliver("invitation", to, std::move(values), scope.trace);
  co_return outcome;
}

asio::awaitable<jobs::Outcome> AccountMail::deliver(std::string_view template_name,
                                                    const mail::Address& to, mail::Values values,
                                                    const trace::Context& trace) {
  trace::ActiveSpan span(trace, "SMTP send", trace::Span::Kind::client);
  span.set("server.address", options_.smtp.host);
  span.set("liftoff.mail.template", std::string(template_name));
  auto rendered = options_.templates.render(template_name, values);
  mail::Message message{options_.from,
                        to,
                        std::move(rendered.subject),
                        std::move(rendered.text),
                        std::move(rendered.html),
                        trace::propagation_headers(span.context())};
  mail::Envelope envelope{
      options_.from.email, {to.email}, mail::compose(message, std::chrono::system_clock::now())};
  auto sent = co_await smtp_.send(envelope);
  if (sent.code) span.set("liftoff.smtp.reply_code", static_cast<std::int64_t>(*sent.code));
  if (!sent.ok()) span.fail(sent.error);
  if (sent.ok()) co_return jobs::Outcome::done();
  if (sent.permanent) co_return jobs::Outcome::discard(sent.error);
  co_return jobs::Outcome::retry(sent.error);
}

}  // namespace liftoff::identity
