#include "liftoff/http/json_body.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/field.hpp>

namespace liftoff::http {
namespace {

Request json_request(std::string body, std::string content_type = "application/json") {
  Request r{Verb::post, "/x", 11};
  r.set(beast_http::field::content_type, content_type);
  r.body() = std::move(body);
  return r;
}

TEST(JsonBody, ParsesAnObject) {
  auto v = parse_json_body(json_request(R"({"name":"Ada","tags":["a","b"]})"));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->as_object().at("name").as_string(), "Ada");
}

TEST(JsonBody, AcceptsJsonMediaTypesWithParameters) {
  EXPECT_TRUE(parse_json_body(json_request("{}", "application/json; charset=utf-8")));
  EXPECT_TRUE(parse_json_body(json_request("{}", "Application/JSON")));
  EXPECT_TRUE(parse_json_body(json_request("{}", "application/merge-patch+json")));
}

TEST(JsonBody, WrongMediaTypeIs415) {
  auto v = parse_json_body(json_request("{}", "text/plain"));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, Errc::unsupported_media_type);
  EXPECT_EQ(parse_json_body(json_request("{}", "")).error().code, Errc::unsupported_media_type);
}

TEST(JsonBody, MalformedJsonIs400WithPosition) {
  auto v = parse_json_body(json_request(R"({"a": 1,})"));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, Errc::bad_request);
  EXPECT_NE(v.error().detail.find("at byte"), std::string::npos);
  EXPECT_EQ(parse_json_body(json_request(R"({"a":1} trailing)")).error().code, Errc::bad_request);
  EXPECT_EQ(parse_json_body(json_request(R"({"a":)")).error().code,
            Errc::bad_request);  // truncated
  EXPECT_EQ(parse_json_body(json_request("")).error().code, Errc::bad_request);
}

TEST(JsonBody, InvalidUtf8Is400) {
  auto v = parse_json_body(json_request("{\"name\":\"\xff\xfe\"}"));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, Errc::bad_request);
  EXPECT_FALSE(parse_json_body(
      json_request("{\"a\":\"\xed\xa0\x80\"}")));  // UTF-16 surrogate encoded as UTF-8
}

TEST(JsonBody, DepthAndStringLimits) {
  std::string deep(40, '[');
  deep += std::string(40, ']');
  auto v = parse_json_body(json_request(R"({"a":)" + deep + "}"));
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().detail.find("deeper"), std::string::npos);

  JsonLimits small;
  small.max_string_length = 8;
  EXPECT_FALSE(parse_json_body(json_request(R"({"name":"much too long a name"})"), small));
  EXPECT_FALSE(parse_json_body(json_request(R"({"a very long key indeed":1})"), small));
  EXPECT_TRUE(parse_json_body(json_request(R"({"name":"short"})"), small));
}

TEST(JsonBody, TopLevelMustBeAnObjectUnlessAllowed) {
  auto v = parse_json_body(json_request("[1,2]"));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, Errc::validation_failed);
  JsonLimits any;
  any.require_object = false;
  EXPECT_TRUE(parse_json_body(json_request("[1,2]"), any));
}

TEST(JsonBody, UnicodeAndMetacharactersSurviveIntact) {
  auto v = parse_json_body(
      json_request(R"({"name":"Robert'); DROP TABLE users;-- \u202e\u0000 名前"})"));
  ASSERT_TRUE(v);
  std::string name(v->as_object().at("name").as_string());
  EXPECT_EQ(name,
            std::string("Robert'); DROP TABLE users;-- \u202e") + std::string(1, '\0') + " 名前");
}

}  // namespace
}  // namespace liftoff::http
