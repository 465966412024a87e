#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include "liftoff/webhooks/address.hpp"
#include "liftoff/webhooks/signature.hpp"

namespace liftoff::webhooks {
namespace {

// The signing test vector every Standard Webhooks library checks (e.g. libraries/go/webhook_test.go
// of github.com/standard-webhooks/standard-webhooks).
TEST(WebhookSignature, MatchesTheStandardWebhooksTestVector) {
  auto key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key);
  EXPECT_EQ(key->size(), 24u);
  EXPECT_EQ(sign(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignature, ADifferentBodyIdOrTimeSignsDifferently) {
  auto key = *secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  auto base = sign(key, "msg_1", 1, "{}");
  EXPECT_NE(sign(key, "msg_2", 1, "{}"), base);
  EXPECT_NE(sign(key, "msg_1", 2, "{}"), base);
  EXPECT_NE(sign(key, "msg_1", 1, "{ }"), base);
}

TEST(WebhookSignature, NewSecretsAreDistinctAndReadBack) {
  auto first = generate_secret();
  auto second = generate_secret();
  EXPECT_NE(first, second);
  EXPECT_TRUE(first.starts_with("whsec_"));
  auto key = secret_key(first);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->size(), 32u);
}

TEST(WebhookSignature, MalformedSecretsAreRefused) {
  EXPECT_FALSE(secret_key(""));
  EXPECT_FALSE(secret_key("whsec_"));
  EXPECT_FALSE(secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));        // no prefix
  EXPECT_FALSE(secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!"));  // not base64
  EXPECT_FALSE(secret_key("whsec_c2hvcnQ="));                          // 5 bytes: too short
  EXPECT_FALSE(secret_key("whsec_" + std::string(100, 'A')));          // 75 bytes: too long
}

Refusal of(const char* text) {
  return classify(boost::asio::ip::make_address(text));
}

TEST(WebhookAddress, PublicAddressesPass) {
  for (const char* address : {"1.1.1.1", "8.8.8.8", "93.184.216.34", "172.32.0.1", "100.128.0.1",
                              "2606:4700:4700::1111", "2a00:1450:4007:80e::200e"})
    EXPECT_EQ(of(address), Refusal::none) << address;
}

TEST(WebhookAddress, InternalAddressesAreRefusedWithTheirKind) {
  EXPECT_EQ(of("127.0.0.1"), Refusal::loopback);
  EXPECT_EQ(of("127.8.9.10"), Refusal::loopback);
  EXPECT_EQ(of("::1"), Refusal::loopback);
  EXPECT_EQ(of("0.0.0.0"), Refusal::unspecified);
  EXPECT_EQ(of("::"), Refusal::unspecified);
  EXPECT_EQ(of("10.1.2.3"), Refusal::private_use);
  EXPECT_EQ(of("172.16.0.1"), Refusal::private_use);
  EXPECT_EQ(of("172.31.255.255"), Refusal::private_use);
  EXPECT_EQ(of("192.168.1.1"), Refusal::private_use);
  EXPECT_EQ(of("fd12:3456::1"), Refusal::private_use);
  EXPECT_EQ(of("169.254.169.254"), Refusal::link_local);  // cloud metadata
  EXPECT_EQ(of("fe80::1"), Refusal::link_local);
  EXPECT_EQ(of("100.64.0.1"), Refusal::shared);
  EXPECT_EQ(of("224.0.0.1"), Refusal::multicast);
  EXPECT_EQ(of("ff02::1"), Refusal::multicast);
  EXPECT_EQ(of("255.255.255.255"), Refusal::reserved);
  EXPECT_EQ(of("0.1.2.3"), Refusal::reserved);
  EXPECT_EQ(of("198.18.0.1"), Refusal::reserved);
  EXPECT_EQ(of("2001:db8::1"), Refusal::reserved);
  EXPECT_EQ(of("2002:7f00:1::1"), Refusal::reserved);
}

// IPv6 spellings of IPv4 addresses are judged by the IPv4 address they reach.
TEST(WebhookAddress, IPv4InsideIPv6IsJudgedAsIPv4) {
  EXPECT_EQ(of("::ffff:127.0.0.1"), Refusal::loopback);
  EXPECT_EQ(of("::ffff:169.254.169.254"), Refusal::link_local);
  EXPECT_EQ(of("::127.0.0.1"), Refusal::loopback);
  EXPECT_EQ(of("64:ff9b::10.0.0.1"), Refusal::private_use);
  EXPECT_EQ(of("::ffff:8.8.8.8"), Refusal::none);
  EXPECT_EQ(describe(of("::ffff:10.0.0.1")), "a private network address");
}

}  // namespace
}  // namespace liftoff::webhooks
