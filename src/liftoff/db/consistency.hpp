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
#include <utility>
#include <vector>

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

// What one request (or unit of work) has to read back from one cluster (a shard's primary and its
// replicas), and what it wrote there.
struct ClusterConsistency {
  Lsn read_after;  // reads must reflect the cluster primary's log up to here
  Lsn written;     // where the request's last write left that log (0: it wrote nothing)
  // The node of the cluster the request's reads went to first: its later reads go there too (or to
  // the primary), so they never see an older state than its earlier ones. -1: none yet.
  int pinned_node = -1;

  void wrote(Lsn at) {
    written = std::max(written, at);
    read_after = std::max(read_after, at);
  }
};

// One request's ClusterConsistency for each cluster, by its index in Database::shards() (main is
// 0): positions in different clusters' logs cannot be compared. A request touches at most two
// (main's control plane and its org's shard). Touched only by the coroutines of its request, one
// at a time.
struct Consistency {
  explicit Consistency(std::size_t clusters = 1) : clusters_(std::max<std::size_t>(clusters, 1)) {}
  // The cluster's; an index beyond the clusters given at construction is a bug (main's is
  // returned).
  [[nodiscard]] ClusterConsistency& at(std::size_t shard) {
    return clusters_[shard < clusters_.size() ? shard : 0];
  }
  [[nodiscard]] const ClusterConsistency& at(std::size_t shard) const {
    return clusters_[shard < clusters_.size() ? shard : 0];
  }
  [[nodiscard]] std::size_t clusters() const { return clusters_.size(); }

 private:
  std::vector<ClusterConsistency> clusters_;
};

// The Liftoff-Consistency token: a position per cluster, "main:0/16B3748;eu-1:0/9A0", in any
// order; a bare position ("0/16B3748") is main's, the form of a deployment without shards. Nullopt
// when malformed (a name twice, an empty or unparsable position).
using ConsistencyToken = std::vector<std::pair<std::string, Lsn>>;
[[nodiscard]] std::optional<ConsistencyToken> parse_consistency_token(std::string_view text);
// The token's text: the bare form when it holds main alone.
[[nodiscard]] std::string to_string(const ConsistencyToken& token);

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
