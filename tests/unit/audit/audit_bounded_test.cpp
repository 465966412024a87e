// audit::bounded_value: what an audit event keeps of a large before/after value.
#include <gtest/gtest.h>
#include <sodium.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <string>

#include "liftoff/audit/audit.hpp"

namespace liftoff::audit {
namespace {
namespace json = boost::json;

std::string sha256_hex(const std::string& text) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
  return hex;
}

// A record in its API form with one large and two small fields.
json::object large_record(std::size_t blob_bytes) {
  return {{"id", "0190a3c4-0000-7000-8000-000000000001"},
          {"version", 3},
          {"created_at", "2026-12-02T10:00:00Z"},
          {"updated_at", "2026-12-02T10:00:01Z"},
          {"data",
           {{"title", "quarterly report"},
            {"amount", 42},
            {"blob", {{"payload", std::string(blob_bytes, 'x')}}}}}};
}

TEST(AuditBoundedValue, AValueWithinTheLimitIsKeptAsItIs) {
  auto text = json::serialize(large_record(1000));
  EXPECT_EQ(bounded_value(text, text.size()), text);
  EXPECT_EQ(bounded_value(text, 64 * 1024), text);
}

TEST(AuditBoundedValue, TheLargestPartIsCutWithItsSizeAndDigestAndTheRestKept) {
  auto record = large_record(1 << 20);
  auto payload = json::serialize(record.at("data").at("blob").at("payload"));
  auto bounded = bounded_value(json::serialize(record), 64 * 1024);
  ASSERT_LE(bounded.size(), 64u * 1024);
  auto kept = json::parse(bounded).as_object();
  EXPECT_EQ(kept.at("id"), record.at("id"));
  EXPECT_EQ(kept.at("version"), record.at("version"));
  const auto& data = kept.at("data").as_object();
  EXPECT_EQ(data.at("title"), "quarterly report");
  EXPECT_EQ(data.at("amount"), 42);
  // The innermost large part is what was cut: its container and siblings stay.
  const auto& cut = data.at("blob").at("payload").at("$cut").as_object();
  EXPECT_EQ(cut.at("bytes").to_number<std::size_t>(), payload.size());
  EXPECT_EQ(cut.at("sha256").as_string(), sha256_hex(payload));
}

TEST(AuditBoundedValue, ManySmallPartsAreCutTogetherByTheirContainer) {
  json::array many;
  for (int i = 0; i < 20000; ++i) many.push_back(i);
  json::object record{{"id", "r1"}, {"data", {{"list", many}, {"name", "kept"}}}};
  auto bounded = bounded_value(json::serialize(record), 4096);
  ASSERT_LE(bounded.size(), 4096u);
  auto kept = json::parse(bounded).as_object();
  EXPECT_EQ(kept.at("id"), "r1");
  EXPECT_EQ(kept.at("data").at("name"), "kept");
  EXPECT_TRUE(kept.at("data").at("list").as_object().contains("$cut"));
}

TEST(AuditBoundedValue, LargestPartsGoFirstAndOnlyAsManyAsNeeded) {
  json::object data;
  for (int i = 0; i < 8; ++i) data["f" + std::to_string(i)] = std::string(1000 * (i + 1), 'a');
  json::object record{{"id", "r1"}, {"data", data}};
  auto whole = json::serialize(record);
  // Room for all but the two largest fields (7,000 and 8,000 bytes).
  auto bounded = bounded_value(whole, whole.size() - 14000);
  auto kept = json::parse(bounded).at("data").as_object();
  EXPECT_TRUE(kept.at("f7").is_object());
  EXPECT_TRUE(kept.at("f6").is_object());
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(kept.at("f" + std::to_string(i)).is_string()) << i;
}

TEST(AuditBoundedValue, ATinyLimitStillKeepsTheRecordsIdentity) {
  auto bounded = bounded_value(json::serialize(large_record(100000)), 1);
  auto kept = json::parse(bounded).as_object();
  EXPECT_EQ(kept.at("id"), "0190a3c4-0000-7000-8000-000000000001");
  EXPECT_EQ(kept.at("version"), 3);
  EXPECT_LT(bounded.size(), 1024u);
}

TEST(AuditBoundedValue, TextThatIsNotJsonBecomesOneMarker) {
  std::string text(5000, '{');
  auto kept = json::parse(bounded_value(text, 100)).as_object();
  EXPECT_TRUE(kept.contains("$cut"));
}

}  // namespace
}  // namespace liftoff::audit
