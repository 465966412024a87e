#pragma once
// Response bodies of record lists, each valid for one state of its organization: the number of its
// committed audit events (audit::committed), which every record and schema change increases in its
// own transaction. A list request reads it (one primary-key lookup and a count of the org's
// unsealed events), and serves the stored body if it was made at
// that state; otherwise it runs the query and stores the result. That keeps read-your-writes exact
// on every process (the state is read from the database, not from a notification), at the price of
// one lookup on a miss. Thread-safe; bounded by bytes, least recently used out first. Counted (with
// a registry): lookups by hit or miss, entries held (cache="list").
#include <array>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "liftoff/core/metrics.hpp"

namespace liftoff::records {

class ListCache {
 public:
  explicit ListCache(std::size_t max_bytes, core::CacheMetrics metrics = {})
      : max_bytes_per_shard_(max_bytes / kShards), metrics_(metrics) {}

  [[nodiscard]] bool enabled() const { return max_bytes_per_shard_ > 0; }
  // The body stored for `key` at `state`, if any.
  [[nodiscard]] std::optional<std::string> find(const std::string& key, std::int64_t state);
  void store(const std::string& key, std::int64_t state, std::string body);

 private:
  static constexpr std::size_t kShards = 16;
  struct Entry {
    std::string key;
    std::int64_t head = 0;
    std::string body;
  };
  struct Shard {
    std::mutex mutex;
    std::list<Entry> entries;  // most recently used first
    std::unordered_map<std::string, std::list<Entry>::iterator> by_key;
    std::size_t bytes = 0;
  };
  Shard& shard_for(const std::string& key);
  std::size_t max_bytes_per_shard_;
  core::CacheMetrics metrics_;
  std::array<Shard, kShards> shards_;
};

}  // namespace liftoff::records
