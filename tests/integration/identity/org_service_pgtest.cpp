// OrgService against a real PostgreSQL, below HTTP: organizations, the last-owner rule,
// invitations, API keys, soft deletion with restore and purge, and outsiders kept out.
#include <gtest/gtest.h>

#include "integration/services_support.hpp"
#include "liftoff/audit/audit.hpp"
#include "liftoff/identity/credentials.hpp"
#include "support/async.hpp"

namespace liftoff::identity {
namespace {
namespace asio = boost::asio;
using testing::block_on;
using Owner = testing::ServiceWorld::Owner;

class OrgServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { world_ = new testing::ServiceWorld("org_service_test"); }
  static void TearDownTestSuite() { delete world_; }

  static Owner owner(const std::string& email) {
    return block_on(world_->io, world_->new_owner(email));
  }
  static db::Scope in_org(const Principal& principal, const Org& org) {
    return testing::ServiceWorld::scope_of(principal, org.id);
  }
  static db::Scope control(const Principal& principal) {
    return testing::ServiceWorld::scope_of(principal, std::nullopt);
  }
  // `who` joins `owner`'s org with `role` through an invitation.
  static void join(const Owner& owner, Owner& who, Role role) {
    auto joined = block_on(world_->io, world_->join(owner, who, role));
    ASSERT_TRUE(joined) << joined.error().for_log();
    EXPECT_EQ(joined->id, owner.org.id);
    EXPECT_EQ(joined->role, role);
  }

  static testing::ServiceWorld* world_;
};
testing::ServiceWorld* OrgServiceTest::world_ = nullptr;

TEST_F(OrgServiceTest, ACreatorOwnsTheOrganizationAndSeesItListed) {
  auto ann = owner("ann@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto listed = co_await world_->orgs->list(control(ann.principal), ann.principal);
    CO_ASSERT_TRUE(listed);
    CO_ASSERT_TRUE(listed->size() == 1u);
    EXPECT_EQ(listed->front().id, ann.org.id);
    EXPECT_EQ(listed->front().role, Role::owner);
    auto renamed = co_await world_->orgs->rename(in_org(ann.principal, ann.org), ann.principal,
                                                 "Ann's Company");
    CO_ASSERT_TRUE(renamed);
    auto got =
        co_await world_->orgs->get(in_org(ann.principal, ann.org), Access{ann.org.id, Role::owner});
    CO_ASSERT_TRUE(got);
    EXPECT_EQ(got->name, "Ann's Company");
  }());
}

TEST_F(OrgServiceTest, AnOutsiderFindsNoOrganizationAndAViewerMayNotManage) {
  auto ann = owner("ann2@example.com");
  auto eve = owner("eve@example.com");
  auto vic = owner("vic@example.com");
  join(ann, vic, Role::viewer);
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto outsider =
        co_await world_->orgs->rename(in_org(eve.principal, ann.org), eve.principal, "Mine now");
    CO_ASSERT_TRUE(!outsider);
    EXPECT_EQ(outsider.error().code, Errc::not_found);
    auto viewer = co_await world_->orgs->create_api_key(in_org(vic.principal, ann.org),
                                                        vic.principal, "ci", Role::viewer);
    CO_ASSERT_TRUE(!viewer);
    EXPECT_EQ(viewer.error().code, Errc::permission_denied);
  }());
}

TEST_F(OrgServiceTest, TheLastOwnerCanNeitherLeaveNorBeDemoted) {
  auto ann = owner("ann3@example.com");
  auto bob = owner("bob3@example.com");
  join(ann, bob, Role::admin);
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto& orgs = *world_->orgs;
    auto scope = in_org(ann.principal, ann.org);
    auto ann_id = ann.principal.user.id.to_string();
    auto demoted = co_await orgs.change_role(scope, ann.principal, ann_id, Role::admin);
    CO_ASSERT_TRUE(!demoted);
    EXPECT_EQ(demoted.error().code, Errc::conflict);
    auto left = co_await orgs.remove_member(scope, ann.principal, ann_id);
    CO_ASSERT_TRUE(!left);
    EXPECT_EQ(left.error().code, Errc::conflict);
    // With a second owner, the first may step down.
    auto promoted = co_await orgs.change_role(scope, ann.principal,
                                              bob.principal.user.id.to_string(), Role::owner);
    CO_ASSERT_TRUE(promoted);
    auto stepped_down = co_await orgs.change_role(scope, ann.principal, ann_id, Role::admin);
    CO_ASSERT_TRUE(stepped_down);
    EXPECT_EQ(stepped_down->role, Role::admin);
    auto members = co_await orgs.members(scope, Access{ann.org.id, Role::admin}, std::nullopt, 10);
    CO_ASSERT_TRUE(members);
    EXPECT_EQ(members->size(), 2u);
  }());
}

