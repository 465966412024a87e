#pragma once
// What OrgService tells members in their notification feeds (notices.cpp). Each notice's data
// carries the org (org_id, org_name) and who acted (actor_id, actor_name), so that a client can
// word it itself from the kind.
#include "liftoff/identity/org_store.hpp"
#include "liftoff/identity/store.hpp"
#include "liftoff/notify/notifications.hpp"

namespace liftoff::identity {

// To the member whose role changed (liftoff.member.role_changed; data: previous_role, role).
[[nodiscard]] notify::Draft role_changed_notice(const Org& org, const Principal& principal,
                                                Role from, Role to);
// To the member removed by someone else (liftoff.member.removed).
[[nodiscard]] notify::Draft removed_notice(const Org& org, const Principal& principal);
// To the org's owners and admins when someone joins (liftoff.member.joined; data: user_id,
// email, role).
[[nodiscard]] notify::Draft joined_notice(const Org& org, const Principal& joiner, Role role);

}  // namespace liftoff::identity
