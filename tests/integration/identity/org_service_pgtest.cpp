// OrgService against a real PostgreSQL, below HTTP: organizations, the last-owner rule,
// invitations, API keys, soft deletion with restore and purge, and outsiders kept out.
#include <gtest/gtest.h>

#include "integration/services_support.hpp"
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
