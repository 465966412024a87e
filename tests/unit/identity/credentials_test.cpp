#include "liftoff/identity/credentials.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "liftoff/core/id.hpp"

namespace liftoff::identity {
namespace {

TEST(Email, NormalizesCaseAndSurroundingSpace) {
  EXPECT_EQ(normalize_email("  Ada.Lovelace@Example.COM "), "ada.lovelace@example.com");
  EXPECT_EQ(normalize_email("a+tag@sub.example.org"), "a+tag@sub.example.org");
}

TEST(Email, RejectsImplausibleAddresses) {
  for (const char* bad :
       {"", "plain", "@example.com", "a@", "a@b", "a@@example.com", "a@example..com",
        "a@.example.com", "a@example.com.", "a b@example.com", "a@exa mple.com", ".a@example.com",
        "a..b@example.com", "a\"b@example.com", "a@example.com\n", "a;b@example.com",
        "<a@example.com>"}) {
    EXPECT_FALSE(normalize_email(bad)) << bad;
  }
  EXPECT_FALSE(normalize_email(std::string(65, 'a') + "@example.com"));
  EXPECT_FALSE(normalize_email("a@" + std::string(260, 'b') + ".com"));
  EXPECT_FALSE(normalize_email("a\xff@example.com"));  // invalid UTF-8
}

TEST(Password, LengthIsCountedInCharactersNotBytes) {
  EXPECT_TRUE(password_problem("short"));
  EXPECT_FALSE(password_problem("twelve chars"));
  EXPECT_TRUE(password_problem("ééééééééééé"));    // 11 characters, 22 bytes
  EXPECT_FALSE(password_problem("éééééééééééé"));  // 12 characters
  EXPECT_TRUE(password_problem(std::string(1025, 'x')));
  EXPECT_FALSE(password_problem(std::string(1024, 'x')));
  EXPECT_TRUE(password_problem("valid length \xff\xfe"));  // not UTF-8
}

TEST(Password, CommonPasswordsAreRefusedCaseInsensitively) {
  EXPECT_TRUE(is_common_password("password1234"));
  EXPECT_TRUE(is_common_password("PassWord1234"));
  EXPECT_TRUE(password_problem("QWERTYUIOP123"));
  EXPECT_FALSE(is_common_password("a perfectly fine passphrase"));
  EXPECT_FALSE(
      is_common_password("# Passwords of 12 or more characters"));  // comments are not entries
}

TEST(SessionToken, Has256RandomBitsAndADistinctDigest) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto token = new_session_token();
    EXPECT_EQ(token.rfind("ls_", 0), 0u);
    EXPECT_EQ(token.size(), 3u + 43u);
    EXPECT_TRUE(seen.insert(token).second);
    EXPECT_EQ(token_digest(token).size(), 32u);
    EXPECT_EQ(token_digest(token), token_digest(token));
    EXPECT_NE(token_digest(token), token_digest(token + "x"));
  }
}

TEST(Ids, UuidV7IsVersionedAndTimeOrdered) {
  auto a = core::new_uuid_v7();
  auto b = core::new_uuid_v7();
  EXPECT_EQ(a[6] >> 4, 7);
  EXPECT_EQ(a[8] >> 6, 2);
  EXPECT_NE(a, b);
  // The first 48 bits are milliseconds: never decreasing.
  auto millis = [](const std::array<std::uint8_t, 16>& id) {
    std::uint64_t ms = 0;
    for (int i = 0; i < 6; ++i) ms = (ms << 8) | id[static_cast<std::size_t>(i)];
    return ms;
  };
  EXPECT_LE(millis(a), millis(b));
  // A thread's ids sort in the order it made them, within a millisecond too.
  std::vector<std::array<std::uint8_t, 16>> made;
  made.reserve(10'000);
  for (int i = 0; i < 10'000; ++i) made.push_back(core::new_uuid_v7());
  for (std::size_t i = 1; i < made.size(); ++i) {
    ASSERT_LT(made[i - 1], made[i]) << i;
    EXPECT_EQ(made[i][6] >> 4, 7);
    EXPECT_EQ(made[i][8] >> 6, 2);
  }
}

}  // namespace
}  // namespace liftoff::identity
