// In-app notifications against a real PostgreSQL, below HTTP: what membership changes tell whom,
// an org's notifications to its members (recipients checked), the feed (pages, unread count,
// marking read), gap-free seqs under concurrent deliveries, and pruning.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include "integration/services_support.hpp"
#include "liftoff/notify/notifications.hpp"
#include "support/async.hpp"

namespace liftoff::notify {
namespace {
namespace asio = boost::asio;
using identity::Org;
using identity::Principal;
using identity::Role;
using testing::block_on;
using Owner = testing::ServiceWorld::Owner;
using namespace std::chrono_literals;

class NotificationsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new testing::ServiceWorld("notifications_test");
    feed_ = new Notifications(*world_->database);
  }
  static void TearDownTestSuite() {
    delete feed_;
    delete world_;
  }

  static Owner owner(const std::string& email) {
    return block_on(world_->io, world_->new_owner(email));
  }
  static db::Scope in_org(const Principal& principal, const Org& org) {
    return testing::ServiceWorld::scope_of(principal, org.id);
  }
  static db::Scope control(const Principal& principal) {
    return testing::ServiceWorld::scope_of(principal, std::nullopt);
  }
  static void join(const Owner& owner, Owner& who, Role role) {
    auto joined = block_on(world_->io, world_->join(owner, who, role));
    ASSERT_TRUE(joined) << joined.error().for_log();
  }
  static Notifications::Page feed(const Principal& who, std::int32_t limit = 50,
                                  std::optional<std::int64_t> before = std::nullopt,
                                  bool unread_only = false) {
    return block_on(world_->io, [&]() -> asio::awaitable<Notifications::Page> {
      auto page = co_await feed_->list(control(who), who.user.id, before, limit, unread_only);
      EXPECT_TRUE(page) << (page ? "" : page.error().for_log());
      co_return page ? std::move(*page) : Notifications::Page{};
    }());
  }
  static Result<std::size_t> send(const Owner& from, const Draft& draft,
                                  const std::vector<db::Uuid>& users,
                                  const std::vector<Role>& roles) {
    return block_on(world_->io, [&]() -> asio::awaitable<Result<std::size_t>> {
      auto sent = co_await world_->orgs->send_notification(in_org(from.principal, from.org),
                                                           from.principal, draft, users, roles);
      co_return sent;
    }());
  }
  static Draft draft(std::string title) {
    return {"report.ready", std::move(title), "Your weekly report is ready.", "/reports/1",
            boost::json::object{{"report", 1}}};
  }

  static testing::ServiceWorld* world_;
  static Notifications* feed_;
};
testing::ServiceWorld* NotificationsTest::world_ = nullptr;
Notifications* NotificationsTest::feed_ = nullptr;

TEST_F(NotificationsTest, MembershipChangesTellTheMembersConcerned) {
  auto ann = owner("n-ann@example.com");
  auto bob = owner("n-bob@example.com");
  auto cat = owner("n-cat@example.com");
  join(ann, cat, Role::admin);
  join(ann, bob, Role::member);
  // Bob joining told the owner and the admin, not Bob.
  for (const auto* who : {&ann, &cat}) {
    auto page = feed(who->principal);
    ASSERT_EQ(page.items.size(), who == &ann ? 2u : 1u);  // Ann also saw Cat join
    const auto& joined = page.items.front();
    EXPECT_EQ(joined.kind, "liftoff.member.joined");
    EXPECT_EQ(joined.org_id, ann.org.id);
    auto data = boost::json::parse(joined.data).as_object();
    EXPECT_EQ(data.at("user_id").as_string(), bob.principal.user.id.to_string());
    EXPECT_EQ(data.at("role").as_string(), "member");
    EXPECT_EQ(page.head.unread, static_cast<std::int64_t>(page.items.size()));
  }
  EXPECT_TRUE(feed(bob.principal).items.empty());

  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto changed =
        co_await world_->orgs->change_role(in_org(cat.principal, ann.org), cat.principal,
                                           bob.principal.user.id.to_string(), Role::viewer);
    CO_ASSERT_TRUE(changed);
  }());
  auto bobs = feed(bob.principal);
  ASSERT_EQ(bobs.items.size(), 1u);
  EXPECT_EQ(bobs.items[0].kind, "liftoff.member.role_changed");
  EXPECT_EQ(bobs.items[0].seq, 1);
  auto data = boost::json::parse(bobs.items[0].data).as_object();
  EXPECT_EQ(data.at("previous_role").as_string(), "member");
  EXPECT_EQ(data.at("role").as_string(), "viewer");
  EXPECT_EQ(data.at("actor_id").as_string(), cat.principal.user.id.to_string());

  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto removed = co_await world_->orgs->remove_member(
        in_org(ann.principal, ann.org), ann.principal, bob.principal.user.id.to_string());
    CO_ASSERT_TRUE(removed);
    // Leaving tells nobody in their own feed.
    auto left = co_await world_->orgs->remove_member(in_org(cat.principal, ann.org), cat.principal,
                                                     cat.principal.user.id.to_string());
    CO_ASSERT_TRUE(left);
  }());
  bobs = feed(bob.principal);
  ASSERT_EQ(bobs.items.size(), 2u);
  EXPECT_EQ(bobs.items[0].kind, "liftoff.member.removed");
  EXPECT_EQ(bobs.items[0].seq, 2);
  EXPECT_EQ(bobs.head, (Head{2, 2}));
  EXPECT_EQ(feed(cat.principal).items.size(), 1u);
}

