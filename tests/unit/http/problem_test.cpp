#include "liftoff/http/problem.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace liftoff::http {
namespace {

TEST(Problem, CarriesTypeTitleStatusDetailAndTheRequestsIds) {
  auto res = problem_response(make_error(Errc::not_found, "no such org"),
                              {"req-1", "4bf92f3577b34da6a3ce929d0e0e4736"});
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_EQ(res[beast_http::field::content_type], "application/problem+json");
  auto body = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(body.at("type").as_string(), "urn:liftoff:problem:not-found");
  EXPECT_EQ(body.at("title").as_string(), "Not Found");
  EXPECT_EQ(body.at("status").as_int64(), 404);
  EXPECT_EQ(body.at("detail").as_string(), "no such org");
  EXPECT_EQ(body.at("request_id").as_string(), "req-1");
  EXPECT_EQ(body.at("trace_id").as_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(body.contains("errors"));
}

TEST(Problem, ValidationErrorsListFailingFields) {
  Error e{
      Errc::validation_failed, "invalid body", {{"email", "not an email"}, {"name", "required"}}};
  auto res = problem_response(e, {"r"});
  EXPECT_EQ(res.result_int(), 422u);
  auto errors = boost::json::parse(res.body()).as_object().at("errors").as_array();
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].as_object().at("field").as_string(), "email");
  EXPECT_EQ(errors[1].as_object().at("message").as_string(), "required");
}

TEST(Problem, UnavailableAndRateLimitedCarryRetryAfter) {
  EXPECT_EQ(
      problem_response(make_error(Errc::unavailable, "x"), {"r"})[beast_http::field::retry_after],
      "1");
  EXPECT_EQ(problem_response(make_error(Errc::too_many_requests, "x"),
                             {"r"})[beast_http::field::retry_after],
            "1");
  EXPECT_EQ(problem_response(make_error(Errc::not_found, "x"), {"r"})
                .count(beast_http::field::retry_after),
            0u);
}

TEST(Problem, EveryCodeHasAStableDistinctSlugAndAnErrorStatus) {
  std::set<std::string_view> slugs;
  for (int i = 0; i <= static_cast<int>(Errc::timeout); ++i) {
    const auto& meta = info(static_cast<Errc>(i));
    EXPECT_GE(meta.http_status, 400);
    EXPECT_LT(meta.http_status, 600);
    EXPECT_TRUE(slugs.insert(meta.slug).second) << meta.slug;
  }
}

TEST(Problem, InternalErrorsDoNotLeakTheirDetail) {
  auto res = problem_response(
      make_error(Errc::internal, "relation \"secret_table\" does not exist"), {"req-9"});
  EXPECT_EQ(res.result_int(), 500u);
  auto detail = std::string(boost::json::parse(res.body()).as_object().at("detail").as_string());
  EXPECT_EQ(detail.find("secret_table"), std::string::npos);
  EXPECT_NE(detail.find("req-9"), std::string::npos);
}

TEST(Problem, DetailIsEscapedJson) {
  auto res =
      problem_response(make_error(Errc::bad_request, "quote \" and \n newline and \x01"), {"r"});
  auto body = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(body.at("detail").as_string(), "quote \" and \n newline and \x01");
}

}  // namespace
}  // namespace liftoff::http
