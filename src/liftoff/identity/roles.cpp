#include "liftoff/identity/roles.hpp"

#include <array>
#include <utility>

namespace liftoff::identity {
namespace {
constexpr std::array<std::pair<Role, std::string_view>, 4> kNames{{
    {Role::viewer, "viewer"},
    {Role::member, "member"},
    {Role::admin, "admin"},
    {Role::owner, "owner"},
}};
}  // namespace

std::string_view to_string(Role role) noexcept {
  for (const auto& [r, name] : kNames) {
    if (r == role) return name;
  }
  return "viewer";
}

std::optional<Role> parse_role(std::string_view text) noexcept {
  for (const auto& [r, name] : kNames) {
    if (name == text) return r;
  }
  return std::nullopt;
}

}  // namespace liftoff::identity
