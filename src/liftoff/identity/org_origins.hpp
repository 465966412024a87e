#pragma once
// Every organization's own CORS origins (OrgService::set_cors_origins), held in memory by every
// process: a preflight carries no credentials and is answered from here without a database round
// trip (http/cors.hpp asks allows() for the {org} of the path).
//
// Kept current by the session channel (revocation_listener.hpp): a change to an org NOTIFYs
// "org:<id>" in its transaction, and the listener marks that org stale; when the listener
// (re)connects, everything is marked stale (notifications sent while it was not listening are
// lost). run() reloads what is stale, one reload at a time, so an older read never overwrites a
// newer one. While the database cannot be reached the last lists stay in force: CORS only decides
// which pages a browser lets read answers, never who may call (every route still needs its token).
//
// Thread-safety: allows() from any thread (a shared lock); stale() and stale_all() from any thread;
// run() on one executor.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "liftoff/db/org_changes.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/identity/org_store.hpp"

namespace liftoff::identity {

class OrgOrigins final : public db::OrgChanges {
 public:
  OrgOrigins(db::Database& database, std::chrono::milliseconds statement_timeout)
      : store_(database), statement_timeout_(statement_timeout) {}

  // Whether the org named by `org_text` (a path segment) lists `origin` (canonical).
  [[nodiscard]] bool allows(std::string_view org_text, std::string_view origin) const;

  void stale(const db::Uuid& org_id) override;
  void stale_all() override;

  // Reloads what is stale until `stopping`; the first time, everything.
  boost::asio::awaitable<void> run(const std::atomic<bool>& stopping);
  // Whether the lists were read at least once (a process serves org origins only after).
  [[nodiscard]] bool loaded() const { return loaded_.load(std::memory_order_acquire); }

 private:
  boost::asio::awaitable<Result<void>> reload(bool everything,
                                              const std::vector<db::Uuid>& org_ids);

  OrgStore store_;
  std::chrono::milliseconds statement_timeout_;
  mutable std::shared_mutex lists_mutex_;
  std::unordered_map<db::Uuid, std::vector<std::string>, db::UuidHash> lists_;
  std::mutex stale_mutex_;
  bool stale_all_ = true;
  std::unordered_set<db::Uuid, db::UuidHash> stale_;
  std::atomic<bool> loaded_{false};
};

}  // namespace liftoff::identity
