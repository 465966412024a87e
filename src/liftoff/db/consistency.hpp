#pragma once
// Read-your-writes across replicas (docs/decisions/0010-read-your-writes.md). A write's position is
// the primary's write-ahead log position (LSN) once it committed; a replica may serve a read that
// must reflect it only when it has replayed that far. A request carries what it must reflect in its
// Consistency: the client's token (the Liftoff-Consistency header it echoes), what this node knows
// its credential last wrote (RecentWrites), and what the request itself wrote; Database routes by
// it and records each write's position in it.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace liftoff::db {

// A position in the primary's write-ahead log, as PostgreSQL's pg_lsn ("16/B374D848"). 0: none.
struct Lsn {
  std::uint64_t value = 0;
  auto operator<=>(const Lsn&) const = default;
  [[nodiscard]] explicit operator bool() const { return value != 0; }
  // The pg_lsn text form: two hexadecimal numbers of at most 8 digits, "/" between them.
  [[nodiscard]] static std::optional<Lsn> parse(std::string_view text);
  [[nodiscard]] std::string to_string() const;
};

// What one request (or unit of work) has to read back, and what it wrote. Touched only by the
// coroutines of its request, one at a time.
struct Consistency {
  Lsn read_after;  // reads must reflect the primary's log up to here
  Lsn written;     // where the request's last write left the log (0: it wrote nothing)
  // The database node the request's reads went to first: its later reads go there too (or to the
  // primary), so they never see an older state than its earlier ones. -1: none yet.
  int pinned_node = -1;

  void wrote(Lsn at) {
    written = std::max(written, at);
    read_after = std::max(read_after, at);
  }
};

// Where each recent writer (by a key: a hash of its credential) left the log, on this node, so that
// a client that does not echo the token still reads its writes on the node that took them. Entries
// older than `keep` are dropped, and at most `capacity` are kept (beyond it the oldest go first:
// their clients then rely on the token alone). Thread-safe.
class RecentWrites {
 public:
  RecentWrites(std::chrono::milliseconds keep, std::size_t capacity)
      : keep_(keep), capacity_per_shard_(std::max<std::size_t>(capacity / kShards, 1)) {}
  void wrote(std::uint64_t key, Lsn at);
  [[nodiscard]] Lsn last_write(std::uint64_t key);
  [[nodiscard]] std::size_t size();

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kShards = 16;
  struct Entry {
    Lsn at;
    Clock::time_point when;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::uint64_t, Entry> entries;
  };
  Shard& shard_of(std::uint64_t key) { return shards_[key % kShards]; }
  void trim(Shard& shard, Clock::time_point now);
  std::chrono::milliseconds keep_;
  std::size_t capacity_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace liftoff::db
