#include "liftoff/core/memory_guard.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "liftoff/core/metrics.hpp"

// jemalloc's control interface, when the process was linked with it (the release binary); null in
// builds that keep another allocator (the sanitizers').
extern "C" int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp,
                       std::size_t newlen) __attribute__((weak));

namespace liftoff::core {
namespace {
std::size_t jemalloc_resident() noexcept {
  std::uint64_t epoch = 1;
  std::size_t size = sizeof(epoch);
  if (mallctl("epoch", &epoch, &size, &epoch, size) != 0) return 0;  // refreshes the statistics
  std::size_t resident = 0;
  size = sizeof(resident);
  if (mallctl("stats.resident", &resident, &size, nullptr, 0) != 0) return 0;
  return resident;
}

std::size_t resident_set() noexcept {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0;
  std::size_t resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}
}  // namespace

std::size_t MemoryGuard::sample() noexcept {
  if (mallctl != nullptr) {
    if (auto resident = jemalloc_resident(); resident > 0) return resident;
  }
  return resident_set();
}

std::string_view MemoryGuard::source() noexcept {
  return mallctl != nullptr && jemalloc_resident() > 0 ? "jemalloc" : "rss";
}

std::size_t MemoryGuard::default_high_water() {
  auto machine = static_cast<std::size_t>(::sysconf(_SC_PHYS_PAGES)) *
                 static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::size_t limit = machine;
  std::ifstream cgroup("/sys/fs/cgroup/memory.max");  // cgroup v2; "max" when unlimited
  std::string text;
  if (cgroup >> text && text != "max") {
    try {
      limit = std::min<std::size_t>(limit, std::stoull(text));
    } catch (const std::exception&) {
    }
  }
  return limit / 10 * 8;
}

MemoryGuard::MemoryGuard(Options options, Registry& metrics)
    : high_water_(options.high_water ? options.high_water : default_high_water()),
      interval_(options.interval),
      bytes_gauge_(metrics.gauge("memory_watched_bytes",
                                 "The process's memory as the memory guard reads it")),
      shedding_gauge_(metrics.gauge("memory_shedding",
                                    "1 while heavy requests are refused for want of memory")),
      shed_counter_(metrics.counter("memory_shed_requests_total",
                                    "Heavy requests refused with 503 above memory_high_water")) {
  metrics.gauge("memory_high_water_bytes", "Memory above which heavy requests are refused")
      .set(static_cast<std::int64_t>(high_water_));
  bytes_ = sample();
  thread_ = std::thread([this] { run(); });
}

MemoryGuard::~MemoryGuard() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void MemoryGuard::shed() const noexcept {
  shed_counter_.inc();
}

void MemoryGuard::run() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
    auto now = sample();
    bytes_.store(now, std::memory_order_relaxed);
    bytes_gauge_.set(static_cast<std::int64_t>(now));
    bool was = shedding_.load(std::memory_order_relaxed);
    bool is = was ? now > high_water_ / 10 * 9 : now > high_water_;
    if (is == was) continue;
    shedding_.store(is, std::memory_order_relaxed);
    shedding_gauge_.set(is ? 1 : 0);
    if (is) {
      spdlog::warn(
          "memory: {} MiB held, over memory_high_water ({} MiB): refusing heavy requests "
          "with 503 until below {} MiB",
          now >> 20, high_water_ >> 20, high_water_ / 10 * 9 >> 20);
    } else {
      spdlog::info("memory: {} MiB held, below {} MiB: serving heavy requests again", now >> 20,
                   high_water_ / 10 * 9 >> 20);
    }
  }
}

}  // namespace liftoff::core
