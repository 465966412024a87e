#pragma once
// Watches how much memory the process holds and says when it is above its high-water mark, so the
// server can refuse new heavy requests (503 + Retry-After) before the kernel's OOM killer ends the
// process and every tenant's requests with it. The figure is the allocator's own (jemalloc's
// stats.resident, when the process allocates with jemalloc) or else the process's resident set
// (/proc/self/statm). Shedding starts above the high-water mark and stops below 90% of it, so it
// does not flap.
//
// Thread-safety: shedding() and bytes() are lock-free reads, safe from any thread; a background
// thread samples every `interval` from construction to destruction.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string_view>
#include <thread>

namespace liftoff::core {

class Registry;
class Gauge;
class Counter;

class MemoryGuard {
 public:
  struct Options {
    std::size_t high_water = 0;  // bytes; 0: default_high_water()
    std::chrono::milliseconds interval{100};
  };
  MemoryGuard(Options options, Registry& metrics);
  ~MemoryGuard();
  MemoryGuard(const MemoryGuard&) = delete;
  MemoryGuard& operator=(const MemoryGuard&) = delete;

  [[nodiscard]] bool shedding() const noexcept { return shedding_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::size_t bytes() const noexcept {
    return bytes_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t high_water() const noexcept { return high_water_; }
  // A request refused for want of memory (counted in memory_shed_requests_total).
  void shed() const noexcept;

  // The process's memory now: jemalloc's resident bytes, or the resident set size.
  [[nodiscard]] static std::size_t sample() noexcept;
  // "jemalloc" or "rss": where sample() reads.
  [[nodiscard]] static std::string_view source() noexcept;
  // 80% of the memory the process may use: the cgroup's memory.max when set, else the machine's.
  [[nodiscard]] static std::size_t default_high_water();

 private:
  void run();

  std::size_t high_water_;
  std::chrono::milliseconds interval_;
  Gauge& bytes_gauge_;
  Gauge& shedding_gauge_;
  Counter& shed_counter_;
  std::atomic<std::size_t> bytes_{0};
  std::atomic<bool> shedding_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace liftoff::core
