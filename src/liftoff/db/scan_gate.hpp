#pragma once
// The bound on an organization's concurrent database work
// (docs/decisions/0018-noisy-neighbours.md). Statements that may read far more rows than they
// return (Statement::scans: exact counts, unindexed filters, searches, holdings) are what one
// tenant can use to slow every other: each holds a server backend and a core for as long as it
// runs. The gate lets at most `per_org` of one organization's scans run at once in the process and
// `total` of all organizations'; a scan over either waits its turn, organizations served round
// robin (one tenant's queue never delays another's first scan by more than one turn), until its
// deadline (Errc::timeout). An organization with `queue_per_org` scans waiting is refused at once
// (Errc::too_many_requests).
//
// Thread-safety: every member may be called from any worker; a waiter is woken on its own
// executor. Tickets must not outlive the gate.
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::core {
class Registry;
class Gauge;
class Counter;
}  // namespace liftoff::core

namespace liftoff::db {

struct ScanOptions {
  std::size_t per_org = 1;  // one organization's scans running at once (process)
  std::size_t total = 2;    // every organization's scans running at once (process)
  std::size_t queue_per_org =
      16;  // one organization's scans waiting, beyond which they are refused
};

class ScanGate {
 public:
  // With `metrics` null, nothing is counted (tests).
  ScanGate(ScanOptions options, core::Registry* metrics);
  ~ScanGate();
  ScanGate(const ScanGate&) = delete;
  ScanGate& operator=(const ScanGate&) = delete;

  // A running scan's place: gives it back (and lets the next waiter in) when destroyed.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept : gate_(other.gate_), org_(other.org_) {
      other.gate_ = nullptr;
    }
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { release(); }

   private:
    friend class ScanGate;
    Ticket(ScanGate* gate, const Uuid& org) : gate_(gate), org_(org) {}
    void release();
    ScanGate* gate_ = nullptr;
    Uuid org_{};
  };

  // Waits for a place for one scan of `org`, until `deadline`.
  [[nodiscard]] boost::asio::awaitable<Result<Ticket>> enter(const Uuid& org, Deadline deadline);

  [[nodiscard]] const ScanOptions& options() const { return options_; }
  // Scans running and waiting now (all organizations).
  [[nodiscard]] std::size_t running() const;
  [[nodiscard]] std::size_t waiting() const;

 private:
  struct Waiter;
  struct OrgState {
    std::size_t running = 0;
    std::deque<std::shared_ptr<Waiter>> waiting;
  };
  void leave(const Uuid& org);
  // Lets waiters in while there is room, round robin over the organizations (under mutex_).
  void admit_waiters();
  void forget_if_idle(const Uuid& org);  // under mutex_

  ScanOptions options_;
  mutable std::mutex mutex_;
  std::size_t running_ = 0;
  std::size_t waiting_ = 0;
  std::unordered_map<Uuid, OrgState, UuidHash> orgs_;
  std::deque<Uuid> turns_;  // organizations with waiters, in the order they are served
  core::Gauge* running_gauge_ = nullptr;
  core::Gauge* waiting_gauge_ = nullptr;
  core::Counter* refused_ = nullptr;
  core::Counter* timed_out_ = nullptr;
};

}  // namespace liftoff::db
