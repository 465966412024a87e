// Account email through the real binary and a real SMTP server (Debian's aiosmtpd): signup sends a
// verification email whose link verifies the address once; a password reset link sets a new
// password once and signs out every session, while the request answers the same for addresses
// without an account and is throttled per user; an invitation email's link joins the org; bad
// tokens get a 422 naming the token; a server without smtp_host answers 503.
#include "e2e/e2e.hpp"
#include "e2e/records_support.hpp"
#include "support/run_dir.hpp"
#include "support/smtp_server.hpp"

namespace liftoff::testing {
namespace {

constexpr const char* kAppUrl = "https://app.example.test";

class MailE2E : public E2E {
 protected:
  static void SetUpTestSuite() {
    E2E::SetUpTestSuite();
    dir = new std::filesystem::path(make_temp_dir("/tmp/liftoff-mail-e2e-"));
    smtp = new SmtpServer(*dir, "smtp", {});
    mailing = new OwnServer({{"LIFTOFF_SMTP_HOST", "127.0.0.1"},
                             {"LIFTOFF_SMTP_PORT", std::to_string(smtp->port())},
                             {"LIFTOFF_SMTP_SECURITY", "none"},
                             {"LIFTOFF_MAIL_FROM", "no-reply@acme.test"},
                             {"LIFTOFF_APP_NAME", "Acme"},
                             {"LIFTOFF_APP_URL", std::string(kAppUrl) + "/"},
                             {"LIFTOFF_JOB_POLL_INTERVAL", "100ms"}});
  }
  static void TearDownTestSuite() {
    delete mailing;
    delete smtp;
    std::filesystem::remove_all(*dir);
    delete dir;
    E2E::TearDownTestSuite();
  }
  static unsigned short mail_port() { return mailing->port(); }

  // The messages to `address` (normalized: lower case) so far.
  static std::vector<json::object> mail_to(std::string address) {
    for (auto& c : address) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::vector<json::object> out;
    for (auto& message : smtp->received()) {
      const auto& to = message.at("rcpt_tos").as_array();
      if (!to.empty() && to[0].as_string() == address) out.push_back(std::move(message));
    }
    return out;
  }
  // The `count`-th message to `address` once it arrived (30 s at most).
  static std::optional<json::object> nth_mail_to(const std::string& address, std::size_t count) {
    if (!eventually([&] { return mail_to(address).size() >= count; })) return std::nullopt;
    return mail_to(address)[count - 1];
  }
  // The token in the message's link "<kAppUrl><path>#token=...", in its text and its HTML alike.
  static std::string token_in(const json::object& message, const std::string& path) {
    auto link = std::string(kAppUrl) + path + "#token=";
    std::string text(message.at("text").as_string());
    auto at = text.find(link);
    if (at == std::string::npos) return "";
    auto end = text.find_first_of(" \n", at);
    auto token = text.substr(at + link.size(), end - at - link.size());
    std::string html(message.at("html").as_string());
    EXPECT_NE(html.find("href=\"" + link + token + "\""), std::string::npos) << html;
    return token;
  }
  static json::object me(const std::string& token) {
    auto r = send_json(mail_port(), "GET", "/v1/me", token);
    EXPECT_EQ(status(r), 200);
    return r ? json_of(*r) : json::object{};
  }

