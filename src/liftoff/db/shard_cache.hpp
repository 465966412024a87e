#pragma once
// Every process's copy of the shard directory (org -> the shard of its tenant-plane data,
// docs/decisions/0021-tenant-shards.md). It follows the session channel (OrgChanges): an org's
// move NOTIFYs "org:<id>", which evicts its entry. It is trusted only while the channel is heard:
// otherwise a move could be missed, so every lookup then reads the directory.
//
// A read of the directory races with an eviction: the read may have seen the org before its move
// and finish after the notification. The generation counter settles it: an entry is kept only when
// no eviction happened since its read started.
//
// Thread-safe.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "liftoff/db/org_changes.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::db {

class ShardCache final : public OrgChanges {
 public:
  // Beyond `capacity` entries the cache is emptied (a rare, cheap reset: entries are refilled from
  // the directory as orgs are served).
  explicit ShardCache(std::size_t capacity) : capacity_(capacity) {}

  // The org's shard (an index into Database::shards()), when cached and trusted.
  [[nodiscard]] std::optional<std::size_t> find(const Uuid& org) const;
  // Taken before reading the directory, passed to store() with what it read.
  [[nodiscard]] std::uint64_t generation() const;
  // Keeps `shard` for `org`, unless an eviction happened since `generation` or the channel is not
  // heard.
  void store(const Uuid& org, std::size_t shard, std::uint64_t generation);
  [[nodiscard]] std::size_t size() const;

  void stale(const Uuid& org) override;
  void stale_all() override;
  void listening(bool heard) override;

 private:
  std::size_t capacity_;
  mutable std::mutex mutex_;
  bool trusted_ = false;
  std::uint64_t generation_ = 0;
  std::unordered_map<Uuid, std::size_t, UuidHash> shards_;
};

}  // namespace liftoff::db
