#include "liftoff/api/usage.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "liftoff/api/support.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/http/query.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/plans/plans.hpp"
#include "liftoff/usage/report.hpp"

namespace liftoff::api {
namespace {
namespace json = boost::json;
using http::beast_http::field;
using http::beast_http::status;
using identity::Action;

// ?format=: one of `allowed` (the first when absent); 400 otherwise.
Result<std::string> format_of(const http::QueryParams& query,
                              std::initializer_list<std::string_view> allowed) {
  auto it = query.find("format");
  if (it == query.end()) return std::string(*allowed.begin());
  for (auto name : allowed)
    if (it->second == name) return it->second;
  std::string names;
  for (auto name : allowed) names += (names.empty() ? "" : ", ") + std::string(name);
  return Error{
      Errc::bad_request, "invalid query parameters", {{"format", "must be one of " + names}}};
}

struct UsageQuery {
  db::Timestamp from, to;
  usage::Granularity granularity = usage::Granularity::day;
  std::string format;
};

// ?from=&to=&granularity=&format=: by default the current month by day, as JSON.
Result<UsageQuery> usage_query(std::string_view text) {
  auto query = http::parse_query(text, {"from", "to", "granularity", "format"});
  if (!query) return query.error();
  UsageQuery out;
  auto now =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  auto month = usage::month_of(now);
  out.from = month.start;
  out.to = month.end;
  Error invalid{Errc::bad_request, "invalid query parameters", {}};
  for (auto* bound : {&out.from, &out.to}) {
    auto t = http::time_param(*query, bound == &out.from ? "from" : "to");
    if (!t) {
      invalid.fields.push_back(t.error().fields.front());
    } else if (*t) {
      *bound = **t;
    }
  }
  if (auto it = query->find("granularity"); it != query->end()) {
    auto granularity = usage::parse_granularity(it->second);
    if (!granularity) {
      invalid.fields.push_back({"granularity", "must be hour, day or month"});
    } else {
      out.granularity = *granularity;
    }
  }
  auto format = format_of(*query, {"json", "csv"});
  if (!format) {
    for (auto& f : format.error().fields) invalid.fields.push_back(f);
  } else {
    out.format = *format;
  }
  if (!invalid.fields.empty()) return invalid;
  if (auto period = usage::check_period(out.from, out.to, out.granularity); !period)
    return period.error();
  return out;
}

}  // namespace

void add_usage_routes(http::Router& router, identity::IdentityService& identity,
                      identity::OrgService& orgs, db::Database& database, RateLimits& limits) {
  Routes routes(router, identity, database, limits);

  routes.org(http::Verb::get, "/v1/orgs/{org}/usage", Action::billing_read,
             [&database](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto query = usage_query(ctx.query);
               if (!query) co_return query.error();
               auto rows = co_await usage::read_usage(database, who.scope, query->from, query->to,
                                                      query->granularity);
               if (!rows) co_return rows.error();
               if (query->format == "csv") {
                 auto res = http::text_response(status::ok, usage::usage_csv(*rows),
                                                "text/csv; charset=utf-8");
                 res.set(field::content_disposition, "attachment; filename=\"usage-" +
                                                         who.access.org_id.to_string() + ".csv\"");
                 co_return res;
               }
               json::array items;
               for (const auto& row : *rows) items.push_back(usage::usage_json(row));
               co_return http::json_response(
                   status::ok, json::object{{"org_id", who.access.org_id.to_string()},
                                            {"from", core::format_rfc3339(query->from)},
                                            {"to", core::format_rfc3339(query->to)},
                                            {"granularity", usage::to_string(query->granularity)},
                                            {"usage", std::move(items)}});
             });

  routes.org(
      http::Verb::get, "/v1/orgs/{org}/invoices/{month}", Action::billing_read,
      [&database, &orgs](http::RequestContext& ctx, const Authorized& who) -> Answer {
        auto query = http::parse_query(ctx.query, {"format"});
        if (!query) co_return query.error();
        auto format = format_of(*query, {"json", "html"});
        if (!format) co_return format.error();
        auto month = usage::parse_month(ctx.param("month").value_or(""));
        if (!month) co_return make_error(Errc::not_found, "no such month: use YYYY-MM");
        auto org = co_await orgs.get(who.scope, who.access);
        if (!org) co_return org.error();
        auto now = std::chrono::time_point_cast<std::chrono::microseconds>(
            std::chrono::system_clock::now());
        if (month->end <= org->created_at || month->start > now)
          co_return make_error(Errc::not_found, "the organization has no invoice for that month");
        auto changes = co_await usage::plan_changes(database, who.scope, month->start);
        if (!changes) co_return changes.error();
        auto used = co_await usage::read_usage(database, who.scope, month->start, month->end,
                                               usage::Granularity::month);
        if (!used) co_return used.error();
        usage::InvoiceFacts facts{org->id,
                                  org->name,
                                  org->created_at,
                                  std::string(who.access.plan->name),
                                  std::move(*changes),
                                  used->empty() ? usage::UsageRow{month->start} : used->front(),
                                  who.access.limits[plans::Limit::records],
                                  who.access.limits[plans::Limit::storage_bytes]};
        auto invoice = usage::make_invoice(facts, *month, now);
        if (*format == "html") {
          co_return http::text_response(status::ok, usage::invoice_html(invoice),
                                        "text/html; charset=utf-8");
        }
        co_return http::json_response(status::ok, usage::invoice_json(invoice));
      });
}

}  // namespace liftoff::api
