#include "liftoff/mail/templates.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "liftoff/core/text.hpp"

namespace liftoff::mail {
namespace fs = std::filesystem;

namespace {

// One wrapper for every built-in HTML body: a single centered column, inline styles only (mail
// clients drop <style>), and the link also as text for clients that hide buttons.
std::string html_page(std::string_view heading, std::string_view paragraph, std::string_view button,
                      std::string_view footer) {
  std::string out =
      "<!DOCTYPE html>\n<html><body style=\"margin:0;padding:24px;background:#f5f5f7;"
      "font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1d1d1f\">\n"
      "<div style=\"max-width:520px;margin:0 auto;background:#fff;border-radius:8px;"
      "padding:32px\">\n<h1 style=\"font-size:20px;margin:0 0 16px\">";
  out += heading;
  out += "</h1>\n<p style=\"line-height:1.5\">";
  out += paragraph;
  out +=
      "</p>\n<p><a href=\"{{link}}\" style=\"display:inline-block;background:#0b5fff;"
      "color:#fff;text-decoration:none;padding:10px 18px;border-radius:6px\">";
  out += button;
  out +=
      "</a></p>\n<p style=\"font-size:13px;color:#6e6e73;line-height:1.5\">Or open this link: "
      "<a href=\"{{link}}\">{{link}}</a><br>";
  out += footer;
  out += "</p>\n</div>\n</body></html>\n";
  return out;
}

std::map<std::string, Template, std::less<>> builtins() {
  std::map<std::string, Template, std::less<>> out;
  out["verify_email"] = Template{
      "Confirm your email address for {{app_name}}",
      "Hello {{user_name}},\n\n"
      "Please confirm that {{email}} is your email address for {{app_name}} by opening this "
      "link:\n\n{{link}}\n\n"
      "The link works once and expires in {{expires}}. If you did not sign up for {{app_name}}, "
      "ignore this email.\n",
      html_page("Confirm your email address",
                "Hello {{user_name}}, please confirm that {{email}} is your email address for "
                "{{app_name}}.",
                "Confirm email address",
                "The link works once and expires in {{expires}}. If you did not sign up for "
                "{{app_name}}, ignore this email."),
      {"app_name", "app_url", "user_name", "email", "link", "expires"}};
  out["password_reset"] = Template{
      "Reset your {{app_name}} password",
      "Hello {{user_name}},\n\n"
      "Someone asked to reset the password of the {{app_name}} account {{email}}. To choose a "
      "new password, open this link:\n\n{{link}}\n\n"
      "The link works once and expires in {{expires}}; resetting the password signs out every "
      "session. If you did not ask for this, ignore this email: your password stays as it is.\n",
      html_page("Reset your password",
                "Hello {{user_name}}, someone asked to reset the password of the {{app_name}} "
                "account {{email}}.",
                "Choose a new password",
                "The link works once and expires in {{expires}}; resetting the password signs out "
                "every session. If you did not ask for this, ignore this email."),
      {"app_name", "app_url", "user_name", "email", "link", "expires"}};
  out["invitation"] = Template{
      "{{inviter_name}} invited you to {{org_name}} on {{app_name}}",
      "Hello,\n\n"
      "{{inviter_name}} invited {{email}} to join {{org_name}} on {{app_name}} as {{role}}. To "
      "accept, open this link and sign in (or sign up) with this email address:\n\n{{link}}\n\n"
      "The invitation expires in {{expires}}. If you did not expect it, ignore this email.\n",
      html_page("Join {{org_name}} on {{app_name}}",
                "{{inviter_name}} invited {{email}} to join {{org_name}} as {{role}}. Sign in (or "
                "sign up) with this email address to accept.",
                "Accept the invitation",
                "The invitation expires in {{expires}}. If you did not expect it, ignore this "
                "email."),
      {"app_name", "app_url", "email", "link", "expires", "inviter_name", "org_name", "role"}};
  return out;
}

// Calls `each(name)` for every {{name}} in `text`, and `literal(piece)` for the text between.
template <typename Literal, typename Each>
void scan(std::string_view text, Literal literal, Each each) {
  while (!text.empty()) {
    auto open = text.find("{{");
    auto close = open == std::string_view::npos ? open : text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      literal(text);
      return;
    }
    literal(text.substr(0, open));
    auto name = text.substr(open + 2, close - open - 2);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    each(name);
    text.remove_prefix(close + 2);
  }
}

std::string fill(std::string_view text, const Values& values, bool html) {
  std::string out;
  out.reserve(text.size() + 256);
  scan(
      text, [&](std::string_view piece) { out += piece; },
      [&](std::string_view name) {
        auto found = values.find(name);
        if (found == values.end()) return;
        out += html ? core::escape_html(found->second) : found->second;
      });
  return out;
}

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Error invalid(const fs::path& path, const std::string& problem) {
  return make_error(Errc::validation_failed, "mail_templates: " + path.string() + ": " + problem);
}

// A problem with the placeholders `text` uses, or nullopt.
std::optional<std::string> unknown_placeholder(std::string_view text, const Template& known) {
  std::optional<std::string> problem;
  scan(
      text, [](std::string_view) {},
      [&](std::string_view name) {
        if (!problem && std::find(known.placeholders.begin(), known.placeholders.end(), name) ==
                            known.placeholders.end()) {
          problem = "unknown placeholder {{" + std::string(name) + "}}";
        }
      });
  return problem;
}

}  // namespace

Templates::Templates() : templates_(builtins()) {}

Result<Templates> Templates::load(const fs::path& dir) {
  Templates out;
  std::error_code error;
  if (!fs::is_directory(dir, error)) return invalid(dir, "is not a directory");
  for (auto& [name, known] : out.templates_) {
    auto text_path = dir / (name + ".txt");
    if (auto text = read_file(text_path)) {
      // "Subject: ..." then an empty line, then the body.
      auto end = text->find('\n');
      auto first = std::string_view(*text).substr(0, end);
      if (first.ends_with('\r')) first.remove_suffix(1);
      if (!first.starts_with("Subject: ") || end == std::string::npos)
        return invalid(text_path, "the first line must be \"Subject: ...\", then an empty line");
      auto body = text->substr(end + 1);
      if (body.starts_with("\r\n"))
        body.erase(0, 2);
      else if (body.starts_with('\n'))
        body.erase(0, 1);
      else
        return invalid(text_path, "an empty line must follow the subject");
      Template replaced = known;
      replaced.subject = std::string(first.substr(9));
      replaced.text = std::move(body);
      for (const auto* part : {&replaced.subject, &replaced.text}) {
        if (auto problem = unknown_placeholder(*part, known)) return invalid(text_path, *problem);
      }
      known = std::move(replaced);
    }
    auto html_path = dir / (name + ".html");
    if (auto html = read_file(html_path)) {
      if (auto problem = unknown_placeholder(*html, known)) return invalid(html_path, *problem);
      known.html = std::move(*html);
    }
  }
  return out;
}

Rendered Templates::render(std::string_view name, const Values& values) const {
  const auto& found = templates_.at(std::string(name));
  auto subject = fill(found.subject, values, false);
  std::replace_if(
      subject.begin(), subject.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
  return Rendered{std::move(subject), fill(found.text, values, false),
                  fill(found.html, values, true)};
}

}  // namespace liftoff::mail
