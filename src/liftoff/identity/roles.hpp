#pragma once
// Roles and the permission matrix: the one place that says who may do what in an organization
// (docs/api.md renders the same table). Roles are ordered: each includes everything below it.
#include <optional>
#include <string_view>

namespace liftoff::identity {

enum class Role { viewer = 0, member = 1, admin = 2, owner = 3 };

[[nodiscard]] std::string_view to_string(Role role) noexcept;
[[nodiscard]] std::optional<Role> parse_role(std::string_view text) noexcept;

// Everything an organization's members and API keys can do, by the smallest role allowed to.
enum class Action {
  org_read,            // viewer: see the org and its members
  org_update,          // admin: rename
  org_delete,          // owner: delete (soft) and restore
  members_manage,      // admin: change roles, remove others (never above their own role)
  invitations_manage,  // admin: invite (never above their own role), list, revoke
  api_keys_manage,     // admin: create (never above their own role), list, revoke
  audit_read,          // admin: read and export the audit log
  records_read,        // viewer
  records_write,       // member
  schema_manage,       // admin: collections and their fields
  jobs_manage,         // admin: see the org's background jobs; retry, cancel or discard them
  webhooks_manage,     // admin: webhook endpoints, their secrets and deliveries
  notifications_send,  // admin: in-app notifications to the org's members
  billing_read,        // admin: the org's plan, limits, usage and invoices
  billing_manage,      // owner: change the org's plan
};

[[nodiscard]] constexpr Role minimum_role(Action action) noexcept {
  switch (action) {
    case Action::org_read:
    case Action::records_read:
      return Role::viewer;
    case Action::records_write:
      return Role::member;
    case Action::org_update:
    case Action::members_manage:
    case Action::invitations_manage:
    case Action::api_keys_manage:
    case Action::audit_read:
    case Action::schema_manage:
    case Action::jobs_manage:
    case Action::webhooks_manage:
    case Action::notifications_send:
    case Action::billing_read:
      return Role::admin;
    case Action::org_delete:
    case Action::billing_manage:
      return Role::owner;
  }
  return Role::owner;
}

[[nodiscard]] constexpr bool allows(Role role, Action action) noexcept {
  return role >= minimum_role(action);
}

// May `actor` give someone `granted` (invite, create a key, change a role to it)? Never above the
// actor's own role.
[[nodiscard]] constexpr bool may_grant(Role actor, Role granted) noexcept {
  return actor >= granted;
}

// May `actor` change or remove a member who holds `current`? Admins cannot touch owners.
[[nodiscard]] constexpr bool may_manage(Role actor, Role current) noexcept {
  return allows(actor, Action::members_manage) && actor >= current;
}

}  // namespace liftoff::identity