TEST_F(OrgServiceTest, AnInvitationIsUsedOnceByItsAddresseeAndARevokedOneIsGone) {
  auto ann = owner("ann4@example.com");
  auto bob = owner("bob4@example.com");
  auto eve = owner("eve4@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto& orgs = *world_->orgs;
    auto scope = in_org(ann.principal, ann.org);
    auto invitation = co_await orgs.invite(scope, ann.principal, "bob4@example.com", Role::member);
    CO_ASSERT_TRUE(invitation);
    auto pending = co_await orgs.invitations(scope, Access{ann.org.id, Role::owner});
    CO_ASSERT_TRUE(pending);
    EXPECT_EQ(pending->size(), 1u);
    auto again = co_await orgs.invite(scope, ann.principal, "bob4@example.com", Role::member);
    CO_ASSERT_TRUE(!again);
    EXPECT_EQ(again.error().code, Errc::conflict);  // one pending per address

    auto wrong_user =
        co_await orgs.accept_invitation(control(eve.principal), eve.principal, invitation->token);
    CO_ASSERT_TRUE(!wrong_user);
    EXPECT_EQ(wrong_user.error().code, Errc::permission_denied);
    auto accepted =
        co_await orgs.accept_invitation(control(bob.principal), bob.principal, invitation->token);
    CO_ASSERT_TRUE(accepted);
    EXPECT_EQ(accepted->role, Role::member);
    auto twice =
        co_await orgs.accept_invitation(control(bob.principal), bob.principal, invitation->token);
    CO_ASSERT_TRUE(!twice);
    EXPECT_EQ(twice.error().code, Errc::conflict);

    auto to_eve = co_await orgs.invite(scope, ann.principal, "eve4@example.com", Role::viewer);
    CO_ASSERT_TRUE(to_eve);
    auto revoked = co_await orgs.revoke_invitation(scope, ann.principal, to_eve->id.to_string());
    CO_ASSERT_TRUE(revoked);
    auto gone =
        co_await orgs.accept_invitation(control(eve.principal), eve.principal, to_eve->token);
    CO_ASSERT_TRUE(!gone);
    EXPECT_EQ(gone.error().code, Errc::gone);
  }());
}

TEST_F(OrgServiceTest, AnApiKeyIsShownOnceListedWithoutItsSecretAndRevokedForGood) {
  auto ann = owner("ann5@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto& orgs = *world_->orgs;
    auto scope = in_org(ann.principal, ann.org);
    auto owner_key = co_await orgs.create_api_key(scope, ann.principal, "root", Role::owner);
    CO_ASSERT_TRUE(!owner_key);
    EXPECT_EQ(owner_key.error().code, Errc::validation_failed);
    auto key = co_await orgs.create_api_key(scope, ann.principal, "ci", Role::member);
    CO_ASSERT_TRUE(key);
    EXPECT_FALSE(key->key.empty());
    auto keys = co_await orgs.api_keys(scope, Access{ann.org.id, Role::owner});
    CO_ASSERT_TRUE(keys);
    CO_ASSERT_TRUE(keys->size() == 1u);
    EXPECT_EQ(keys->front().id, key->id);
    EXPECT_TRUE(keys->front().key.empty());
    EXPECT_EQ(keys->front().role, Role::member);
    auto revoked = co_await orgs.revoke_api_key(scope, ann.principal, key->id.to_string());
    CO_ASSERT_TRUE(revoked);
    auto again = co_await orgs.revoke_api_key(scope, ann.principal, key->id.to_string());
    CO_ASSERT_TRUE(!again);
    EXPECT_EQ(again.error().code, Errc::not_found);
    auto none = co_await orgs.api_keys(scope, Access{ann.org.id, Role::owner});
    CO_ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
  }());
}

