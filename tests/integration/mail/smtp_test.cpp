// The SMTP client against a real SMTP server (Debian's python3-aiosmtpd, tests/support/
// smtp_server.py), which parses what it receives with Python's email package: plain, STARTTLS
// with AUTH, TLS from the first byte; a server's refusals, permanent and transient; a server that
// does not offer STARTTLS when it is required; an untrusted certificate; a wrong password; a
// server too slow for the timeout.
#include "liftoff/mail/smtp.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <filesystem>

#include "liftoff/mail/message.hpp"
#include "support/async.hpp"
#include "support/run_dir.hpp"
#include "support/smtp_server.hpp"
#include "support/webhook_receiver.hpp"

namespace liftoff::mail {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::block_on;
using testing::SmtpServer;

class SmtpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = new fs::path(testing::make_temp_dir("/tmp/liftoff-smtp-"));
    ASSERT_TRUE(testing::make_certificate(*dir)) << "openssl could not make a certificate";
    plain = new SmtpServer(*dir, "plain", {});
    secure = new SmtpServer(
        *dir, "starttls",
        {SmtpServer::Tls::starttls, *dir / "cert.pem", *dir / "key.pem", "mailer:s3cret pass"});
    implicit = new SmtpServer(*dir, "implicit",
                              {SmtpServer::Tls::implicit, *dir / "cert.pem", *dir / "key.pem", ""});
  }
  static void TearDownTestSuite() {
    delete plain;
    delete secure;
    delete implicit;
    std::error_code ec;
    fs::remove_all(*dir, ec);
    delete dir;
  }
  void SetUp() override {
    ASSERT_TRUE(plain->port() && secure->port() && implicit->port()) << "a server did not start";
  }

  static SmtpOptions options(const SmtpServer& server, Security security) {
    SmtpOptions out;
    out.host = security == Security::none ? "127.0.0.1" : "localhost";  // the certificate's name
    out.port = server.port();
    out.security = security;
    out.timeout = 10s;
    if (security != Security::none) out.ca_file = (*dir / "cert.pem").string();
    return out;
  }

  static Envelope envelope(std::string to, std::string subject = "Hello") {
    Message message{{"Liftoff", "no-reply@liftoff.test"},
                    {"", to},
                    std::move(subject),
                    "Plain text\n.a line that starts with a dot\n",
                    "<p>HTML &amp; text</p>"};
    return Envelope{"no-reply@liftoff.test",
                    {std::move(to)},
                    compose(message, std::chrono::system_clock::now())};
  }

  static Sent send(const SmtpOptions& options, const Envelope& envelope) {
    SmtpClient client(options);
    return block_on(client.send(envelope));
  }

  static inline fs::path* dir = nullptr;
  static inline SmtpServer* plain = nullptr;
  static inline SmtpServer* secure = nullptr;
  static inline SmtpServer* implicit = nullptr;
};

TEST_F(SmtpTest, APlainMessageArrivesAsComposedParsedByPythonsEmailPackage) {
  auto before = plain->received().size();
  Message message{{"Équipe Liftoff", "no-reply@liftoff.test"},
                  {"Zoë \"Z\" Müller", "zoe@example.test"},
                  "Grüße, \"quoted\" =?and a fake word?= — a long subject that must be folded "
                  "into several encoded words to stay within the line limit",
                  "Hello Zoë,\n.starts with a dot\n..two dots\nend\n",
                  "<p>Hello <b>Zoë</b></p>"};
  Envelope sent_envelope{"no-reply@liftoff.test",
                         {"zoe@example.test", "other@example.test"},
                         compose(message, std::chrono::system_clock::now())};
  auto sent = send(options(*plain, Security::none), sent_envelope);
  ASSERT_TRUE(sent.ok()) << sent.error;
  EXPECT_EQ(sent.code, 250);
  auto received = plain->wait_for(before + 1);
  ASSERT_EQ(received.size(), before + 1);
  const auto& got = received.back();
  EXPECT_EQ(got.at("mail_from").as_string(), "no-reply@liftoff.test");
  EXPECT_EQ(got.at("rcpt_tos").as_array().size(), 2u);
  EXPECT_EQ(got.at("subject").as_string(), message.subject);
  EXPECT_EQ(got.at("from").as_string(), "Équipe Liftoff <no-reply@liftoff.test>");
  EXPECT_EQ(got.at("to").as_string(), "\"Zoë \\\"Z\\\" Müller\" <zoe@example.test>");
  EXPECT_EQ(got.at("content_type").as_string(), "multipart/alternative");
  EXPECT_EQ(got.at("text").as_string(), message.text);  // the dots were unstuffed
  EXPECT_EQ(got.at("html").as_string(), message.html);
  EXPECT_TRUE(got.at("defects").as_array().empty()) << boost::json::serialize(got);
  EXPECT_FALSE(got.at("tls").as_bool());
  for (const auto* header : {"Date", "Message-ID", "MIME-Version"}) {
    bool has = false;
    for (const auto& name : got.at("headers").as_array()) has = has || name.as_string() == header;
    EXPECT_TRUE(has) << header;
  }
}

