#pragma once
// Collections (their schemas) remembered per process for reads, each for a TTL: a change on this
// process evicts its entry at once (forget), on others it shows within the TTL. Bounded by
// entries: a full cache drops one arbitrary entry to make room, so a process serving more
// collections than the bound still answers most lookups from memory. Thread-safe. Counted (with a
// registry): lookups by hit or miss, entries held (cache="schema").
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "liftoff/core/metrics.hpp"

namespace liftoff::records {

struct Collection;

class SchemaCache {
 public:
  using Clock = std::chrono::steady_clock;
  SchemaCache(std::chrono::milliseconds ttl, std::size_t capacity, core::CacheMetrics metrics = {})
      : ttl_(ttl), capacity_(capacity), metrics_(metrics) {}

  [[nodiscard]] bool enabled() const { return ttl_.count() > 0 && capacity_ > 0; }
  // The collection stored under `key` if it is still fresh at `now`; null otherwise.
  [[nodiscard]] std::shared_ptr<const Collection> find(const std::string& key,
                                                       Clock::time_point now);
  // The collection stored under `key`, however old: for a caller that checks it against the
  // database's row anyway (a record write, see RecordService::create_record).
  [[nodiscard]] std::shared_ptr<const Collection> find(const std::string& key);
  // Stores a collection read at `read_at` (fresh until read_at + ttl).
  void store(const std::string& key, std::shared_ptr<const Collection> collection,
             Clock::time_point read_at);
  void forget(const std::string& key);
  [[nodiscard]] std::size_t size();

 private:
  struct Entry {
    std::shared_ptr<const Collection> collection;
    Clock::time_point valid_until;
  };
  std::chrono::milliseconds ttl_;
  std::size_t capacity_;
  core::CacheMetrics metrics_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;  // org id + '/' + name
};

}  // namespace liftoff::records
