#include <gtest/gtest.h>

#include "liftoff/db/error.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::db {
namespace {

TEST(Uuid, ParsesAndFormats) {
  auto u = Uuid::parse("0189c0de-1234-7abc-8def-0123456789ab");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->to_string(), "0189c0de-1234-7abc-8def-0123456789ab");
  EXPECT_FALSE(Uuid::parse("0189c0de12347abc8def0123456789ab"));
  EXPECT_FALSE(Uuid::parse("0189c0de-1234-7abc-8def-0123456789ag"));
  EXPECT_FALSE(Uuid::parse(""));
}

TEST(Params, EncodesBinaryBigEndianAndNulls) {
  Params p(std::int32_t{1}, std::int64_t{-2}, true, std::string("hi"),
           std::optional<std::int64_t>{});
  ASSERT_EQ(p.size(), 5);
  EXPECT_EQ(p.types()[0], oid::kInt4);
  EXPECT_EQ(p.types()[1], oid::kInt8);
  EXPECT_EQ(p.types()[4], oid::kInt8);
  auto values = p.values();
  EXPECT_EQ(std::string(values[0], 4), std::string("\0\0\0\1", 4));
  EXPECT_EQ(static_cast<unsigned char>(values[1][0]), 0xFF);
  EXPECT_EQ(p.lengths()[3], 2);
  EXPECT_EQ(values[4], nullptr);
  for (int i = 0; i < p.size(); ++i) EXPECT_EQ(p.formats()[i], 1);
}

TEST(SqlState, MapsToCanonicalCodes) {
  EXPECT_EQ(errc_for_sqlstate("23505"), Errc::conflict);
  EXPECT_EQ(errc_for_sqlstate("23503"), Errc::conflict);
  EXPECT_EQ(errc_for_sqlstate("23502"), Errc::validation_failed);
  EXPECT_EQ(errc_for_sqlstate("40001"), Errc::retryable);
  EXPECT_EQ(errc_for_sqlstate("40P01"), Errc::retryable);
  EXPECT_EQ(errc_for_sqlstate("LO001"), Errc::retryable);  // an org moving between shards
  EXPECT_EQ(errc_for_sqlstate("57014"), Errc::timeout);
  EXPECT_EQ(errc_for_sqlstate("22P02"), Errc::bad_request);
  EXPECT_EQ(errc_for_sqlstate("08006"), Errc::unavailable);
  EXPECT_EQ(errc_for_sqlstate("53300"), Errc::unavailable);
  EXPECT_EQ(errc_for_sqlstate("42601"), Errc::internal);
  EXPECT_EQ(errc_for_sqlstate(""), Errc::internal);
}

}  // namespace
}  // namespace liftoff::db
