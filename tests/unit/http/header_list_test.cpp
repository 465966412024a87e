// The one tokenizer of comma-separated header lists (Accept-Encoding, Prefer).
#include "liftoff/http/header_list.hpp"

#include <gtest/gtest.h>

namespace liftoff::http {
namespace {

TEST(HeaderList, SplitsElementsAndParametersTrimmingWhitespace) {
  auto elements = list_elements(" gzip ;q=0.5 , zstd,\tbr ; q = 0 ; level");
  ASSERT_EQ(elements.size(), 3u);
  EXPECT_EQ(elements[0].value, "gzip");
  ASSERT_EQ(elements[0].parameters.size(), 1u);
  EXPECT_EQ(elements[0].parameters[0].name, "q");
  EXPECT_EQ(elements[0].parameters[0].value, "0.5");
  EXPECT_EQ(elements[1].value, "zstd");
  EXPECT_TRUE(elements[1].parameters.empty());
  EXPECT_EQ(elements[2].value, "br");
  ASSERT_EQ(elements[2].parameters.size(), 2u);
  EXPECT_EQ(elements[2].parameters[0].value, "0");
  EXPECT_EQ(elements[2].parameters[1].name, "level");
  EXPECT_EQ(elements[2].parameters[1].value, "");
}

TEST(HeaderList, SkipsEmptyElementsAndKeepsQuotedSeparators) {
  EXPECT_TRUE(list_elements("").empty());
  EXPECT_TRUE(list_elements(" , ,").empty());
  auto elements = list_elements(R"(a;note="x, y; z", b)");
  ASSERT_EQ(elements.size(), 2u);
  EXPECT_EQ(elements[0].value, "a");
  ASSERT_EQ(elements[0].parameters.size(), 1u);
  EXPECT_EQ(elements[0].parameters[0].value, R"("x, y; z")");
  EXPECT_EQ(elements[1].value, "b");
  // A preference with "=" in its value stays one element (RFC 7240).
  auto prefer = list_elements("respond-async, return=representation; foo");
  ASSERT_EQ(prefer.size(), 2u);
  EXPECT_EQ(prefer[1].value, "return=representation");
}

TEST(HeaderList, WeightsAreQValuesInThousandths) {
  EXPECT_EQ(weight(list_elements("gzip").front()), 1000);
  EXPECT_EQ(weight(list_elements("gzip;Q=0.25").front()), 250);
  EXPECT_EQ(qvalue_thousandths("1"), 1000);
  EXPECT_EQ(qvalue_thousandths("1.000"), 1000);
  EXPECT_EQ(qvalue_thousandths("0.001"), 1);
  EXPECT_EQ(qvalue_thousandths("1.5"), 0);     // above 1
  EXPECT_EQ(qvalue_thousandths("0.0001"), 0);  // four decimals
  EXPECT_EQ(qvalue_thousandths("2"), 0);
  EXPECT_EQ(qvalue_thousandths("0.x"), 0);
  EXPECT_EQ(qvalue_thousandths(""), 0);
}

}  // namespace
}  // namespace liftoff::http
