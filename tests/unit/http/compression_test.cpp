#include "liftoff/http/compression.hpp"

#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <string>

namespace liftoff::http {
namespace {

std::string gunzip(const std::string& packed) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);  // gzip only
  std::string out(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  z.avail_in = static_cast<uInt>(packed.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  return out;
}

std::string unzstd(const std::string& packed) {
  std::string out(1 << 20, '\0');
  auto n = ZSTD_decompress(out.data(), out.size(), packed.data(), packed.size());
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

TEST(Compression, ChoosesTheBestAcceptedEncoding) {
  EXPECT_EQ(choose_encoding(""), Encoding::identity);
  EXPECT_EQ(choose_encoding("gzip"), Encoding::gzip);
  EXPECT_EQ(choose_encoding("gzip, deflate, br, zstd"), Encoding::zstd);  // Chrome's
  EXPECT_EQ(choose_encoding("gzip, deflate"), Encoding::gzip);            // curl --compressed
  EXPECT_EQ(choose_encoding("GZip;q=1.0, zstd;q=0.5"), Encoding::gzip);
  EXPECT_EQ(choose_encoding("zstd;q=0, gzip;q=0.001"), Encoding::gzip);
  EXPECT_EQ(choose_encoding("gzip;q=0, zstd;q=0"), Encoding::identity);
  EXPECT_EQ(choose_encoding("*"), Encoding::zstd);
  EXPECT_EQ(choose_encoding("*;q=0.5, zstd;q=0"), Encoding::gzip);
  EXPECT_EQ(choose_encoding("br, deflate, identity"), Encoding::identity);
  EXPECT_EQ(choose_encoding("gzip;q=2, zstd;q=abc"), Encoding::identity);  // malformed: refused
  EXPECT_EQ(choose_encoding(" , ;q=1, gzip ; q=0.8 "), Encoding::gzip);
}

TEST(Compression, RoundTripsThroughGzipAndZstd) {
  std::string body = R"({"records":[)";
  for (int i = 0; i < 500; ++i) body += R"({"id":)" + std::to_string(i) + R"(,"title":"ticket"},)";
  body += "{}]}";
  auto gz = compress(Encoding::gzip, body);
  ASSERT_TRUE(gz);
  EXPECT_LT(gz->size(), body.size() / 4);
  EXPECT_EQ(gunzip(*gz), body);
  auto zs = compress(Encoding::zstd, body);
  ASSERT_TRUE(zs);
  EXPECT_LT(zs->size(), body.size() / 4);
  EXPECT_EQ(unzstd(*zs), body);
  EXPECT_FALSE(compress(Encoding::identity, body));
}

TEST(Compression, KnowsWhatIsWorthCompressing) {
  EXPECT_TRUE(compressible("application/json"));
  EXPECT_TRUE(compressible("application/problem+json; charset=utf-8"));
  EXPECT_TRUE(compressible("Application/X-NDJSON"));
  EXPECT_TRUE(compressible("text/javascript; charset=utf-8"));  // the operators' console
  EXPECT_TRUE(compressible("text/css; charset=utf-8"));
  EXPECT_TRUE(compressible("image/svg+xml"));
  EXPECT_FALSE(compressible("text/event-stream"));
  EXPECT_FALSE(compressible("image/png"));
  EXPECT_FALSE(compressible(""));
}

}  // namespace
}  // namespace liftoff::http
