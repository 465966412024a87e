#include <gtest/gtest.h>

#include "liftoff/audit/audit.hpp"
#include "liftoff/core/id.hpp"

namespace liftoff::audit {
namespace {

Event sample() {
  Event e;
  e.org_id = db::Uuid{core::new_uuid_v7()};
  e.seq = 7;
  e.id = db::Uuid{core::new_uuid_v7()};
  e.occurred_at = db::Timestamp(std::chrono::microseconds(1'800'000'000'123'456));
  e.actor = {"user", db::Uuid{core::new_uuid_v7()}, "10.0.0.1", "curl/8", "req-1"};
  e.change = {"member.role_changed", "user", "u-1", R"({"role":"viewer"})", R"({"role":"member"})"};
  e.prev_hash = std::string(32, '\x01');
  return e;
}

TEST(AuditChain, HashIsDeterministicAndCoversEveryField) {
  auto e = sample();
  auto h = chain_hash(e);
  EXPECT_EQ(h.size(), 32u);
  EXPECT_EQ(chain_hash(e), h);
  std::vector<std::function<void(Event&)>> edits = {
      [](Event& x) { x.seq += 1; },
      [](Event& x) { x.occurred_at += std::chrono::microseconds(1); },
      [](Event& x) { x.actor.type = "api_key"; },
      [](Event& x) { x.actor.id.reset(); },
      [](Event& x) { x.actor.ip = "10.0.0.2"; },
      [](Event& x) { x.actor.user_agent = "curl/9"; },
      [](Event& x) { x.actor.request_id = "req-2"; },
      [](Event& x) { x.change.action = "member.removed"; },
      [](Event& x) { x.change.target_id = "u-2"; },
      [](Event& x) { x.change.before.reset(); },
      [](Event& x) { x.change.after = R"({"role":"admin"})"; },
      [](Event& x) { x.prev_hash[0] = '\x02'; },
  };
  for (std::size_t i = 0; i < edits.size(); ++i) {
    auto changed = sample();
    changed.org_id = e.org_id;
    changed.id = e.id;
    changed.actor.id = e.actor.id;
    ASSERT_EQ(chain_hash(changed), h);
    edits[i](changed);
    EXPECT_NE(chain_hash(changed), h) << "edit " << i;
  }
}

TEST(AuditChain, FieldsCannotBleedIntoEachOther) {
  auto a = sample(), b = a;
  a.change.target_type = "user";
  a.change.target_id = "x";
  b.change.target_type = "use";
  b.change.target_id = "rx";
  EXPECT_NE(chain_hash(a), chain_hash(b));
}

}  // namespace
}  // namespace liftoff::audit
