// One link of the audit chain. (That every column of an event takes part in its canonical form, and
// that verification catches altered, removed and reordered events, is tested end to end against
// PostgreSQL, which builds the canonical form: tests/e2e/orgs_e2e.cpp.)
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "liftoff/audit/audit.hpp"
#include "liftoff/core/id.hpp"

namespace liftoff::audit {
namespace {

std::string hex(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0x0F];
  }
  return out;
}

TEST(AuditChain, ALinkIsTheSha256OfThePreviousHashThenTheEvent) {
  // SHA-256("abc"), the FIPS 180-2 test vector, split across the two parts.
  EXPECT_EQ(hex(chain_hash("a", "bc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(chain_hash("", "abc"), chain_hash("ab", "c"));
  EXPECT_NE(chain_hash(std::string(32, '\x01'), "x"), chain_hash(std::string(32, '\x02'), "x"));
}

// The API's form of an event is written directly (stored before/after spliced in, not parsed and
// serialized again): it must still be one valid JSON object with every field, text escaped.
TEST(AuditJson, AnEventIsOneJsonObjectWithItsTextEscaped) {
  Event e;
  e.id = db::Uuid{core::new_uuid_v7()};
  e.seq = 42;
  e.actor.type = "user";
  e.actor.ip = "127.0.0.1";
  e.actor.user_agent = "agent \"quoted\"\n\\ and \x01";
  e.actor.request_id = "r1";
  e.change.action = "record.updated";
  e.change.target_type = "tickets";
  e.change.target_id = "t-1";
  e.change.before = R"({"title": "old", "n": [1, 2]})";
  e.hash = std::string(32, '\xab');
  std::string out = "[";
  append_json(out, e);
  out += ']';
  auto parsed = boost::json::parse(out).as_array().at(0).as_object();
  EXPECT_EQ(parsed.at("id"), e.id.to_string().c_str());
  EXPECT_EQ(parsed.at("seq"), 42);
  EXPECT_EQ(parsed.at("actor").at("type"), "user");
  EXPECT_TRUE(parsed.at("actor").at("id").is_null());
  EXPECT_EQ(parsed.at("action"), "record.updated");
  EXPECT_EQ(parsed.at("target").at("type"), "tickets");
  EXPECT_EQ(parsed.at("target").at("id"), "t-1");
  EXPECT_EQ(parsed.at("before").at("title"), "old");
  EXPECT_EQ(parsed.at("before").at("n").as_array().size(), 2u);
  EXPECT_TRUE(parsed.at("after").is_null());
  EXPECT_EQ(parsed.at("ip"), "127.0.0.1");
  EXPECT_EQ(parsed.at("user_agent"), e.actor.user_agent.c_str());
  EXPECT_EQ(parsed.at("request_id"), "r1");
  EXPECT_EQ(parsed.at("hash"), hex(e.hash).c_str());
  EXPECT_TRUE(parsed.contains("occurred_at"));
  EXPECT_EQ(parsed.size(), 12u);
}

}  // namespace
}  // namespace liftoff::audit
