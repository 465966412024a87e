#pragma once
// Latencies in microseconds, counted in log-linear buckets: exact below 128 µs, then 64 buckets
// per power of two (at most 1/64, about 1.6%, between a value and its bucket's bound). Fixed size,
// no allocation while recording; histograms of several threads merge by adding.
#include <array>
#include <cstdint>

namespace liftoff::load {

class Histogram {
 public:
  void record(std::uint64_t micros);
  void merge(const Histogram& other);

  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] std::uint64_t max() const { return max_; }
  [[nodiscard]] double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }
  // The smallest bucket bound at or below which `fraction` (0..1] of the values lie; 0 when
  // empty. Never below the true quantile, at most one bucket (1.6%) above it; max() caps it.
  [[nodiscard]] std::uint64_t quantile(double fraction) const;

  static constexpr std::size_t kBuckets = 128 + 64 * 31;
  [[nodiscard]] static std::size_t bucket_of(std::uint64_t micros);
  // The largest value that falls in bucket `index`.
  [[nodiscard]] static std::uint64_t upper_bound(std::size_t index);

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace liftoff::load
