#include "liftoff/api/webhooks.hpp"

#include <boost/json/array.hpp>

#include "liftoff/api/support.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/http/json_body.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/webhooks/service.hpp"

namespace liftoff::api {
namespace json = boost::json;
using identity::Action;
using status = boost::beast::http::status;

namespace {
constexpr std::int32_t kMaxPage = 200;

json::value text_or_null(const std::optional<std::string>& text) {
  return text ? json::value(*text) : json::value(nullptr);
}

json::object endpoint_json(const webhooks::Endpoint& e) {
  json::array types;
  for (const auto& t : e.event_types) types.emplace_back(t);
  return json::object{{"id", e.id.to_string()},
                      {"url", e.url},
                      {"description", e.description},
                      {"event_types", std::move(types)},
                      {"enabled", e.enabled},
                      {"disabled_reason", text_or_null(e.disabled_reason)},
                      {"delivered_through_seq", e.after_seq},
                      {"failures", e.failures},
                      {"next_attempt_at", core::format_rfc3339(e.next_attempt_at)},
                      {"last_error", text_or_null(e.last_error)},
                      {"previous_secret_expires_at", time_or_null(e.previous_secret_expires_at)},
                      {"created_at", core::format_rfc3339(e.created_at)},
                      {"updated_at", core::format_rfc3339(e.updated_at)}};
}

json::object with_secret_json(const webhooks::WithSecret& created) {
  auto out = endpoint_json(created.endpoint);
  out["secret"] = created.secret;
  return out;
}

json::object delivery_json(const webhooks::Delivery& d) {
  const auto& a = d.attempt;
  return json::object{{"id", d.id.to_string()},
                      {"event_id", a.event_id.to_string()},
                      {"seq", a.seq},
                      {"event_type", a.event_type},
                      {"status", a.status ? json::value(*a.status) : json::value(nullptr)},
                      {"error", text_or_null(a.error)},
                      {"duration_ms", a.duration.count()},
                      {"response", text_or_null(a.response)},
                      {"created_at", core::format_rfc3339(d.created_at)}};
}

// The members of an endpoint's body: each of `allowed` optional, of its type (422 otherwise),
// others a 400.
Result<webhooks::EndpointPatch> endpoint_body(const http::Request& request) {
  auto body = http::parse_json_body(request);
  if (!body) return body.error();
  const auto& object = body->as_object();
  if (auto unknown = unknown_members(object, {"url", "description", "event_types", "enabled"}))
    return *unknown;
  Error invalid{Errc::validation_failed, "the webhook endpoint is invalid", {}};
  webhooks::EndpointPatch patch;
  for (const auto& [name, target] :
       {std::pair{"url", &patch.url}, std::pair{"description", &patch.description}}) {
    if (const auto* value = object.if_contains(name)) {
      if (value->is_string()) {
        *target = std::string(value->get_string());
      } else {
        invalid.fields.push_back({name, "must be a string"});
      }
    }
  }
  if (const auto* value = object.if_contains("event_types")) {
    if (!value->is_array()) {
      invalid.fields.push_back({"event_types", "must be an array of strings"});
    } else {
      std::vector<std::string> types;
      for (const auto& item : value->get_array()) {
        if (!item.is_string()) {
          invalid.fields.push_back({"event_types", "must be an array of strings"});
          break;
        }
        types.emplace_back(item.get_string());
      }
      patch.event_types = std::move(types);
    }
  }
  if (const auto* value = object.if_contains("enabled")) {
    if (value->is_bool()) {
      patch.enabled = value->get_bool();
    } else {
      invalid.fields.push_back({"enabled", "must be true or false"});
    }
  }
  if (!invalid.fields.empty()) return invalid;
  return patch;
}

// ?limit= and ?cursor= (an id this listing returned).
struct Page {
  std::int32_t limit = 50;
  std::optional<db::Uuid> cursor;
};
Result<Page> page_of(const http::RequestContext& ctx) {
  auto query = http::parse_query(ctx.query, {"limit", "cursor"});
  if (!query) return query.error();
  auto limit = http::int_param(*query, "limit", 50, 1, kMaxPage);
  if (!limit) return limit.error();
  Page page{static_cast<std::int32_t>(*limit), std::nullopt};
  if (auto it = query->find("cursor"); it != query->end()) {
    page.cursor = db::Uuid::parse(it->second);
    if (!page.cursor)
      return Error{Errc::bad_request,
                   "invalid query parameter",
                   {{"cursor", "is not a cursor this endpoint returned"}}};
  }
  return page;
}

template <typename Item>
json::value next_cursor(const std::vector<Item>& items, std::int32_t limit) {
  if (static_cast<std::int32_t>(items.size()) < limit || items.empty()) return nullptr;
  return json::value(items.back().id.to_string());
}

}  // namespace

void add_webhook_routes(http::Router& router, identity::IdentityService& identity,
                        webhooks::WebhookService& webhooks, db::Database& database,
                        RateLimits& limits) {
  Routes routes(router, identity, database, limits);
  auto* service = &webhooks;

  routes.org(http::Verb::post, "/v1/orgs/{org}/webhooks", Action::webhooks_manage,
             [service](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto body = endpoint_body(ctx.request);
               if (!body) co_return body.error();
               if (body->enabled)
                 co_return Error{Errc::bad_request,
                                 "the body is invalid",
                                 {{"enabled", "is not a known field when creating"}}};
               webhooks::NewEndpoint endpoint;
               endpoint.url = body->url.value_or("");
               endpoint.description = body->description.value_or("");
               if (body->event_types) endpoint.event_types = *body->event_types;
               if (!body->url)
                 co_return Error{Errc::validation_failed,
                                 "the webhook endpoint is invalid",
                                 {{"url", "is required"}}};
               const auto allowance = allowance_of(who.access, plans::Limit::webhook_endpoints);
               auto created = co_await service->create(who.scope, endpoint, allowance);
               if (!created) co_return created.error();
               co_return http::json_response(status::created, with_secret_json(*created));
             });

  routes.org(http::Verb::get, "/v1/orgs/{org}/webhooks", Action::webhooks_manage,
             [service](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto page = page_of(ctx);
               if (!page) co_return page.error();
               auto found = co_await service->list(who.scope, page->cursor, page->limit);
               if (!found) co_return found.error();
               json::array items;
               for (const auto& e : *found) items.push_back(endpoint_json(e));
               co_return http::json_response(
                   status::ok, json::object{{"webhooks", std::move(items)},
                                            {"next_cursor", next_cursor(*found, page->limit)}});
             });

  routes.org(http::Verb::get, "/v1/orgs/{org}/webhooks/{webhook}", Action::webhooks_manage,
             [service](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto found = co_await service->get(who.scope, *ctx.param("webhook"));
               if (!found) co_return found.error();
               co_return http::json_response(status::ok, endpoint_json(*found));
             });

  routes.org(http::Verb::patch, "/v1/orgs/{org}/webhooks/{webhook}", Action::webhooks_manage,
             [service](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto patch = endpoint_body(ctx.request);
               if (!patch) co_return patch.error();
               auto updated = co_await service->update(who.scope, *ctx.param("webhook"), *patch);
               if (!updated) co_return updated.error();
               co_return http::json_response(status::ok, endpoint_json(*updated));
             });

  routes.org(http::Verb::delete_, "/v1/orgs/{org}/webhooks/{webhook}", Action::webhooks_manage,
             [service](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto removed = co_await service->remove(who.scope, *ctx.param("webhook"));
               if (!removed) co_return removed.error();
               co_return no_content();
             });

  routes.org(http::Verb::post, "/v1/orgs/{org}/webhooks/{webhook}/rotate-secret",
             Action::webhooks_manage,
             [service](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto rotated = co_await service->rotate_secret(who.scope, *ctx.param("webhook"));
               if (!rotated) co_return rotated.error();
               co_return http::json_response(status::ok, with_secret_json(*rotated));
             });

  routes.org(http::Verb::get, "/v1/orgs/{org}/webhooks/{webhook}/deliveries",
             Action::webhooks_manage,
             [service](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto page = page_of(ctx);
               if (!page) co_return page.error();
               auto found = co_await service->deliveries(who.scope, *ctx.param("webhook"),
                                                         page->cursor, page->limit);
               if (!found) co_return found.error();
               json::array items;
               for (const auto& d : *found) items.push_back(delivery_json(d));
               co_return http::json_response(
                   status::ok, json::object{{"deliveries", std::move(items)},
                                            {"next_cursor", next_cursor(*found, page->limit)}});
             });

  routes.org(
      http::Verb::post, "/v1/orgs/{org}/webhooks/{webhook}/deliveries/{delivery}/redeliver",
      Action::webhooks_manage,
      [service](http::RequestContext& ctx, const Authorized& who) -> Answer {
        auto job =
            co_await service->redeliver(who.scope, *ctx.param("webhook"), *ctx.param("delivery"));
        if (!job) co_return job.error();
        co_return http::json_response(status::accepted, json::object{{"job_id", job->to_string()}});
      });
}

}  // namespace liftoff::api
