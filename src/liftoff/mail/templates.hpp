#pragma once
// The emails Liftoff sends, as templates: a subject, a plain-text body and an HTML body with
// {{placeholders}}. Built-in templates serve every email; an operator's directory (mail_templates)
// may replace any of them: <name>.txt holds "Subject: ..." on its first line, an empty line, then
// the text body; <name>.html the HTML body. Placeholders are checked when the templates are
// loaded, so a typo fails at startup, not in a user's inbox.
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "liftoff/core/error.hpp"

namespace liftoff::mail {

struct Template {
  std::string subject;
  std::string text;
  std::string html;
  std::vector<std::string> placeholders;  // the names it may use
};

struct Rendered {
  std::string subject;
  std::string text;
  std::string html;
};

using Values = std::map<std::string, std::string, std::less<>>;

class Templates {
 public:
  // The built-in templates: verify_email, password_reset, invitation.
  Templates();
  // The built-ins, with those `dir` holds instead; a validation error naming the file at fault.
  [[nodiscard]] static Result<Templates> load(const std::filesystem::path& dir);

  // Template `name` with `values` in place of its placeholders (escaped for HTML in the HTML
  // body; line breaks removed in the subject). A placeholder without a value renders empty.
  [[nodiscard]] Rendered render(std::string_view name, const Values& values) const;
  [[nodiscard]] bool has(std::string_view name) const { return templates_.contains(name); }

 private:
  std::map<std::string, Template, std::less<>> templates_;
};

}  // namespace liftoff::mail
