#pragma once
// Online moves of one organization's tenant plane between shards (`liftoff shard move`,
// docs/decisions/0021-tenant-shards.md). The org keeps serving throughout:
//   1. capture: a mark on the source makes every change of the org's rows record its key
//      (migrations/control/0024, liftoff_move_guard);
//   2. copy: the org's rows, table by table, in batches, upserted on the target;
//   3. catch up: the recorded changes, re-read from the source and applied to the target, until
//      few are left;
//   4. fence: the directory's fence makes the org's writes wait in every process (routing), the
//      source's refuses a straggler's with a retryable error; the last changes, the org's pending
//      audit events, its unfinished jobs and its schema rewrites are copied; every table's count
//      and the audit chain's head are compared;
//   5. switch: the source refuses the org's writes for good, the directory names the target and
//      lifts the fence (NOTIFY: every process's cache forgets the old shard);
//   6. clean up: the org's rows are deleted from the source in batches.
// Each step is idempotent and recorded in `shard_moves` on the control plane, so a move stopped
// anywhere (the mover, the source or the target killed) is resumed by running it again, or
// rolled back by abort() until its switch. Until the switch the org lives on the source; after
// it, on the target; a fence the mover left behind lifts by itself.
//
// The mover works below the domains: it copies rows generically (each table's columns and key
// from the catalog), and knows of each table only how to find the org's rows in it.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::shards {

// A cluster the mover reaches: its name in the directory and its primary (an administrative
// connection: the mover's writes bypass the guard, which only the tables' owner may do).
struct ClusterAddress {
  std::string name;
  std::string conninfo;
};

struct MoveProgress {
  std::string step;   // "copy", "catch up", "fence", "clean up"
  std::string table;  // the table being copied or cleaned up; empty otherwise
  std::int64_t done = 0;
  std::int64_t total = 0;  // 0: unknown
};

struct MoveOptions {
  // How long the org's writes may wait for the switch. The source refuses them for this long at
  // most; the directory's fence lasts a second longer, so that the source's ends first.
  std::chrono::milliseconds fence_limit{3'000};
  // Between the directory's fence and the source's: time for every process to hear of it.
  std::chrono::milliseconds hearing{100};
  std::int64_t batch_rows = 2'000;
  // The share of the time the copy and the clean-up work: after each batch they pause so long that
  // they keep to it (1: no pause). A batch slowed by the serving load slows them down in turn, so
  // they take what the load leaves. The catch-up and the fence never pause.
  double work_share = 0.5;
  // The fence begins once a catch-up round finds fewer changes than this.
  std::int64_t fence_backlog = 500;
  int fence_attempts = 3;
  std::function<void(const MoveProgress&)> progress;
};

struct MovedTable {
  std::string name;
  std::int64_t rows = 0;  // the org's rows, on both sides at the switch
};

struct MoveReport {
  std::string source, target;
  bool moved = false;    // false: the org was on the target already, nothing to do
  bool resumed = false;  // a move begun earlier was continued
  std::vector<MovedTable> tables;
  std::int64_t changes_applied = 0;  // captured changes replayed on the target
  std::int64_t audit_head = 0;       // the chain's last sequence number, equal on both sides
  std::chrono::milliseconds copy{0}, catch_up{0}, fence{0}, clean_up{0}, total{0};
  int fence_attempts = 0;
};

// The pause after a batch that worked `worked`, so that the work takes `work_share` of the time.
[[nodiscard]] std::chrono::nanoseconds pause_after(std::chrono::nanoseconds worked,
                                                   double work_share);

class Mover {
 public:
  // `clusters`: every shard, main (the control cluster) first.
  Mover(std::vector<ClusterAddress> clusters, MoveOptions options);

  // Moves `org` to `target`, or resumes its unfinished move there.
  [[nodiscard]] boost::asio::awaitable<Result<MoveReport>> move(const db::Uuid& org,
                                                                const std::string& target);
  // Rolls back `org`'s unfinished move: its copy on the target is deleted, the source stops
  // capturing. Errc::conflict after the switch (move again to finish it), not_found when no move
  // of the org is unfinished.
  [[nodiscard]] boost::asio::awaitable<Result<void>> abort(const db::Uuid& org);

 private:
  std::vector<ClusterAddress> clusters_;
  MoveOptions options_;
};

}  // namespace liftoff::shards