TEST_F(OrgServiceTest, ADeletedOrganizationIsRestorableUntilPurged) {
  auto ann = owner("ann6@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto& orgs = *world_->orgs;
    auto removed = co_await orgs.remove(in_org(ann.principal, ann.org), ann.principal);
    CO_ASSERT_TRUE(removed);
    EXPECT_TRUE(removed->deleted_at.has_value());
    auto listed = co_await orgs.list(control(ann.principal), ann.principal);
    CO_ASSERT_TRUE(listed);
    EXPECT_TRUE(listed->empty());
    auto restored =
        co_await orgs.restore(control(ann.principal), ann.principal, ann.org.id.to_string());
    CO_ASSERT_TRUE(restored);
    EXPECT_FALSE(restored->deleted_at.has_value());
    auto not_deleted =
        co_await orgs.restore(control(ann.principal), ann.principal, ann.org.id.to_string());
    CO_ASSERT_TRUE(!not_deleted);
    EXPECT_EQ(not_deleted.error().code, Errc::conflict);

    // With no grace period, a deletion is purged at once and cannot be restored.
    OrgService hasty(*world_->database, OrgOptions{std::chrono::seconds(0)});
    auto deleted = co_await hasty.remove(in_org(ann.principal, ann.org), ann.principal);
    CO_ASSERT_TRUE(deleted);
    auto purged = co_await hasty.purge_expired(100);
    CO_ASSERT_TRUE(purged);
    EXPECT_GE(*purged, 1u);
    auto late =
        co_await orgs.restore(control(ann.principal), ann.principal, ann.org.id.to_string());
    CO_ASSERT_TRUE(!late);
    EXPECT_EQ(late.error().code, Errc::not_found);
  }());
}

}  // namespace
}  // namespace liftoff::identity

namespace liftoff::identity {
namespace {

// Plans: seats held by members and pending invitations, owner-chosen self-serve plans, downgrades
// refused with what is over, the operator's Enterprise overrides, each change audited.
TEST_F(OrgServiceTest, SeatsOfTheFreePlanAreHeldByMembersAndPendingInvitations) {
  auto ann = owner("seats-ann@example.com");
  const auto seats = plans::default_plan().limits[plans::Limit::seats];
  std::vector<Owner> joined;
  for (std::int64_t i = 1; i < seats - 1; ++i) {
    joined.push_back(owner("seats-member" + std::to_string(i) + "@example.com"));
    join(ann, joined.back(), Role::member);
  }
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto scope = in_org(ann.principal, ann.org);
    // One seat left (the owner and seats - 2 members): one invitation takes it.
    auto last =
        co_await world_->orgs->invite(scope, ann.principal, "seats-last@example.com", Role::viewer);
    CO_ASSERT_TRUE(last);
    auto refused =
        co_await world_->orgs->invite(scope, ann.principal, "seats-over@example.com", Role::viewer);
    CO_ASSERT_TRUE(!refused);
    EXPECT_EQ(refused.error().code, Errc::payment_required);
    CO_ASSERT_TRUE(refused.error().limit.has_value());
    EXPECT_EQ(refused.error().limit->name, "seats");
    EXPECT_EQ(refused.error().limit->value, seats);
    EXPECT_EQ(refused.error().limit->plan, "free");
    EXPECT_EQ(refused.error().limit->lifted_by, "starter");

    auto state = co_await world_->orgs->plan(scope, Access{ann.org.id, Role::owner});
    CO_ASSERT_TRUE(state);
    EXPECT_EQ(state->plan->name, "free");
    EXPECT_EQ(state->holdings[plans::Limit::seats], seats - 1);
  }());
}

TEST_F(OrgServiceTest, AnInvitationMadeBeforeADowngradeCannotTakeASeatThePlanNoLongerHas) {
  auto ann = owner("shrink-ann@example.com");
  auto bob = owner("shrink-bob@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto scope = in_org(ann.principal, ann.org);
    auto system = db::Scope::background(db::Tenant::org(ann.org.id), std::chrono::seconds(10));
    // An operator's contract of 2 seats: the owner and one pending invitation fill it.
    auto set = co_await world_->orgs->set_plan(system, "enterprise", R"({"seats": 2})", false);
    CO_ASSERT_TRUE(set);
    EXPECT_EQ(set->limits[plans::Limit::seats], 2);
    auto invitation =
        co_await world_->orgs->invite(scope, ann.principal, bob.principal.user.email, Role::member);
    CO_ASSERT_TRUE(invitation);
    // The contract shrinks to one seat (forced: the operator knows); the invitation is refused.
    auto shrunk = co_await world_->orgs->set_plan(system, "enterprise", R"({"seats": 1})", true);
    CO_ASSERT_TRUE(shrunk);
    auto accepted = co_await world_->orgs->accept_invitation(
        testing::ServiceWorld::scope_of(bob.principal, std::nullopt), bob.principal,
        invitation->token);
    CO_ASSERT_TRUE(!accepted);
    EXPECT_EQ(accepted.error().code, Errc::payment_required);
    EXPECT_EQ(accepted.error().limit->plan, "enterprise");
    EXPECT_EQ(accepted.error().limit->lifted_by, "enterprise");
  }());
}

