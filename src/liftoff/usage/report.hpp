#pragma once
// What an organization used, read back: its usage over a period (hour, day or month rows, JSON or
// CSV) and its monthly invoice (line items from its plans and its usage, JSON or HTML) for a
// payment provider to charge (docs/api.md, "Usage and invoices").
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::db {
class Connection;
class Database;
}  // namespace liftoff::db

namespace liftoff::usage {

enum class Granularity : std::uint8_t { hour, day, month };
[[nodiscard]] std::optional<Granularity> parse_granularity(std::string_view text);
[[nodiscard]] std::string_view to_string(Granularity granularity);

// One row: counters summed over the row's period, gauges at their most (null: never measured).
struct UsageRow {
  db::Timestamp start;
  std::int64_t api_requests = 0;
  std::int64_t events = 0;
  std::int64_t jobs = 0;
  std::optional<std::int64_t> records;
  std::optional<std::int64_t> storage_bytes;
};

// The longest period one read covers at each granularity (hours: 31 days, days: 400, months: 10
// years); a longer one is a 422.
[[nodiscard]] Result<void> check_period(db::Timestamp from, db::Timestamp to,
                                        Granularity granularity);

// The scope's org's usage in [from, to), a row per period that has any, oldest first.
[[nodiscard]] boost::asio::awaitable<Result<std::vector<UsageRow>>> read_usage(
    db::Database& database, const db::Scope& scope, db::Timestamp from, db::Timestamp to,
    Granularity granularity);

[[nodiscard]] boost::json::object usage_json(const UsageRow& row);
// "start,api_requests,events,jobs,records,storage_bytes" and a line per row (RFC 4180).
[[nodiscard]] std::string usage_csv(const std::vector<UsageRow>& rows);

// One org's API requests over a window: its load on its shard (`liftoff shard rebalance`).
struct OrgRequests {
  db::Uuid org;
  std::int64_t requests = 0;
};
// Every org's API requests since `since`, on the shard `conn` is connected to (an operator's
// connection), for each org that made any.
[[nodiscard]] boost::asio::awaitable<Result<std::vector<OrgRequests>>> requests_per_org(
    db::Connection& conn, db::Timestamp since, db::Deadline deadline);

// A change of the org's plan (the audit log's org.plan_changed).
struct PlanChange {
  db::Timestamp at;
  std::string from;
  std::string to;
};
// The scope's org's plan changes at or after `since`, in the order they happened.
[[nodiscard]] boost::asio::awaitable<Result<std::vector<PlanChange>>> plan_changes(
    db::Database& database, const db::Scope& scope, db::Timestamp since);

// The month [start, end) in UTC of "YYYY-MM"; nullopt when malformed.
struct Month {
  db::Timestamp start;
  db::Timestamp end;
  std::string name;  // "2026-12"
};
[[nodiscard]] std::optional<Month> parse_month(std::string_view text);
[[nodiscard]] Month month_of(db::Timestamp t);

struct InvoiceLine {
  std::string kind;  // "subscription" or "usage"
  std::string description;
  std::string item;  // the plan's name, or the usage's metric
  std::int64_t quantity = 0;
  std::optional<std::int64_t> included;   // a usage line's limit under the plan, when it has one
  std::optional<db::Timestamp> from, to;  // a subscription line's part of the month
  std::int64_t amount_cents = 0;
};

struct Invoice {
  std::string number;  // "<org id>-<month>"
  db::Uuid org_id;
  std::string org_name;
  Month month;
  db::Timestamp period_start;  // the month's start, or the org's creation within it
  bool final = false;          // the month has ended (else the amounts are for the whole month
                               // on the plans known so far)
  std::vector<InvoiceLine> lines;
  std::int64_t total_cents = 0;
};

// What the invoice needs to know of the org.
struct InvoiceFacts {
  db::Uuid org_id;
  std::string org_name;
  db::Timestamp org_created;
  std::string current_plan;
  std::vector<PlanChange> changes;  // from the month's start on
  UsageRow usage;                   // the month's, summed
  std::optional<std::int64_t> records_limit, storage_limit;
};

// The month's invoice: each plan the org was on in the month, its monthly price prorated by the
// seconds on it, then the month's usage (included in the plan: no charge).
[[nodiscard]] Invoice make_invoice(const InvoiceFacts& facts, const Month& month,
                                   db::Timestamp now);
[[nodiscard]] boost::json::object invoice_json(const Invoice& invoice);
[[nodiscard]] std::string invoice_html(const Invoice& invoice);

}  // namespace liftoff::usage
