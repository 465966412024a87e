#pragma once
// The background sealer (docs/decisions/0020-audit-sealing.md): every process runs one. It seals
// committed audit events into their orgs' chains in rounds of one statement (audit::seal over
// every org), at once when woken by a local commit and at least every `interval` for events other
// processes left (a process killed between its commit and its round). Commits that arrive during a
// round share the next one. Each org whose chain advanced is announced (`on_sealed`): how record
// event streams and webhooks learn of new events.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

#include "liftoff/db/value.hpp"

namespace liftoff::core {
class Counter;
class Registry;
}  // namespace liftoff::core

namespace liftoff::db {
class Database;
}

namespace liftoff::audit {

struct SealerOptions {
  // The longest an event committed by another process (or one whose wake-up was lost) waits.
  std::chrono::milliseconds interval{100};
  std::int32_t max_per_org = 1000;  // events of one org sealed per round
  std::chrono::milliseconds statement_timeout{10'000};
};

class Sealer {
 public:
  using OnSealed = std::function<void(const db::Uuid& org_id, std::int64_t last_seq)>;
  // `metrics` (optional) counts audit_sealed_events_total and failed rounds.
  Sealer(db::Database& database, SealerOptions options, OnSealed on_sealed,
         core::Registry* metrics = nullptr);

  // A commit left an event to seal: the next round starts now (or right after the running one).
  // Thread-safe, never blocks.
  void wake();

  // Seals until `stopping`, then runs one last round. Run once per process.
  [[nodiscard]] boost::asio::awaitable<void> run(const std::atomic<bool>& stopping);

 private:
  // One round; whether it left events behind (an org had more than max_per_org).
  boost::asio::awaitable<bool> round();

  db::Database& database_;
  SealerOptions options_;
  OnSealed on_sealed_;
  core::Counter* sealed_events_ = nullptr;
  core::Counter* failed_rounds_ = nullptr;
  bool failing_ = false;  // the last round failed (logged once per streak)
  std::mutex mutex_;
  bool woken_ = false;
  // While run() runs: its wait, for wake() to end it.
  std::optional<boost::asio::any_io_executor> executor_;
  boost::asio::steady_timer* timer_ = nullptr;
};

}  // namespace liftoff::audit
