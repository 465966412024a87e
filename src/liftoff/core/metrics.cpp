#include "liftoff/core/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <stdexcept>

#include "liftoff/core/worker.hpp"

namespace liftoff::core {

namespace detail {
std::size_t metric_shard() noexcept {
  return this_worker() % kMetricShards;
}
}  // namespace detail

std::uint64_t Counter::value() const noexcept {
  std::int64_t total = 0;
  for (const auto& c : cells_) total += c.value.load(std::memory_order_relaxed);
  return static_cast<std::uint64_t>(total);
}

void Gauge::set(std::int64_t n) noexcept {
  for (auto& c : cells_) c.value.store(0, std::memory_order_relaxed);
  cells_[0].value.store(n, std::memory_order_relaxed);
}

std::int64_t Gauge::value() const noexcept {
  std::int64_t total = 0;
  for (const auto& c : cells_) total += c.value.load(std::memory_order_relaxed);
  return total;
}

void Histogram::observe(std::chrono::nanoseconds d) noexcept {
  auto nanos = static_cast<std::uint64_t>(std::max<std::int64_t>(0, d.count()));
  double seconds = static_cast<double>(nanos) / 1e9;
  auto& shard = shards_[detail::metric_shard()];
  auto it = std::lower_bound(kLatencyBounds.begin(), kLatencyBounds.end(), seconds);
  if (it != kLatencyBounds.end()) {
    shard.buckets[static_cast<std::size_t>(it - kLatencyBounds.begin())].fetch_add(
        1, std::memory_order_relaxed);
  }
  shard.count.fetch_add(1, std::memory_order_relaxed);
  shard.sum_nanos.fetch_add(nanos, std::memory_order_relaxed);
}

void Histogram::observe_seconds(double seconds) noexcept {
  observe(std::chrono::nanoseconds(static_cast<std::int64_t>(seconds * 1e9)));
}

Histogram::Snapshot Histogram::snapshot() const noexcept {
  Snapshot s;
  std::uint64_t sum_nanos = 0;
  for (const auto& shard : shards_) {
    for (std::size_t i = 0; i < kLatencyBounds.size(); ++i) {
      s.cumulative[i] += shard.buckets[i].load(std::memory_order_relaxed);
    }
    s.count += shard.count.load(std::memory_order_relaxed);
    sum_nanos += shard.sum_nanos.load(std::memory_order_relaxed);
  }
  for (std::size_t i = 1; i < kLatencyBounds.size(); ++i) s.cumulative[i] += s.cumulative[i - 1];
  s.sum_seconds = static_cast<double>(sum_nanos) / 1e9;
  return s;
}

Registry::Family& Registry::family(const std::string& name, const std::string& help, Kind kind) {
  for (auto& f : families_) {
    if (f.name == name) {
      if (f.kind != kind) throw std::logic_error("metric " + name + " registered with two types");
      return f;
    }
  }
  families_.push_back(Family{name, help, kind, {}});
  return families_.back();
}

Registry::Series* Registry::find(Family& family, const std::string& labels) {
  for (auto& s : family.series) {
    if (s.labels == labels) return &s;
  }
  return nullptr;
}

template <class T>
T& Registry::series(const std::string& name, const std::string& help, const std::string& labels,
                    Kind kind, std::deque<T>& storage, T* Series::*slot) {
  std::lock_guard lock(mutex_);
  auto& f = family(name, help, kind);
  if (auto* s = find(f, labels)) return *(s->*slot);
  auto& created = storage.emplace_back();
  Series entry{labels};
  entry.*slot = &created;
  f.series.push_back(entry);
  return created;
}

Counter& Registry::counter(const std::string& name, const std::string& help,
                           const std::string& labels) {
  return series(name, help, labels, Kind::counter, counters_, &Series::counter);
}

Gauge& Registry::gauge(const std::string& name, const std::string& help,
                       const std::string& labels) {
  return series(name, help, labels, Kind::gauge, gauges_, &Series::gauge);
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               const std::string& labels) {
  return series(name, help, labels, Kind::histogram, histograms_, &Series::histogram);
}

std::string Registry::render() const {
  std::lock_guard lock(mutex_);
  fmt::memory_buffer out;
  auto braces = [](const std::string& labels) {
    return labels.empty() ? std::string{} : "{" + labels + "}";
  };
  for (const auto& f : families_) {
    static constexpr std::array<const char*, 3> kTypes = {"counter", "gauge", "histogram"};
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name,
                   kTypes[static_cast<std::size_t>(f.kind)]);
    for (const auto& s : f.series) {
      if (s.counter) {
        fmt::format_to(std::back_inserter(out), "{}{} {}\n", f.name, braces(s.labels),
                       s.counter->value());
      } else if (s.gauge) {
        fmt::format_to(std::back_inserter(out), "{}{} {}\n", f.name, braces(s.labels),
                       s.gauge->value());
      } else {
        auto snap = s.histogram->snapshot();
        std::string sep = s.labels.empty() ? "" : ",";
        for (std::size_t i = 0; i < Histogram::kLatencyBounds.size(); ++i) {
          fmt::format_to(std::back_inserter(out), "{}_bucket{{{}{}le=\"{}\"}} {}\n", f.name,
                         s.labels, sep, Histogram::kLatencyBounds[i], snap.cumulative[i]);
        }
        fmt::format_to(std::back_inserter(out), "{}_bucket{{{}{}le=\"+Inf\"}} {}\n", f.name,
                       s.labels, sep, snap.count);
        fmt::format_to(std::back_inserter(out), "{}_sum{} {}\n{}_count{} {}\n", f.name,
                       braces(s.labels), snap.sum_seconds, f.name, braces(s.labels), snap.count);
      }
    }
  }
  auto text = fmt::to_string(out);
  for (const auto& collect : collectors_) collect(text);
  return text;
}

void Registry::add_collector(std::function<void(std::string&)> collect) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collect));
}

CacheMetrics CacheMetrics::in(Registry& registry, std::string_view cache) {
  auto name = "cache=\"" + label_value(cache) + "\"";
  static const std::string kLookups = "cache_lookups_total";
  static const std::string kLookupsHelp = "In-process cache lookups by result";
  return {&registry.counter(kLookups, kLookupsHelp, name + ",result=\"hit\""),
          &registry.counter(kLookups, kLookupsHelp, name + ",result=\"miss\""),
          &registry.gauge("cache_entries", "Entries held by an in-process cache", name)};
}

std::string label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace liftoff::core