TEST_F(SmtpTest, StarttlsWithAuthEncryptsBeforeTheCredentialsAreSent) {
  auto before = secure->received().size();
  auto with_auth = options(*secure, Security::starttls);
  with_auth.username = "mailer";
  with_auth.password = "s3cret pass";
  auto sent = send(with_auth, envelope("user@example.test"));
  ASSERT_TRUE(sent.ok()) << sent.error;
  auto received = secure->wait_for(before + 1);
  ASSERT_EQ(received.size(), before + 1);
  EXPECT_TRUE(received.back().at("tls").as_bool());
  EXPECT_TRUE(received.back().at("authenticated").as_bool());
}

TEST_F(SmtpTest, AWrongPasswordIsAPermanentFailure) {
  auto wrong = options(*secure, Security::starttls);
  wrong.username = "mailer";
  wrong.password = "wrong";
  auto sent = send(wrong, envelope("user@example.test"));
  EXPECT_FALSE(sent.ok());
  EXPECT_EQ(sent.code, 535) << sent.error;
  EXPECT_TRUE(sent.permanent);
}

TEST_F(SmtpTest, ImplicitTlsFromTheFirstByte) {
  auto before = implicit->received().size();
  auto sent = send(options(*implicit, Security::tls), envelope("user@example.test"));
  ASSERT_TRUE(sent.ok()) << sent.error;
  auto received = implicit->wait_for(before + 1);
  ASSERT_EQ(received.size(), before + 1);
  EXPECT_TRUE(received.back().at("tls").as_bool());
}

TEST_F(SmtpTest, StarttlsRequiredButNotOfferedSendsNothing) {
  auto before = plain->received().size();
  auto required = options(*plain, Security::starttls);
  required.host = "127.0.0.1";
  auto sent = send(required, envelope("user@example.test"));
  EXPECT_FALSE(sent.ok());
  EXPECT_NE(sent.error.find("STARTTLS"), std::string::npos) << sent.error;
  EXPECT_EQ(plain->received().size(), before);
}

TEST_F(SmtpTest, AnUntrustedCertificateFailsTheHandshake) {
  auto untrusted = options(*secure, Security::starttls);
  untrusted.ca_file.clear();
  auto sent = send(untrusted, envelope("user@example.test"));
  EXPECT_FALSE(sent.ok());
  EXPECT_NE(sent.error.find("TLS handshake"), std::string::npos) << sent.error;
  EXPECT_FALSE(sent.permanent);
}

TEST_F(SmtpTest, RefusalsArePermanentOrTransientByTheirCode) {
  auto refused = send(options(*plain, Security::none), envelope("refused@example.test"));
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.code, 550);
  EXPECT_TRUE(refused.permanent);
  EXPECT_NE(refused.error.find("No such user"), std::string::npos) << refused.error;
  auto busy = send(options(*plain, Security::none), envelope("busy@example.test"));
  EXPECT_FALSE(busy.ok());
  EXPECT_EQ(busy.code, 451);
  EXPECT_FALSE(busy.permanent);
}

TEST_F(SmtpTest, ASlowServerTimesOutAndAClosedPortFailsAtOnce) {
  auto hasty = options(*plain, Security::none);
  hasty.timeout = 500ms;
  auto slow = send(hasty, envelope("slow@example.test"));
  EXPECT_FALSE(slow.ok());
  EXPECT_NE(slow.error.find("timed out after 500 ms"), std::string::npos) << slow.error;
  EXPECT_FALSE(slow.permanent);

  auto closed = options(*plain, Security::none);
  closed.port = 1;  // nothing listens there
  auto refused = send(closed, envelope("user@example.test"));
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.error.find("cannot connect"), std::string::npos) << refused.error;
}

TEST_F(SmtpTest, AnEnvelopeAddressThatCouldInjectACommandIsRefusedUnsent) {
  auto before = plain->received().size();
  auto bad = envelope("user@example.test");
  bad.to = {"user@example.test>\r\nRCPT TO:<victim@example.test"};
  auto sent = send(options(*plain, Security::none), bad);
  EXPECT_FALSE(sent.ok());
  EXPECT_TRUE(sent.permanent);
  EXPECT_EQ(plain->received().size(), before);
}

}  // namespace
}  // namespace liftoff::mail