  static inline std::filesystem::path* dir = nullptr;
  static inline SmtpServer* smtp = nullptr;
  static inline OwnServer* mailing = nullptr;
};

TEST_F(MailE2E, SignupSendsAVerificationLinkThatVerifiesTheAddressOnce) {
  ASSERT_NE(smtp->port(), 0);
  auto user = sign_up(mail_port(), "verify");
  EXPECT_FALSE(me(user.token).at("email_verified").as_bool());
  auto message = nth_mail_to(user.email, 1);
  ASSERT_TRUE(message) << "no verification email";
  EXPECT_EQ(message->at("subject"), "Confirm your email address for Acme");
  EXPECT_EQ(message->at("from"), "Acme <no-reply@acme.test>");
  EXPECT_EQ(message->at("to").as_string(), "Ada Lovelace <" + user.email + ">");
  auto token = token_in(*message, "/verify-email");
  ASSERT_TRUE(token.starts_with("lv_")) << message->at("text");

  auto verify = [&](const std::string& t) {
    return send_json(mail_port(), "POST", "/v1/auth/verify-email", "",
                     body_of(json::object{{"token", t}}));
  };
  EXPECT_EQ(status(verify(token + "x")), 422);
  auto forged = verify("lv_" + std::string(43, 'A'));
  ASSERT_EQ(status(forged), 422);
  EXPECT_EQ(problem(*forged).at("errors").as_array()[0].at("field"), "token");
  ASSERT_EQ(status(verify(token)), 204);
  EXPECT_TRUE(eventually([&] { return me(user.token).at("email_verified").as_bool(); }));
  EXPECT_EQ(status(verify(token)), 422);  // used up

  // Verified: nothing more to send.
  EXPECT_EQ(status(send_json(mail_port(), "POST", "/v1/auth/verify-email/send", user.token)), 409);
  EXPECT_EQ(status(send_json(mail_port(), "POST", "/v1/auth/verify-email", "", "{}")), 422);
}

TEST_F(MailE2E, AResetLinkSetsANewPasswordOnceAndSignsOutEverySession) {
  auto user = sign_up(mail_port(), "reset");
  auto reset = [&](const std::string& email) {
    return send_json(mail_port(), "POST", "/v1/auth/password-reset", "",
                     body_of(json::object{{"email", email}}));
  };
  ASSERT_EQ(status(reset(user.email)), 202);
  // Throttled: a second request inside mail_resend_interval sends nothing more.
  ASSERT_EQ(status(reset(user.email)), 202);
  // No account: the same answer, and no email.
  auto nobody = unique_email("nobody");
  ASSERT_EQ(status(reset(nobody)), 202);
  EXPECT_EQ(status(reset("not an address")), 422);

  std::optional<json::object> message;
  ASSERT_TRUE(eventually([&] {
    for (auto& m : mail_to(user.email)) {
      if (std::string_view(m.at("subject").as_string()).starts_with("Reset")) message = m;
    }
    return message.has_value();
  }));
  EXPECT_EQ(message->at("subject"), "Reset your Acme password");
  auto token = token_in(*message, "/reset-password");
  ASSERT_TRUE(token.starts_with("lr_")) << message->at("text");

  auto confirm = [&](const std::string& t, const std::string& password) {
    return send_json(mail_port(), "POST", "/v1/auth/password-reset/confirm", "",
                     body_of(json::object{{"token", t}, {"password", password}}));
  };
  auto weak = confirm(token, "short");
  ASSERT_EQ(status(weak), 422);
  EXPECT_EQ(problem(*weak).at("errors").as_array()[0].at("field"), "password");
  auto forged = confirm("lr_" + std::string(43, 'B'), "a brand new passphrase");
  ASSERT_EQ(status(forged), 422);
  EXPECT_EQ(problem(*forged).at("errors").as_array()[0].at("field"), "token");
  ASSERT_EQ(status(confirm(token, "a brand new passphrase")), 204);
  EXPECT_EQ(status(confirm(token, "another new passphrase")), 422);  // used up

  EXPECT_TRUE(eventually(
      [&] { return status(send_json(mail_port(), "GET", "/v1/me", user.token)) == 401; }));
  EXPECT_EQ(status(post_json(
                mail_port(), "/v1/auth/login",
                body_of(json::object{{"email", user.email}, {"password", "a sturdy passphrase"}}))),
            401);
  auto login = post_json(
      mail_port(), "/v1/auth/login",
      body_of(json::object{{"email", user.email}, {"password", "a brand new passphrase"}}));
  ASSERT_EQ(status(login), 200);
  // The link reached the address: it is verified too.
  EXPECT_TRUE(json_of(*login).at("user").at("email_verified").as_bool());

  std::this_thread::sleep_for(std::chrono::seconds(1));  // time for a wrong extra email to arrive
  std::size_t resets = 0;
  for (const auto& m : mail_to(user.email))
    resets += std::string_view(m.at("subject").as_string()).starts_with("Reset") ? 1 : 0;
  EXPECT_EQ(resets, 1u);
  EXPECT_TRUE(mail_to(nobody).empty());
}

TEST_F(MailE2E, AnInvitationEmailsALinkThatJoinsTheOrg) {
  auto owner = sign_up(mail_port(), "inviter");
  auto created = send_json(mail_port(), "POST", "/v1/orgs", owner.token,
                           body_of(json::object{{"name", "Acme & Co"}}));
  ASSERT_EQ(status(created), 201);
  auto org = std::string(json_of(*created).at("id").as_string());
  auto invitee_email = unique_email("invitee");
  auto invited = send_json(mail_port(), "POST", "/v1/orgs/" + org + "/invitations", owner.token,
                           body_of(json::object{{"email", invitee_email}, {"role", "member"}}));
  ASSERT_EQ(status(invited), 201);

  auto message = nth_mail_to(invitee_email, 1);
  ASSERT_TRUE(message) << "no invitation email";
  EXPECT_EQ(message->at("subject"), "Ada Lovelace invited you to Acme & Co on Acme");
  EXPECT_NE(std::string(message->at("html").as_string()).find("Acme &amp; Co"), std::string::npos);
  auto token = token_in(*message, "/invitations");
  ASSERT_TRUE(token.starts_with("li_")) << message->at("text");
  EXPECT_NE(token, std::string(json_of(*invited).at("token").as_string()));

  auto signup = post_json(mail_port(), "/v1/auth/signup", signup_body(invitee_email));
  ASSERT_EQ(status(signup), 201);
  auto invitee_token = std::string(json_of(*signup).at("token").as_string());
  auto joined = accept_invitation(mail_port(), token, invitee_token);
  ASSERT_EQ(status(joined), 200) << joined->body;
  EXPECT_EQ(json_of(*joined).at("id").as_string(), org);
}

TEST_F(MailE2E, AnAddressTheRelayRefusesDiscardsItsJobWithTheRelaysAnswer) {
  auto owner = sign_up(mail_port(), "refusing");
  auto created =
      send_json(mail_port(), "POST", "/v1/orgs", owner.token, body_of(json::object{{"name", "R"}}));
  ASSERT_EQ(status(created), 201);
  auto org = std::string(json_of(*created).at("id").as_string());
  // The test server answers 550 to refused@...: a permanent refusal, not retried.
  ASSERT_EQ(status(send_json(
                mail_port(), "POST", "/v1/orgs/" + org + "/invitations", owner.token,
                body_of(json::object{{"email", "refused@example.test"}, {"role", "viewer"}}))),
            201);
  std::optional<json::object> job;
  ASSERT_TRUE(eventually([&] {
    auto r = send_json(mail_port(), "GET", "/v1/orgs/" + org + "/jobs?state=discarded&queue=mail",
                       owner.token);
    if (status(r) != 200) return false;
    auto body = json_of(*r);
    const auto& jobs = body.at("jobs").as_array();
    if (!jobs.empty()) job = jobs[0].as_object();
    return job.has_value();
  }));
  EXPECT_EQ(job->at("kind"), "mail.invitation");
  EXPECT_EQ(job->at("attempt"), 1);
  EXPECT_NE(std::string(job->at("last_error").as_string()).find("550"), std::string::npos)
      << json::serialize(*job);
}

TEST_F(MailE2E, WithoutSmtpHostTheEmailFlowsAnswer503) {
  auto user = sign_up(port(), "no-mail");
  auto reset = send_json(port(), "POST", "/v1/auth/password-reset", "",
                         body_of(json::object{{"email", user.email}}));
  ASSERT_EQ(status(reset), 503);
  EXPECT_NE(reset->body.find("smtp_host"), std::string::npos);
  EXPECT_EQ(status(send_json(port(), "POST", "/v1/auth/verify-email/send", user.token)), 503);
}

}  // namespace
}  // namespace liftoff::testing
