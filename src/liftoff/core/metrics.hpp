#pragma once
// Prometheus metrics. Series are created once (at route registration, pool creation, first use of a
// statement) and then updated lock-free with relaxed atomics from any thread; rendering takes the
// registry mutex only to walk the series list. Series live as long as the registry (stable
// addresses).
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace liftoff::core {

// Hot-path series are sharded by worker thread: each worker adds to its own cache line, so two
// cores never bounce one line between them per request; readers sum the shards.
inline constexpr std::size_t kMetricShards = 8;  // workers beyond this share shards (still correct)

namespace detail {
struct alignas(64) Cell {
  std::atomic<std::int64_t> value{0};
};
[[nodiscard]] std::size_t metric_shard() noexcept;
}  // namespace detail

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept {
    cells_[detail::metric_shard()].value.fetch_add(static_cast<std::int64_t>(n),
                                                   std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t value() const noexcept;

 private:
  std::array<detail::Cell, kMetricShards> cells_{};
};

class Gauge {
 public:
  void add(std::int64_t n) noexcept {
    cells_[detail::metric_shard()].value.fetch_add(n, std::memory_order_relaxed);
  }
  // For gauges written from one place only (e.g. build info): replaces the total.
  void set(std::int64_t n) noexcept;
  [[nodiscard]] std::int64_t value() const noexcept;

 private:
  std::array<detail::Cell, kMetricShards> cells_{};
};

// Latency histogram with fixed bucket bounds in seconds (Prometheus `le`).
class Histogram {
 public:
  static constexpr std::array<double, 14> kLatencyBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

  void observe(std::chrono::nanoseconds d) noexcept;
  void observe_seconds(double seconds) noexcept;

  struct Snapshot {
    std::array<std::uint64_t, kLatencyBounds.size()> cumulative{};
    std::uint64_t count = 0;
    double sum_seconds = 0;
  };
  [[nodiscard]] Snapshot snapshot() const noexcept;

 private:
  struct alignas(64) Shard {
    std::array<std::atomic<std::uint64_t>, kLatencyBounds.size()> buckets{};  // non-cumulative
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_nanos{0};
  };
  std::array<Shard, kMetricShards> shards_{};
};

class Registry {
 public:
  // `labels` is the rendered label set without braces, e.g. route="/healthz",class="2xx".
  Counter& counter(const std::string& name, const std::string& help,
                   const std::string& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const std::string& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help,
                       const std::string& labels = {});

  // Prometheus text exposition format 0.0.4.
  [[nodiscard]] std::string render() const;
  // Families whose series are chosen when rendered (core::TenantTally): `collect` appends them,
  // after the registry's own, in the same format. It must outlive the registry's renders.
  void add_collector(std::function<void(std::string&)> collect);

 private:
  enum class Kind { counter, gauge, histogram };
  struct Series {
    std::string labels;
    Counter* counter = nullptr;
    Gauge* gauge = nullptr;
    Histogram* histogram = nullptr;
  };
  struct Family {
    std::string name;
    std::string help;
    Kind kind;
    std::vector<Series> series;
  };
  Family& family(const std::string& name, const std::string& help, Kind kind);
  // Finds or creates the series of one family; `slot` picks the member of Series that points to it.
  template <class T>
  T& series(const std::string& name, const std::string& help, const std::string& labels, Kind kind,
            std::deque<T>& storage, T* Series::*slot);
  Series* find(Family& family, const std::string& labels);

  mutable std::mutex mutex_;
  std::vector<std::function<void(std::string&)>> collectors_;
  std::deque<Family> families_;
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
};

// The series of one in-process cache: lookups by result and entries held, labelled with the cache's
// name (cache_lookups_total{cache,result}, cache_entries{cache}). Default-constructed, it counts
// nothing (a cache built without a registry, as in unit tests of other parts).
struct CacheMetrics {
  Counter* hits = nullptr;
  Counter* misses = nullptr;
  Gauge* entries = nullptr;

  [[nodiscard]] static CacheMetrics in(Registry& registry, std::string_view cache);
  void hit() const noexcept {
    if (hits) hits->inc();
  }
  void miss() const noexcept {
    if (misses) misses->inc();
  }
  void resized(std::int64_t by) const noexcept {
    if (entries) entries->add(by);
  }
};

// Escapes a label value per the exposition format.
[[nodiscard]] std::string label_value(std::string_view value);

}  // namespace liftoff::core