TEST_F(OrgServiceTest, AnOwnerChangesPlansAndADowngradeOverALimitIsRefusedNamingIt) {
  auto ann = owner("plan-ann@example.com");
  auto bob = owner("plan-bob@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto scope = in_org(ann.principal, ann.org);
    auto up = co_await world_->orgs->change_plan(scope, ann.principal, "starter");
    CO_ASSERT_TRUE(up);
    EXPECT_EQ(up->plan->name, "starter");
    EXPECT_EQ(up->limits[plans::Limit::seats], 100);
    // Enterprise is the operator's to set; unknown plans are a field error.
    auto enterprise = co_await world_->orgs->change_plan(scope, ann.principal, "enterprise");
    CO_ASSERT_TRUE(!enterprise);
    EXPECT_EQ(enterprise.error().code, Errc::permission_denied);
    auto unknown = co_await world_->orgs->change_plan(scope, ann.principal, "platinum");
    CO_ASSERT_TRUE(!unknown);
    EXPECT_EQ(unknown.error().code, Errc::validation_failed);
    EXPECT_EQ(unknown.error().fields.at(0).field, "plan");
  }());
  // Six members: more than free's five seats.
  std::vector<Owner> members;
  for (int i = 0; i < 5; ++i) {
    members.push_back(owner("plan-member" + std::to_string(i) + "@example.com"));
    join(ann, members.back(), Role::viewer);
  }
  join(ann, bob, Role::admin);
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto scope = in_org(ann.principal, ann.org);
    // An admin may read the plan but not change it.
    auto by_admin =
        co_await world_->orgs->change_plan(in_org(bob.principal, ann.org), bob.principal, "pro");
    CO_ASSERT_TRUE(!by_admin);
    EXPECT_EQ(by_admin.error().code, Errc::permission_denied);
    auto down = co_await world_->orgs->change_plan(scope, ann.principal, "free");
    CO_ASSERT_TRUE(!down);
    EXPECT_EQ(down.error().code, Errc::conflict);
    CO_ASSERT_TRUE(down.error().fields.size() == 1u);
    EXPECT_EQ(down.error().fields[0].field, "seats");
    EXPECT_EQ(down.error().fields[0].message, "7 in use; the plan allows 5");
    auto still = co_await world_->orgs->plan(scope, Access{ann.org.id, Role::owner});
    CO_ASSERT_TRUE(still);
    EXPECT_EQ(still->plan->name, "starter");

    // Every change is in the audit log, before and after.
    audit::Filter filter;
    filter.action = "org.plan_changed";
    auto sealed = co_await audit::seal_committed(*world_->database, scope);
    CO_ASSERT_TRUE(sealed);
    auto events = co_await audit::list(*world_->database, scope, filter);
    CO_ASSERT_TRUE(events);
    CO_ASSERT_TRUE(events->size() == 1u);
    EXPECT_EQ(events->front().change.before, R"({"plan":"free","limits":{}})");
    EXPECT_EQ(events->front().change.after, R"({"plan":"starter","limits":{}})");
  }());
}

TEST_F(OrgServiceTest, ACredentialLoadsItsOrgsPlanAndLimits) {
  auto ann = owner("limits-ann@example.com");
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto scope = in_org(ann.principal, ann.org);
    auto system = db::Scope::background(db::Tenant::org(ann.org.id), std::chrono::seconds(10));
    auto set = co_await world_->orgs->set_plan(system, "enterprise",
                                               R"({"api_requests_per_minute": 1000000})", false);
    CO_ASSERT_TRUE(set);
    auto key = co_await world_->orgs->create_api_key(scope, ann.principal, "ci", Role::member);
    CO_ASSERT_TRUE(key);
    auto live = co_await world_->identities->api_key_by_digest(control(ann.principal),
                                                               token_digest(key->key));
    CO_ASSERT_TRUE(live && *live);
    const auto& membership = (*live)->principal.memberships.at(0);
    EXPECT_EQ(membership.plan->name, "enterprise");
    EXPECT_EQ(membership.limits[plans::Limit::api_requests_per_minute], 1'000'000);
    EXPECT_EQ(membership.limits[plans::Limit::seats],
              plans::find_plan("enterprise")->limits[plans::Limit::seats]);
    auto access =
        OrgService::access((*live)->principal, ann.org.id.to_string(), Action::records_read);
    CO_ASSERT_TRUE(access);
    EXPECT_EQ(access->plan->name, "enterprise");
  }());
}

}  // namespace
}  // namespace liftoff::identity
