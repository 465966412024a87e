#pragma once
// In-app notifications: each user's feed (docs/decisions/0015-notifications.md). A notification is
// delivered in the transaction of the change it tells about (it exists exactly when that commits),
// numbered in its user's feed (gap-free, in commit order: a stream resumes after the last seq it
// showed), and counted as unread until the user marks it read. Every change to a feed NOTIFYs
// `liftoff_notifications` with the user's id at commit, which wakes that user's open streams in
// every process (notify/hub.hpp).
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::db {
class Database;
class Transaction;
}  // namespace liftoff::db

namespace liftoff::notify {

inline constexpr std::string_view kNotificationsChannel = "liftoff_notifications";
// Liftoff's own kinds (a member joined, a role changed...) start with this; an app's may not.
inline constexpr std::string_view kSystemKindPrefix = "liftoff.";

// What a notification says. Clients show title, body and link, or render their own text from kind
// and data (which carry everything the title says).
struct Draft {
  std::string kind;  // 1-64 of [a-z0-9._-], starting with a letter
  std::string title;
  std::string body;
  std::optional<std::string> link;  // an http(s) URL or a path ("/..."), opened on a click
  boost::json::object data;
};

struct DraftLimits {
  std::size_t title = 200;      // characters
  std::size_t body = 2'000;     // characters
  std::size_t link = 2'000;     // bytes
  std::size_t data = 8 * 1024;  // bytes of its JSON
};
// validation_failed naming each bad field (kind, title, body, link, data); `system` allows the
// kinds of kSystemKindPrefix.
[[nodiscard]] Result<void> validate(const Draft& draft, bool system = false,
                                    const DraftLimits& limits = {});

struct Notification {
  db::Uuid id;
  std::int64_t seq = 0;  // its place in the user's feed: 1, 2, 3...
  std::optional<db::Uuid> org_id;
  std::string kind;
  std::string title;
  std::string body;
  std::optional<std::string> link;
  std::string data;  // JSON text of an object
  db::Timestamp created_at;
  std::optional<db::Timestamp> read_at;
};

// Where a user's feed stands: its last seq (0 before the first notification) and how many of its
// notifications are unread.
struct Head {
  std::int64_t seq = 0;
  std::int64_t unread = 0;
  bool operator==(const Head&) const = default;
};

class Notifications {
 public:
  explicit Notifications(db::Database& database) : db_(database) {}

  // In `tx` (control plane): `draft` to each of `users` (repeats count once), about `org` when
  // set. Each user's head row stays locked until the transaction ends. Returns how many got it.
  // The caller checks who may be told (members of the org...) and validates the draft.
  [[nodiscard]] static boost::asio::awaitable<Result<std::size_t>> deliver(
      db::Transaction& tx, const std::optional<db::Uuid>& org, const Draft& draft,
      std::span<const db::Uuid> users);

  struct Page {
    std::vector<Notification> items;
    Head head;
  };
  // The user's notifications, newest first: those with a seq below `before` (all when none), only
  // the unread ones when `unread_only`; with the feed's head.
  [[nodiscard]] boost::asio::awaitable<Result<Page>> list(const db::Scope& scope,
                                                          const db::Uuid& user,
                                                          std::optional<std::int64_t> before,
                                                          std::int32_t limit, bool unread_only);
  // Oldest first, those after seq `after` (what a stream has not shown), read from the primary
  // (a stream is woken by a commit there); with the feed's head.
  [[nodiscard]] boost::asio::awaitable<Result<Page>> after(const db::Scope& scope,
                                                           const db::Uuid& user, std::int64_t after,
                                                           std::int32_t limit);
  [[nodiscard]] boost::asio::awaitable<Result<Head>> head(const db::Scope& scope,
                                                          const db::Uuid& user);
  // Marks one of the user's notifications read (again is fine); nullopt when the user has none
  // with that id.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<Head>>> mark_read(
      const db::Scope& scope, const db::Uuid& user, const db::Uuid& id);
  struct Marked {
    std::int64_t marked = 0;
    Head head;
  };
  // Marks every unread notification of the user read, or those up to seq `up_to` (what the client
  // has shown: one delivered meanwhile stays unread).
  [[nodiscard]] boost::asio::awaitable<Result<Marked>> mark_all_read(
      const db::Scope& scope, const db::Uuid& user, std::optional<std::int64_t> up_to);
  // Deletes notifications older than `retention` (read or not: the unread counts follow), at most
  // `limit` per call (housekeeping). Returns how many.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> prune(const db::Scope& scope,
                                                                  std::chrono::seconds retention,
                                                                  std::int32_t limit);

 private:
  db::Database& db_;
};

}  // namespace liftoff::notify