TEST_F(NotificationsTest, AnOrgNotifiesOnlyItsMembersAndOnlyAnAdminMay) {
  auto ann = owner("s-ann@example.com");
  auto bob = owner("s-bob@example.com");
  auto eve = owner("s-eve@example.com");  // of another org
  join(ann, bob, Role::member);
  auto sent = send(ann, draft("Report ready"), {bob.principal.user.id}, {});
  ASSERT_TRUE(sent) << sent.error().for_log();
  EXPECT_EQ(*sent, 1u);
  // By role: the owner (Ann) and the member (Bob), each once though Bob is also named.
  sent = send(ann, draft("To everyone"), {bob.principal.user.id}, {Role::owner, Role::member});
  ASSERT_TRUE(sent);
  EXPECT_EQ(*sent, 2u);
  auto bobs = feed(bob.principal);
  ASSERT_EQ(bobs.items.size(), 2u);
  EXPECT_EQ(bobs.items[0].title, "To everyone");
  EXPECT_EQ(bobs.items[1].title, "Report ready");
  EXPECT_EQ(bobs.items[1].link, "/reports/1");

  // Someone outside the org is refused, and nobody gets that notification.
  auto stranger = send(ann, draft("Leak"), {bob.principal.user.id, eve.principal.user.id}, {});
  ASSERT_FALSE(stranger);
  EXPECT_EQ(stranger.error().code, Errc::validation_failed);
  ASSERT_EQ(stranger.error().fields.size(), 1u);
  EXPECT_EQ(stranger.error().fields[0].field, "user_ids[1]");
  EXPECT_TRUE(feed(eve.principal).items.empty());
  EXPECT_EQ(feed(bob.principal).items.size(), 2u);

  auto nobody = send(ann, draft("Nobody"), {}, {});
  ASSERT_FALSE(nobody);
  EXPECT_EQ(nobody.error().code, Errc::validation_failed);
  auto reserved =
      send(ann, {"liftoff.member.removed", "Fake", "", std::nullopt, {}}, {}, {Role::member});
  ASSERT_FALSE(reserved);
  EXPECT_EQ(reserved.error().fields.at(0).field, "kind");
  // A member may not send; an outsider does not find the org.
  Owner bob_in_ann{bob.principal, ann.org};
  auto by_member = send(bob_in_ann, draft("Hi"), {}, {Role::owner});
  ASSERT_FALSE(by_member);
  EXPECT_EQ(by_member.error().code, Errc::permission_denied);
  Owner eve_in_ann{eve.principal, ann.org};
  auto by_outsider = send(eve_in_ann, draft("Hi"), {}, {Role::owner});
  ASSERT_FALSE(by_outsider);
  EXPECT_EQ(by_outsider.error().code, Errc::not_found);
}

