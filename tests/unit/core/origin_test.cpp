// Web origins: what browsers send in Origin and what operators and org admins list.
#include "liftoff/core/origin.hpp"

#include <gtest/gtest.h>

namespace liftoff::core {
namespace {

TEST(Origin, CanonicalFormIsLowerCaseWithoutTheDefaultPort) {
  EXPECT_EQ(canonical_origin("https://app.example.com"), "https://app.example.com");
  EXPECT_EQ(canonical_origin("HTTPS://App.Example.COM:443"), "https://app.example.com");
  EXPECT_EQ(canonical_origin("http://127.0.0.1:80"), "http://127.0.0.1");
  EXPECT_EQ(canonical_origin("http://127.0.0.1:5173"), "http://127.0.0.1:5173");
  EXPECT_EQ(canonical_origin("https://app.example.com:80"), "https://app.example.com:80");
  EXPECT_EQ(canonical_origin("http://[::1]:3000"), "http://[::1]:3000");
  EXPECT_EQ(canonical_origin("chrome-extension://abcdef"), "chrome-extension://abcdef");
  EXPECT_EQ(canonical_origin("xn--bcher-kva.example"), std::nullopt);
  EXPECT_EQ(canonical_origin("https://xn--bcher-kva.example"), "https://xn--bcher-kva.example");
  EXPECT_EQ(canonical_origin("null"), "null");
}

TEST(Origin, AnythingButSchemeHostAndPortIsNotAnOrigin) {
  for (const char* bad : {"",
                          "app.example.com",
                          "://app.example.com",
                          "https://",
                          "https://app.example.com/",
                          "https://app.example.com/path",
                          "https://app.example.com?q",
                          "https://app.example.com#f",
                          "https://user@app.example.com",
                          "https://app example.com",
                          "https://app.example.com:",
                          "https://app.example.com:99999",
                          "https://app.example.com:-1",
                          "https://app.example.com:8a",
                          "1https://app.example.com",
                          "ht tp://a.example",
                          "https://[::1",
                          "https://[zz]",
                          "*",
                          "https://a.example, https://b.example",
                          "https://ä.example"}) {
    EXPECT_EQ(canonical_origin(bad), std::nullopt) << bad;
    EXPECT_FALSE(is_canonical_origin(bad)) << bad;
  }
  EXPECT_EQ(canonical_origin("https://" + std::string(kMaxOriginLength, 'a')), std::nullopt);
}

// What a request's Origin is checked with, without allocating, says the same as comparing with the
// canonical form.
TEST(Origin, IsCanonicalAgreesWithCanonicalOrigin) {
  for (const char* text :
       {"https://app.example.com", "HTTPS://app.example.com", "https://App.example.com",
        "https://app.example.com:443", "http://app.example.com:443", "http://a.example:80",
        "http://a.example:8080", "http://[::1]", "http://[::1]:80", "null", "Null",
        "https://a.b/"}) {
    auto canonical = canonical_origin(text);
    EXPECT_EQ(is_canonical_origin(text), canonical && *canonical == text) << text;
  }
}

}  // namespace
}  // namespace liftoff::core
