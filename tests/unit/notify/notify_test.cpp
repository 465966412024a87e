// In-app notifications without a database: what a draft may say, and how the hub rings the
// streams of a user (and only theirs) within its limits.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "liftoff/notify/hub.hpp"
#include "liftoff/notify/notifications.hpp"

namespace liftoff::notify {
namespace {

Draft good() {
  return {"invoice.paid", "Invoice #12 was paid", "Thanks!\nSee the receipt.",
          "https://app.example/i/12", boost::json::object{{"invoice", 12}}};
}

std::vector<std::string> bad_fields(const Draft& draft, bool system = false) {
  auto valid = validate(draft, system);
  std::vector<std::string> fields;
  if (!valid) {
    EXPECT_EQ(valid.error().code, Errc::validation_failed);
    for (const auto& f : valid.error().fields) fields.push_back(f.field);
  }
  return fields;
}

TEST(NotificationDraft, AcceptsWhatAnAppSendsAndNamesEachBadField) {
  EXPECT_TRUE(bad_fields(good()).empty());
  auto d = good();
  d.link = "/invoices/12?tab=receipt";
  d.body.clear();
  EXPECT_TRUE(bad_fields(d).empty());

  for (const auto* kind : {"", "Invoice", "9lives", "has space", "a/b"}) {
    d = good();
    d.kind = kind;
    EXPECT_EQ(bad_fields(d), std::vector<std::string>{"kind"}) << kind;
  }
  d = good();
  d.kind = std::string(65, 'a');
  EXPECT_EQ(bad_fields(d), std::vector<std::string>{"kind"});
  d = good();
  d.kind = "liftoff.member.removed";  // Liftoff's own, not an app's
  EXPECT_EQ(bad_fields(d), std::vector<std::string>{"kind"});
  EXPECT_TRUE(bad_fields(d, true).empty());

  d = good();
  d.title = "";
  EXPECT_EQ(bad_fields(d), std::vector<std::string>{"title"});
  d.title = "two\nlines";
  EXPECT_EQ(bad_fields(d), std::vector<std::string>{"title"});
  d.title = std::string(200, 'x');
  EXPECT_TRUE(bad_fields(d).empty());
  d.title = std::string(100, 'x');
  for (int i = 0; i < 100; ++i) d.title += "é";  // 200 characters, 300 bytes
  EXPECT_TRUE(bad_fields(d).empty());
  d.title += "x";
  EXPECT_EQ(bad_fields(d), std::vector<std::string>{"title"});

  d = good();
  d.body = std::string("bell\a");
  EXPECT_EQ(bad_fields(d), std::vector<std::string>{"body"});
  d.body = std::string(2001, 'b');
  EXPECT_EQ(bad_fields(d), std::vector<std::string>{"body"});

  // A link a client would run, or one leaving the site through "//host", is refused.
  for (const auto* link : {"javascript:alert(1)", "data:text/html,x", "//evil.example/x",
                           "https://", "ftp://x", "/a b", "https://x/\r\nSet-Cookie: a"}) {
    d = good();
    d.link = link;
    EXPECT_EQ(bad_fields(d), std::vector<std::string>{"link"}) << link;
  }
  d = good();
  d.data = boost::json::object{{"blob", std::string(9000, 'x')}};
  EXPECT_EQ(bad_fields(d), std::vector<std::string>{"data"});

  d = {"", "", std::string("\x01"), "javascript:x", boost::json::object{}};
  EXPECT_EQ(bad_fields(d), (std::vector<std::string>{"kind", "title", "body", "link"}));
}

struct Counted {
  std::shared_ptr<Bell> bell;
  int rings = 0;
};

TEST(NotificationHub, RingsTheUsersStreamsOnceAPostAndKeepsItsLimits) {
  boost::asio::io_context io;
  Hub hub({}, {/*max_streams=*/6, /*max_per_user=*/2, /*max_per_client=*/3});
  auto ann = db::Uuid::parse("018f0000-0000-7000-8000-000000000001").value();
  auto bob = db::Uuid::parse("018f0000-0000-7000-8000-000000000002").value();
  std::vector<std::unique_ptr<Counted>> streams;
  auto open = [&](const db::Uuid& user, std::string client) -> Result<Counted*> {
    auto counted = std::make_unique<Counted>();
    counted->bell = std::make_shared<Bell>(user, std::move(client), io.get_executor());
    auto* raw = counted.get();
    counted->bell->on_ring([raw] { ++raw->rings; });
    if (auto subscribed = hub.subscribe(counted->bell); !subscribed) return subscribed.error();
    streams.push_back(std::move(counted));
    return raw;
  };
  auto a1 = open(ann, "10.0.0.1");
  auto a2 = open(ann, "10.0.0.2");
  ASSERT_TRUE(a1 && a2);
  auto a3 = open(ann, "10.0.0.3");  // a third tab of Ann's
  ASSERT_FALSE(a3);
  EXPECT_EQ(a3.error().code, Errc::too_many_requests);
  auto b1 = open(bob, "10.0.0.1");
  ASSERT_TRUE(b1);

  hub.changed(ann.to_string());
  hub.changed(ann.to_string());  // before the posts ran: one ring each
  io.run();
  io.restart();
  EXPECT_EQ((*a1)->rings, 1);
  EXPECT_EQ((*a2)->rings, 1);
  EXPECT_EQ((*b1)->rings, 0);
  hub.changed("not a user id");
  hub.ring_all();
  io.run();
  io.restart();
  EXPECT_EQ((*a1)->rings, 2);
  EXPECT_EQ((*b1)->rings, 1);

  // Closed streams are not rung, and free their places.
  hub.unsubscribe((*a1)->bell);
  hub.changed(ann.to_string());
  io.run();
  io.restart();
  EXPECT_EQ((*a1)->rings, 2);
  EXPECT_EQ((*a2)->rings, 3);
  EXPECT_TRUE(open(ann, "10.0.0.4"));
  // Three from one address at most (Bob's and two of Cid's); six in the process.
  auto cid = db::Uuid::parse("018f0000-0000-7000-8000-000000000003").value();
  EXPECT_TRUE(open(cid, "10.0.0.1"));
  EXPECT_TRUE(open(cid, "10.0.0.1"));
  auto dan = db::Uuid::parse("018f0000-0000-7000-8000-000000000004").value();
  auto crowded = open(dan, "10.0.0.1");
  ASSERT_FALSE(crowded);
  EXPECT_EQ(crowded.error().code, Errc::too_many_requests);
  EXPECT_TRUE(open(dan, "10.0.0.9"));
  auto full = open(dan, "10.0.0.8");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, Errc::unavailable);
  for (auto& s : streams) hub.unsubscribe(s->bell);
}

}  // namespace
}  // namespace liftoff::notify
