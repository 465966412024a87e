#include "liftoff/core/text.hpp"

#include <gtest/gtest.h>

namespace liftoff::core {
namespace {

// RFC 4648 section 10's test vectors, in both alphabets (they differ only in padding here).
TEST(Base64, MatchesTheRfc4648TestVectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64(plain), encoded);
    EXPECT_EQ(from_base64(encoded), plain);
    std::string unpadded(encoded);
    unpadded.erase(unpadded.find_last_not_of('=') + 1);
    EXPECT_EQ(base64url(plain), unpadded);
    EXPECT_EQ(from_base64url(unpadded), plain);
  }
}

TEST(Base64, TheAlphabetsDifferAndMalformedTextIsRefused) {
  EXPECT_EQ(base64("\xfb\xff"), "+/8=");
  EXPECT_EQ(base64url("\xfb\xff"), "-_8");
  EXPECT_FALSE(from_base64("-_8="));
  EXPECT_FALSE(from_base64url("+/8"));
  EXPECT_FALSE(from_base64("Zm9v!"));
  EXPECT_FALSE(from_base64("Zg"));  // padding missing
}

}  // namespace
}  // namespace liftoff::core
