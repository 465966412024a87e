#include "load/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace liftoff::load {

std::size_t Histogram::bucket_of(std::uint64_t micros) {
  if (micros < 128) return micros;
  int shift = std::bit_width(micros) - 7;  // keeps the top 7 bits: 64..127
  if (shift > 31) return kBuckets - 1;     // beyond ~38 hours: the last bucket
  return 128 + static_cast<std::size_t>(shift - 1) * 64 + ((micros >> shift) - 64);
}

std::uint64_t Histogram::upper_bound(std::size_t index) {
  if (index < 128) return index;
  std::size_t i = index - 128;
  int shift = static_cast<int>(i / 64) + 1;
  std::uint64_t sub = i % 64 + 64;
  return ((sub + 1) << shift) - 1;
}

void Histogram::record(std::uint64_t micros) {
  ++counts_[bucket_of(micros)];
  ++count_;
  sum_ += micros;
  max_ = std::max(max_, micros);
}

void Histogram::merge(const Histogram& other) {
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

std::uint64_t Histogram::quantile(double fraction) const {
  if (count_ == 0) return 0;
  auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(fraction, 0.0, 1.0) * count_));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(upper_bound(i), max_);
  }
  return max_;
}

}  // namespace liftoff::load
