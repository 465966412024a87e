#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>
#include <boost/json/parse.hpp>

#include "liftoff/webhooks/address.hpp"
#include "liftoff/webhooks/secret_box.hpp"
#include "liftoff/webhooks/service.hpp"
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

TEST(WebhookSecretBox, SealedSecretsOpenOnlyUnderTheirKey) {
  auto box = SecretBox::from_base64(SecretBox::generate_key());
  ASSERT_TRUE(box);
  auto secret = generate_secret();
  auto sealed = box->seal(secret);
  EXPECT_EQ(sealed.find(secret), std::string::npos);  // not stored in the clear
  EXPECT_NE(box->seal(secret), sealed);               // a new nonce each time
  EXPECT_EQ(box->open(sealed), secret);
  auto other = SecretBox::from_base64(SecretBox::generate_key());
  ASSERT_TRUE(other);
  EXPECT_FALSE(other->open(sealed));
  auto altered = sealed;
  altered.back() = static_cast<char>(altered.back() ^ 1);
  EXPECT_FALSE(box->open(altered));
  EXPECT_FALSE(box->open(sealed.substr(0, 10)));
  EXPECT_FALSE(box->open(""));
}

TEST(WebhookSecretBox, AKeyIsBase64OfExactly32Bytes) {
  EXPECT_TRUE(SecretBox::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
  EXPECT_FALSE(SecretBox::from_base64(""));
  EXPECT_FALSE(SecretBox::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="));  // 31
  EXPECT_FALSE(SecretBox::from_base64("not base64 at all!"));
  auto error = SecretBox::from_base64("short").error();
  EXPECT_EQ(error.code, Errc::validation_failed);
}

TEST(WebhookEventTypes, PatternsMatchExactlyByPrefixOrAll) {
  EXPECT_TRUE(matches("*", "record.created"));
  EXPECT_TRUE(matches("record.*", "record.created"));
  EXPECT_TRUE(matches("record.created", "record.created"));
  EXPECT_FALSE(matches("record.created", "record.updated"));
  EXPECT_FALSE(matches("record.*", "records.created"));
  EXPECT_FALSE(matches("record.*", "record"));
  EXPECT_TRUE(matches("member.*", "member.role_changed"));
}

TEST(WebhookPayload, CarriesTheEventWithItsJsonValues) {
  DeliveryEvent event;
  event.id = *db::Uuid::parse("01900000-0000-7000-8000-000000000001");
  event.seq = 42;
  event.type = "record.updated";
  event.actor_type = "api_key";
  event.actor_id = db::Uuid::parse("01900000-0000-7000-8000-000000000002");
  event.target_type = "record";
  event.target_id = "r1";
  event.before = R"({"n":1})";
  event.after = R"({"n":2})";
  auto body = boost::json::parse(payload(event)).as_object();
  EXPECT_EQ(body.at("type"), "record.updated");
  EXPECT_TRUE(body.at("timestamp").is_string());
  const auto& data = body.at("data").as_object();
  EXPECT_EQ(data.at("id"), "01900000-0000-7000-8000-000000000001");
  EXPECT_EQ(data.at("seq"), 42);
  EXPECT_EQ(data.at("actor").at("type"), "api_key");
  EXPECT_EQ(data.at("target").at("id"), "r1");
  EXPECT_EQ(data.at("before").at("n"), 1);
  EXPECT_EQ(data.at("after").at("n"), 2);
  event.before.reset();
  event.actor_id.reset();
  auto created = boost::json::parse(payload(event)).as_object();
  EXPECT_TRUE(created.at("data").at("before").is_null());
  EXPECT_TRUE(created.at("data").at("actor").at("id").is_null());
}

}  // namespace
}  // namespace liftoff::webhooks