TEST_F(NotificationsTest, TheFeedPagesCountsAndMarksOnlyItsOwnUsersNotifications) {
  auto ann = owner("f-ann@example.com");
  auto bob = owner("f-bob@example.com");
  for (int i = 1; i <= 5; ++i)
    ASSERT_TRUE(send(ann, draft("n" + std::to_string(i)), {}, {Role::owner}));
  ASSERT_TRUE(send(bob, draft("bob's"), {}, {Role::owner}));
  auto first = feed(ann.principal, 2);
  ASSERT_EQ(first.items.size(), 2u);
  EXPECT_EQ(first.items[0].seq, 5);
  EXPECT_EQ(first.items[1].seq, 4);
  EXPECT_EQ(first.head, (Head{5, 5}));
  auto rest = feed(ann.principal, 50, first.items.back().seq);
  ASSERT_EQ(rest.items.size(), 3u);
  EXPECT_EQ(rest.items[0].seq, 3);
  EXPECT_EQ(rest.items[2].seq, 1);

  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto scope = control(ann.principal);
    const auto& me = ann.principal.user.id;
    auto marked = co_await feed_->mark_read(scope, me, first.items[0].id);
    CO_ASSERT_TRUE(marked && *marked);
    EXPECT_EQ(**marked, (Head{5, 4}));
    auto again = co_await feed_->mark_read(scope, me, first.items[0].id);  // no change
    CO_ASSERT_TRUE(again && *again);
    EXPECT_EQ(**again, (Head{5, 4}));
    // Bob's notification is not Ann's to mark, and stays unread.
    auto bobs = co_await feed_->list(control(bob.principal), bob.principal.user.id, {}, 10, false);
    CO_ASSERT_TRUE(bobs && bobs->items.size() == 1u);
    auto foreign = co_await feed_->mark_read(scope, me, bobs->items[0].id);
    CO_ASSERT_TRUE(foreign);
    EXPECT_FALSE(*foreign);
    auto bob_head = co_await feed_->head(control(bob.principal), bob.principal.user.id);
    CO_ASSERT_TRUE(bob_head);
    EXPECT_EQ(*bob_head, (Head{1, 1}));
    // Up to seq 3: 4 stays unread (5 was read already).
    auto upto = co_await feed_->mark_all_read(scope, me, 3);
    CO_ASSERT_TRUE(upto);
    EXPECT_EQ(upto->marked, 3);
    EXPECT_EQ(upto->head, (Head{5, 1}));
    auto unread = co_await feed_->list(scope, me, {}, 10, true);
    CO_ASSERT_TRUE(unread && unread->items.size() == 1u);
    EXPECT_EQ(unread->items[0].seq, 4);
    auto all = co_await feed_->mark_all_read(scope, me, std::nullopt);
    CO_ASSERT_TRUE(all);
    EXPECT_EQ(all->marked, 1);
    EXPECT_EQ(all->head, (Head{5, 0}));
    // A stream catching up after seq 3 reads 4 and 5, oldest first.
    auto after = co_await feed_->after(scope, me, 3, 10);
    CO_ASSERT_TRUE(after && after->items.size() == 2u);
    EXPECT_EQ(after->items[0].seq, 4);
    EXPECT_TRUE(after->items[0].read_at.has_value());
  }());
}

TEST_F(NotificationsTest, ConcurrentDeliveriesNumberAFeedWithoutGaps) {
  auto ann = owner("c-ann@example.com");
  constexpr int kSends = 24;
  int done = 0;
  auto one = [&](int i) -> asio::awaitable<void> {
    auto d = draft("c" + std::to_string(i));
    const std::vector<db::Uuid> nobody;
    const std::vector<Role> owners{Role::owner};
    auto sent = co_await world_->orgs->send_notification(in_org(ann.principal, ann.org),
                                                         ann.principal, d, nobody, owners);
    EXPECT_TRUE(sent) << (sent ? "" : sent.error().for_log());
    ++done;
  };
  auto all = [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    for (int i = 0; i < kSends; ++i) asio::co_spawn(executor, one(i), asio::detached);
    asio::steady_timer timer(executor);
    while (done < kSends) {
      timer.expires_after(10ms);
      co_await timer.async_wait(asio::use_awaitable);
    }
  };
  block_on(world_->io, all());
  auto page = feed(ann.principal, 100);
  ASSERT_EQ(page.items.size(), static_cast<std::size_t>(kSends));
  for (int i = 0; i < kSends; ++i) EXPECT_EQ(page.items[i].seq, kSends - i);
  EXPECT_EQ(page.head, (Head{kSends, kSends}));
}

TEST_F(NotificationsTest, PruningKeepsTheCountsAndTheSeqs) {
  auto ann = owner("p-ann@example.com");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(send(ann, draft("old"), {}, {Role::owner}));
  block_on(world_->io, [&]() -> asio::awaitable<void> {
    auto scope = control(ann.principal);
    const auto& me = ann.principal.user.id;
    auto read = co_await feed_->mark_all_read(scope, me, 1);
    CO_ASSERT_TRUE(read);
    // Nothing is a day old yet.
    auto kept = co_await feed_->prune(scope, std::chrono::hours(24), 1000);
    CO_ASSERT_TRUE(kept);
    auto head = co_await feed_->head(scope, me);
    CO_ASSERT_TRUE(head);
    EXPECT_EQ(*head, (Head{3, 2}));
    auto pruned = co_await feed_->prune(scope, 0s, 100'000);
    CO_ASSERT_TRUE(pruned);
    EXPECT_GE(*pruned, 3u);
    head = co_await feed_->head(scope, me);
    CO_ASSERT_TRUE(head);
    EXPECT_EQ(*head, (Head{3, 0}));
  }());
  ASSERT_TRUE(send(ann, draft("new"), {}, {Role::owner}));
  auto page = feed(ann.principal);
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].seq, 4);
  EXPECT_EQ(page.head, (Head{4, 1}));
}

}  // namespace
}  // namespace liftoff::notify
