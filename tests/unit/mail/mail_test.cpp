// Email composition without a server: header encoding (no value can add a header line, no line
// passes 78 characters, no character is split), dot-stuffing, and the templates (HTML escaping,
// an operator's overrides checked for unknown placeholders when they load).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "liftoff/mail/message.hpp"
#include "liftoff/mail/templates.hpp"
#include "support/run_dir.hpp"

namespace liftoff::mail {
namespace {
namespace fs = std::filesystem;

TEST(MailHeader, PlainAsciiStaysAndAnythingElseBecomesFoldedEncodedWords) {
  EXPECT_EQ(encode_header("Reset your password"), "Reset your password");
  auto injected = encode_header("Hi\r\nBcc: victim@example.test");
  EXPECT_EQ(injected.find('\n') == std::string::npos ? injected : "", injected);
  EXPECT_TRUE(injected.starts_with("=?UTF-8?B?"));
  EXPECT_EQ(injected.find("Bcc"), std::string::npos);

  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "Grüße ";  // 2-byte characters
  auto folded = encode_header(long_text);
  std::size_t start = 0;
  int words = 0;
  while (start < folded.size()) {
    auto end = folded.find("\r\n ", start);
    auto line = folded.substr(start, end == std::string::npos ? end : end - start);
    EXPECT_LE(line.size(), 76u);
    EXPECT_TRUE(line.starts_with("=?UTF-8?B?") && line.ends_with("?="));
    ++words;
    start = end == std::string::npos ? folded.size() : end + 3;
  }
  EXPECT_GT(words, 3);
}

TEST(MailMessage, DotStuffingDoublesLeadingDotsAndEndsWithTheTerminator) {
  EXPECT_EQ(dot_stuffed("a\r\n.b\n..c\rd"), "a\r\n..b\r\n...c\r\nd\r\n.\r\n");
  EXPECT_EQ(dot_stuffed(".\r\n"), "..\r\n.\r\n");
}

TEST(MailMessage, ComposedBodiesAreBase64LinesWithinTheLimit) {
  Message message{{"", "a@example.test"}, {"", "b@example.test"}, "S", std::string(500, 'x'), ""};
  auto text = compose(message, std::chrono::system_clock::now());
  EXPECT_NE(text.find("Content-Type: text/plain; charset=utf-8"), std::string::npos);
  EXPECT_EQ(text.find("multipart"), std::string::npos);
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find("\r\n", start);
    ASSERT_NE(end, std::string::npos) << "every line ends with CRLF";
    EXPECT_LE(end - start, 78u);
    start = end + 2;
  }
}

TEST(MailMessage, ExtraHeadersAreWrittenUnlessTheyWouldBreakALine) {
  Message message{{"", "a@example.test"},
                  {"", "b@example.test"},
                  "S",
                  "text",
                  "",
                  {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                   {"X-Injected", "a\r\nBcc: eve@example.test"},
                   {"X-Bad\nName", "b"}}};
  auto text = compose(message, std::chrono::system_clock::now());
  EXPECT_NE(
      text.find("\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"),
      std::string::npos);
  EXPECT_EQ(text.find("X-Injected"), std::string::npos);
  EXPECT_EQ(text.find("Bcc"), std::string::npos);
  EXPECT_EQ(text.find("X-Bad"), std::string::npos);
  // Before the body: the headers end at the first empty line.
  EXPECT_LT(text.find("traceparent"), text.find("\r\n\r\n"));
}

TEST(MailTemplates, ValuesAreEscapedInHtmlOnlyAndSubjectsStayOneLine) {
  Templates templates;
  auto rendered =
      templates.render("invitation", {{"inviter_name", "Eve <script>\r\nBcc: x"},
                                      {"org_name", "A&B"},
                                      {"app_name", "Acme"},
                                      {"link", "https://app.test/invitations#token=t"}});
  EXPECT_EQ(rendered.subject.find('\n'), std::string::npos);
  EXPECT_NE(rendered.subject.find("Eve <script>"), std::string::npos);
  EXPECT_NE(rendered.text.find("Eve <script>"), std::string::npos);
  EXPECT_EQ(rendered.html.find("<script>"), std::string::npos);
  EXPECT_NE(rendered.html.find("Eve &lt;script&gt;"), std::string::npos);
  EXPECT_NE(rendered.html.find("A&amp;B"), std::string::npos);
  EXPECT_NE(rendered.html.find("href=\"https://app.test/invitations#token=t\""), std::string::npos);
  EXPECT_EQ(rendered.text.find("{{"), std::string::npos);
}

TEST(MailTemplates, AnOperatorsDirectoryReplacesTemplatesAndTyposFailAtLoad) {
  auto dir = fs::path(testing::make_temp_dir("/tmp/liftoff-templates-"));
  {
    std::ofstream(dir / "password_reset.txt")
        << "Subject: {{app_name}}: new password\n\nGo to {{link}}\n";
    std::ofstream(dir / "password_reset.html") << "<a href=\"{{link}}\">reset</a>";
  }
  auto loaded = Templates::load(dir);
  ASSERT_TRUE(loaded) << loaded.error().detail;
  auto rendered = loaded->render("password_reset", {{"app_name", "Acme"}, {"link", "L"}});
  EXPECT_EQ(rendered.subject, "Acme: new password");
  EXPECT_EQ(rendered.text, "Go to L\n");
  EXPECT_EQ(rendered.html, "<a href=\"L\">reset</a>");
  EXPECT_NE(loaded->render("verify_email", {}).html.find("Confirm"), std::string::npos);

  std::ofstream(dir / "invitation.html") << "{{org_nmae}}";
  auto typo = Templates::load(dir);
  ASSERT_FALSE(typo);
  EXPECT_NE(typo.error().detail.find("unknown placeholder {{org_nmae}}"), std::string::npos);
  EXPECT_NE(typo.error().detail.find("invitation.html"), std::string::npos);

  fs::remove(dir / "invitation.html");
  std::ofstream(dir / "verify_email.txt") << "no subject line\n";
  auto no_subject = Templates::load(dir);
  ASSERT_FALSE(no_subject);
  EXPECT_NE(no_subject.error().detail.find("Subject"), std::string::npos);
  fs::remove_all(dir);
  EXPECT_FALSE(Templates::load(dir / "missing"));
}

}  // namespace
}  // namespace liftoff::mail
