#include "liftoff/notify/notifications.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>

#include "liftoff/core/text.hpp"
#include "liftoff/db/database.hpp"

namespace liftoff::notify {
namespace asio = boost::asio;
using db::Intent;
using db::Params;
using db::Statement;

namespace {

#define LIFTOFF_NOTIFICATION_COLUMNS \
  "n.id, n.seq, n.org_id, n.kind, n.title, n.body, n.link, n.data::text, n.created_at, n.read_at"

// Heads are locked in user id order, so two deliveries to overlapping users cannot deadlock.
constexpr Statement kDeliver{
    db::Plane::control, "notifications.deliver",
    "WITH recipients AS (SELECT DISTINCT u AS user_id "
    "FROM unnest(string_to_array($1, ',')::uuid[]) AS u ORDER BY 1), "
    "heads AS (INSERT INTO notification_heads AS h (user_id, seq, unread) "
    "SELECT user_id, 1, 1 FROM recipients ORDER BY user_id "
    "ON CONFLICT (user_id) DO UPDATE SET seq = h.seq + 1, unread = h.unread + 1 "
    "RETURNING user_id, seq), "
    "inserted AS (INSERT INTO notifications (user_id, seq, id, org_id, kind, title, body, link, "
    "data) SELECT user_id, seq, gen_random_uuid(), $2, $3, $4, $5, $6, $7 FROM heads "
    "RETURNING user_id) "
    "SELECT pg_notify('liftoff_notifications', user_id::text) FROM inserted"};
// One row even for an empty page: the head's columns, then a notification's (null when none).
constexpr Statement kList{
    db::Plane::control, "notifications.list",
    "SELECT h.seq, h.unread, " LIFTOFF_NOTIFICATION_COLUMNS
    " FROM (SELECT 1) AS one "
    "LEFT JOIN notification_heads h ON h.user_id = $1 "
    "LEFT JOIN LATERAL (SELECT * FROM notifications n WHERE n.user_id = $1 "
    "AND ($2::bigint IS NULL OR n.seq < $2) AND (NOT $3 OR n.read_at IS NULL) "
    "ORDER BY n.seq DESC LIMIT $4) n ON true ORDER BY n.seq DESC"};
constexpr Statement kAfter{
    db::Plane::control, "notifications.after",
    "SELECT h.seq, h.unread, " LIFTOFF_NOTIFICATION_COLUMNS
    " FROM (SELECT 1) AS one "
    "LEFT JOIN notification_heads h ON h.user_id = $1 "
    "LEFT JOIN LATERAL (SELECT * FROM notifications n WHERE n.user_id = $1 AND n.seq > $2 "
    "ORDER BY n.seq LIMIT $3) n ON true ORDER BY n.seq"};
constexpr Statement kHead{db::Plane::control, "notifications.head",
                          "SELECT seq, unread FROM notification_heads WHERE user_id = $1"};
// Marking locks the notification's row, then the head (as every statement here does: a delivery
// locks only the head, and inserts).
constexpr Statement kMarkRead{
    db::Plane::control, "notifications.mark_read",
    "WITH found AS (SELECT 1 FROM notifications WHERE user_id = $1 AND id = $2), "
    "marked AS (UPDATE notifications SET read_at = now() "
    "WHERE user_id = $1 AND id = $2 AND read_at IS NULL RETURNING 1), "
    "head AS (UPDATE notification_heads SET unread = unread - (SELECT count(*) FROM marked) "
    "WHERE user_id = $1 RETURNING seq, unread), "
    "told AS (SELECT pg_notify('liftoff_notifications', $1::text) "
    "WHERE EXISTS (SELECT 1 FROM marked)) "
    "SELECT EXISTS (SELECT 1 FROM found), h.seq, h.unread, (SELECT count(*) FROM told) "
    "FROM (SELECT 1) AS one LEFT JOIN head h ON true"};
constexpr Statement kMarkAllRead{
    db::Plane::control, "notifications.mark_all_read",
    "WITH marked AS (UPDATE notifications SET read_at = now() "
    "WHERE user_id = $1 AND read_at IS NULL AND ($2::bigint IS NULL OR seq <= $2) RETURNING 1), "
    "head AS (UPDATE notification_heads SET unread = unread - (SELECT count(*) FROM marked) "
    "WHERE user_id = $1 RETURNING seq, unread), "
    "told AS (SELECT pg_notify('liftoff_notifications', $1::text) "
    "WHERE EXISTS (SELECT 1 FROM marked)) "
    "SELECT (SELECT count(*) FROM marked), h.seq, h.unread, (SELECT count(*) FROM told) "
    "FROM (SELECT 1) AS one LEFT JOIN head h ON true"};
// Heads are corrected in user id order (see kDeliver); a feed's seq never goes back.
constexpr Statement kPrune{
    db::Plane::control, "notifications.prune",
    "WITH gone AS (DELETE FROM notifications WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM notifications WHERE created_at < now() - $1::bigint * interval '1 second' "
    "LIMIT $2)) RETURNING user_id, read_at IS NULL AS unread), "
    "per_user AS (SELECT user_id, count(*) FILTER (WHERE unread) AS unread FROM gone "
    "GROUP BY user_id), "
    "locked AS (SELECT h.user_id FROM notification_heads h JOIN per_user p USING (user_id) "
    "WHERE p.unread > 0 ORDER BY h.user_id FOR UPDATE OF h), "
    "fixed AS (UPDATE notification_heads h SET unread = h.unread - p.unread FROM per_user p "
    "WHERE h.user_id = p.user_id AND p.unread > 0 AND h.user_id IN (SELECT user_id FROM locked) "
    "RETURNING h.user_id) "
    "SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM fixed)"};

bool kind_shaped(std::string_view kind) {
  if (kind.empty() || kind.size() > 64 || kind.front() < 'a' || kind.front() > 'z') return false;
  return std::all_of(kind.begin(), kind.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

bool has_control(std::string_view text, bool newlines_allowed) {
  return std::any_of(text.begin(), text.end(), [&](char c) {
    auto u = static_cast<unsigned char>(c);
    if (newlines_allowed && (c == '\n' || c == '\t')) return false;
    return u < 0x20 || u == 0x7f;
  });
}

// An http(s) URL or a path on the app's own site; never javascript:, data: and the like, which a
// client rendering the link would run.
bool link_shaped(std::string_view link) {
  if (link.empty() || has_control(link, false) || link.find(' ') != std::string_view::npos)
    return false;
  if (link.starts_with("/")) return !link.starts_with("//");  // "//host" leaves the site
  return (link.starts_with("https://") && link.size() > 8) ||
         (link.starts_with("http://") && link.size() > 7);
}

Head head_at(const db::Row& row) {
  if (row.is_null(0)) return {};
  return {row.get<std::int64_t>(0), row.get<std::int64_t>(1)};
}

// The notification whose columns start at column 2 (LIFTOFF_NOTIFICATION_COLUMNS after a head).
Notification notification_at(const db::Row& row) {
  return {row.get<db::Uuid>(2),
          row.get<std::int64_t>(3),
          row.get<std::optional<db::Uuid>>(4),
          row.get<std::string>(5),
          row.get<std::string>(6),
          row.get<std::string>(7),
          row.get<std::optional<std::string>>(8),
          row.get<std::string>(9),
          row.get<db::Timestamp>(10),
          row.get<std::optional<db::Timestamp>>(11)};
}

Notifications::Page page_of(const db::Rows& rows) {
  Notifications::Page page;
  if (rows.empty()) return page;
  page.head = head_at(rows.front());
  page.items.reserve(static_cast<std::size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) {
    if (!rows[i].is_null(2)) page.items.push_back(notification_at(rows[i]));
  }
  return page;
}

}  // namespace

Result<void> validate(const Draft& draft, bool system, const DraftLimits& limits) {
  std::vector<FieldError> fields;
  if (!kind_shaped(draft.kind)) {
    fields.push_back(
        {"kind", "must be 1-64 of a-z, 0-9, '.', '_' and '-', starting with a letter"});
  } else if (!system && draft.kind.starts_with(kSystemKindPrefix)) {
    fields.push_back({"kind", "'liftoff.' starts the kinds of Liftoff's own notifications"});
  }
  auto title = core::utf8_length(draft.title);
  if (title == 0 || title > limits.title || has_control(draft.title, false)) {
    fields.push_back(
        {"title", "must be 1-" + std::to_string(limits.title) + " characters on one line"});
  }
  if (core::utf8_length(draft.body) > limits.body || has_control(draft.body, true)) {
    fields.push_back({"body", "must be at most " + std::to_string(limits.body) +
                                  " characters, without control characters but line breaks"});
  }
  if (draft.link && (draft.link->size() > limits.link || !link_shaped(*draft.link))) {
    fields.push_back({"link", "must be an http(s) URL or a path starting with '/', at most " +
                                  std::to_string(limits.link) + " bytes"});
  }
  if (boost::json::serialize(draft.data).size() > limits.data) {
    fields.push_back({"data", "must be at most " + std::to_string(limits.data) + " bytes of JSON"});
  }
  if (fields.empty()) return {};
  return Error{Errc::validation_failed, "the notification is invalid", std::move(fields)};
}

asio::awaitable<Result<std::size_t>> Notifications::deliver(db::Transaction& tx,
                                                            const std::optional<db::Uuid>& org,
                                                            const Draft& draft,
                                                            std::span<const db::Uuid> users) {
  if (users.empty()) co_return std::size_t{0};
  std::string ids;
  ids.reserve(users.size() * 37);
  for (const auto& user : users) {
    if (!ids.empty()) ids += ',';
    ids += user.to_string();
  }
  Params params(ids, org, draft.kind, draft.title, draft.body, draft.link,
                db::Json{boost::json::serialize(draft.data)});
  auto rows = co_await tx.query(kDeliver, params);
  if (!rows) co_return rows.error();
  co_return static_cast<std::size_t>(rows->size());
}

asio::awaitable<Result<Notifications::Page>> Notifications::list(const db::Scope& scope,
                                                                 const db::Uuid& user,
                                                                 std::optional<std::int64_t> before,
                                                                 std::int32_t limit,
                                                                 bool unread_only) {
  Params params(user, before, unread_only, limit);
  auto rows = co_await db_.query(Intent::read_your_writes, scope, kList, params);
  if (!rows) co_return rows.error();
  co_return page_of(*rows);
}

asio::awaitable<Result<Notifications::Page>> Notifications::after(const db::Scope& scope,
                                                                  const db::Uuid& user,
                                                                  std::int64_t after,
                                                                  std::int32_t limit) {
  Params params(user, after, limit);
  auto rows = co_await db_.query(Intent::latest, scope, kAfter, params);
  if (!rows) co_return rows.error();
  co_return page_of(*rows);
}

asio::awaitable<Result<Head>> Notifications::head(const db::Scope& scope, const db::Uuid& user) {
  Params params(user);
  auto rows = co_await db_.query(Intent::latest, scope, kHead, params);
  if (!rows) co_return rows.error();
  if (rows->empty()) co_return Head{};
  co_return head_at(rows->front());
}

asio::awaitable<Result<std::optional<Head>>> Notifications::mark_read(const db::Scope& scope,
                                                                      const db::Uuid& user,
                                                                      const db::Uuid& id) {
  Params params(user, id);
  auto rows = co_await db_.query(Intent::write, scope, kMarkRead, params);
  if (!rows) co_return rows.error();
  const auto row = rows->front();
  if (!row.get<bool>(0)) co_return std::optional<Head>{};
  co_return std::optional<Head>{Head{row.get<std::int64_t>(1), row.get<std::int64_t>(2)}};
}

asio::awaitable<Result<Notifications::Marked>> Notifications::mark_all_read(
    const db::Scope& scope, const db::Uuid& user, std::optional<std::int64_t> up_to) {
  Params params(user, up_to);
  auto rows = co_await db_.query(Intent::write, scope, kMarkAllRead, params);
  if (!rows) co_return rows.error();
  const auto row = rows->front();
  Marked marked{row.get<std::int64_t>(0), {}};
  if (!row.is_null(1)) marked.head = {row.get<std::int64_t>(1), row.get<std::int64_t>(2)};
  co_return marked;
}

asio::awaitable<Result<std::size_t>> Notifications::prune(const db::Scope& scope,
                                                          std::chrono::seconds retention,
                                                          std::int32_t limit) {
  Params params(static_cast<std::int64_t>(retention.count()), limit);
  auto rows = co_await db_.query(Intent::write, scope, kPrune, params);
  if (!rows) co_return rows.error();
  co_return static_cast<std::size_t>(rows->front().get<std::int64_t>(0));
}

}  // namespace liftoff::notify
