#include "liftoff/identity/roles.hpp"

#include <gtest/gtest.h>

namespace liftoff::identity {
namespace {

TEST(Roles, ParseAndPrintRoundTrip) {
  for (auto role : {Role::viewer, Role::member, Role::admin, Role::owner}) {
    EXPECT_EQ(parse_role(to_string(role)), role);
  }
  EXPECT_FALSE(parse_role("Owner"));
  EXPECT_FALSE(parse_role(""));
  EXPECT_FALSE(parse_role("superuser"));
}

// The matrix as docs/api.md states it.
TEST(Roles, PermissionMatrix) {
  struct Row {
    Action action;
    bool viewer, member, admin, owner;
  };
  const Row matrix[] = {
      {Action::org_read, true, true, true, true},
      {Action::records_read, true, true, true, true},
      {Action::records_write, false, true, true, true},
      {Action::org_update, false, false, true, true},
      {Action::members_manage, false, false, true, true},
      {Action::invitations_manage, false, false, true, true},
      {Action::api_keys_manage, false, false, true, true},
      {Action::audit_read, false, false, true, true},
      {Action::schema_manage, false, false, true, true},
      {Action::jobs_manage, false, false, true, true},
      {Action::webhooks_manage, false, false, true, true},
      {Action::notifications_send, false, false, true, true},
      {Action::billing_read, false, false, true, true},
      {Action::org_delete, false, false, false, true},
      {Action::billing_manage, false, false, false, true},
  };
  for (const auto& row : matrix) {
    EXPECT_EQ(allows(Role::viewer, row.action), row.viewer);
    EXPECT_EQ(allows(Role::member, row.action), row.member);
    EXPECT_EQ(allows(Role::admin, row.action), row.admin);
    EXPECT_EQ(allows(Role::owner, row.action), row.owner);
  }
}

TEST(Roles, NobodyGrantsOrManagesAboveTheirOwnRole) {
  EXPECT_TRUE(may_grant(Role::admin, Role::admin));
  EXPECT_FALSE(may_grant(Role::admin, Role::owner));
  EXPECT_TRUE(may_grant(Role::owner, Role::owner));
  EXPECT_TRUE(may_manage(Role::admin, Role::member));
  EXPECT_TRUE(may_manage(Role::admin, Role::admin));
  EXPECT_FALSE(may_manage(Role::admin, Role::owner));
  EXPECT_FALSE(may_manage(Role::member, Role::viewer));  // members manage no one
  EXPECT_TRUE(may_manage(Role::owner, Role::owner));
}

}  // namespace
}  // namespace liftoff::identity
