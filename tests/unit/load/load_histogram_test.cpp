// liftoff-bench's latency histogram: bounded error, exact below 128 µs, merges.
#include <gtest/gtest.h>

#include <random>

#include "load/histogram.hpp"

namespace liftoff::load {
namespace {

TEST(LoadHistogram, QuantilesAreNeverBelowTheTruthAndAtMostOneBucketAbove) {
  Histogram h;
  std::vector<std::uint64_t> values;
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> latency(7.0, 1.2);  // around 1 ms, long tail
  for (int i = 0; i < 100'000; ++i) {
    auto v = static_cast<std::uint64_t>(latency(rng));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    auto truth = values[static_cast<std::size_t>(std::ceil(q * values.size())) - 1];
    auto got = h.quantile(q);
    EXPECT_GE(got, truth) << q;
    EXPECT_LE(static_cast<double>(got), truth * (1 + 1.0 / 64) + 1) << q;
  }
  EXPECT_EQ(h.quantile(1.0), values.back());
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.count(), values.size());
}

TEST(LoadHistogram, SmallValuesAreExactAndBucketsAreContiguous) {
  Histogram h;
  for (std::uint64_t v = 0; v < 128; ++v) h.record(v);
  EXPECT_EQ(h.quantile(0.5), 63u);
  for (std::size_t i = 1; i + 1 < Histogram::kBuckets; ++i) {
    // Every value belongs to exactly one bucket: bucket i ends where bucket i + 1 begins.
    EXPECT_EQ(Histogram::bucket_of(Histogram::upper_bound(i)), i);
    EXPECT_EQ(Histogram::bucket_of(Histogram::upper_bound(i) + 1), i + 1);
  }
  Histogram a, b;
  a.record(10);
  b.record(5000);
  a.merge(b);
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.max(), 5000u);
  EXPECT_EQ(Histogram().quantile(0.99), 0u);
}

}  // namespace
}  // namespace liftoff::load
