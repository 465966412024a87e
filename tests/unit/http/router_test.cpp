#include "liftoff/http/router.hpp"

#include <gtest/gtest.h>

namespace liftoff::http {
namespace {

Handler noop() {
  return [](RequestContext&) -> boost::asio::awaitable<Response> { co_return Response{}; };
}

TEST(Router, MatchesLiteralAndParameters) {
  Router r;
  r.add(Verb::get, "/v1/orgs/{org}/members/{user}", noop());
  auto outcome = r.match(Verb::get, {"v1", "orgs", "o-1", "members", "u 2"});
  auto* m = std::get_if<Router::Match>(&outcome);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->route->pattern, "/v1/orgs/{org}/members/{user}");
  ASSERT_EQ(m->params.size(), 2u);
  EXPECT_EQ(m->params[0].first, "org");
  EXPECT_EQ(m->params[0].second, "o-1");
  EXPECT_EQ(m->params[1].second, "u 2");
}

TEST(Router, UnknownPathIsNotFound) {
  Router r;
  r.add(Verb::get, "/healthz", noop());
  EXPECT_TRUE(std::holds_alternative<Router::NotFound>(r.match(Verb::get, {"nope"})));
  EXPECT_TRUE(std::holds_alternative<Router::NotFound>(
      r.match(Verb::get, {"healthz", ""})));  // trailing slash
  EXPECT_TRUE(
      std::holds_alternative<Router::NotFound>(r.match(Verb::get, std::vector<std::string>{})));
}

TEST(Router, WrongMethodListsAllowedMethodsSorted) {
  Router r;
  r.add(Verb::post, "/v1/orgs", noop());
  r.add(Verb::get, "/v1/orgs", noop());
  auto outcome = r.match(Verb::delete_, {"v1", "orgs"});
  auto* mna = std::get_if<Router::MethodNotAllowed>(&outcome);
  ASSERT_NE(mna, nullptr);
  EXPECT_EQ(mna->route->allow, "GET, HEAD, OPTIONS, POST");
}

// A preflight for a method the route does not serve still needs the route's parameters: an org's
// own CORS origins are found by the {org} of the path.
TEST(Router, WrongMethodKeepsTheRouteAndItsParameters) {
  Router r;
  r.add(Verb::get, "/v1/orgs/{org}", noop());
  auto outcome = r.match(Verb::options, {"v1", "orgs", "o-1"});
  auto* mna = std::get_if<Router::MethodNotAllowed>(&outcome);
  ASSERT_NE(mna, nullptr);
  EXPECT_EQ(mna->route->pattern, "/v1/orgs/{org}");
  ASSERT_EQ(mna->params.size(), 1u);
  EXPECT_EQ(mna->params[0].first, "org");
  EXPECT_EQ(mna->params[0].second, "o-1");
}

TEST(Router, OptionsIsTheServersNotARoutes) {
  Router r;
  EXPECT_THROW(r.add(Verb::options, "/v1/orgs", noop()), std::invalid_argument);
}

TEST(Router, HeadIsServedByGet) {
  Router r;
  r.add(Verb::get, "/healthz", noop());
  EXPECT_TRUE(std::holds_alternative<Router::Match>(r.match(Verb::head, {"healthz"})));
}

TEST(Router, LiteralSegmentBeatsParameter) {
  Router r;
  r.add(Verb::get, "/v1/orgs/{org}", noop());
  r.add(Verb::get, "/v1/orgs/mine", noop());
  auto outcome = r.match(Verb::get, {"v1", "orgs", "mine"});
  ASSERT_TRUE(std::holds_alternative<Router::Match>(outcome));
  EXPECT_EQ(std::get<Router::Match>(outcome).route->pattern, "/v1/orgs/mine");
  auto other = r.match(Verb::get, {"v1", "orgs", "o1"});
  EXPECT_EQ(std::get<Router::Match>(other).route->pattern, "/v1/orgs/{org}");
}

TEST(Router, EmptyParameterDoesNotMatch) {
  Router r;
  r.add(Verb::get, "/v1/orgs/{org}", noop());
  EXPECT_TRUE(std::holds_alternative<Router::NotFound>(r.match(Verb::get, {"v1", "orgs", ""})));
}

TEST(Router, RejectsMalformedAndDuplicateRoutes) {
  Router r;
  EXPECT_THROW(r.add(Verb::get, "healthz", noop()), std::invalid_argument);
  EXPECT_THROW(r.add(Verb::get, "/a//b", noop()), std::invalid_argument);
  EXPECT_THROW(r.add(Verb::get, "/a/{b", noop()), std::invalid_argument);
  r.add(Verb::get, "/a/{id}", noop());
  EXPECT_THROW(r.add(Verb::get, "/a/{id}", noop()), std::invalid_argument);
  EXPECT_THROW(r.add(Verb::post, "/a/{other}", noop()),
               std::invalid_argument);  // same shape, other name
}

}  // namespace
}  // namespace liftoff::http
