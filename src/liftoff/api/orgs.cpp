#include "liftoff/api/orgs.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

#include "liftoff/api/support.hpp"
#include "liftoff/audit/audit.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/http/json_body.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/http/query.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/service.hpp"
#include "liftoff/records/service.hpp"

namespace liftoff::api {
namespace {
namespace asio = boost::asio;
namespace json = boost::json;
using http::beast_http::field;
using http::beast_http::status;
using identity::Action;

constexpr std::int32_t kMaxPage = 200;
constexpr std::int32_t kMaxExport = 100'000;
// Events per page of an export: a page is read, written and released before the next is read, so
// an export holds at most this many events (each before/after bounded, see
// RecordsOptions::audit_value_limit) whatever its length.
constexpr std::int32_t kExportPage = 50;

json::object org_json(const identity::Org& org) {
  json::object out{{"id", org.id.to_string()},
                   {"name", org.name},
                   {"role", identity::to_string(org.role)},
                   {"created_at", core::format_rfc3339(org.created_at)},
                   {"updated_at", core::format_rfc3339(org.updated_at)}};
  if (org.deleted_at) {
    out["deleted_at"] = time_or_null(org.deleted_at);
    out["purge_after"] = time_or_null(org.purge_after);
  }
  return out;
}

json::object member_json(const identity::Member& m) {
  return {{"user", user_json(m.user)},
          {"role", identity::to_string(m.role)},
          {"joined_at", core::format_rfc3339(m.joined_at)}};
}

json::object invitation_json(const identity::Invitation& i) {
  json::object out{{"id", i.id.to_string()},
                   {"org_id", i.org_id.to_string()},
                   {"email", i.email},
                   {"role", identity::to_string(i.role)},
                   {"invited_by", i.invited_by.to_string()},
                   {"created_at", core::format_rfc3339(i.created_at)},
                   {"expires_at", core::format_rfc3339(i.expires_at)}};
  if (!i.token.empty()) out["token"] = i.token;
  return out;
}

json::object api_key_json(const identity::ApiKey& k) {
  json::object out{{"id", k.id.to_string()},
                   {"name", k.name},
                   {"role", identity::to_string(k.role)},
                   {"created_by", k.created_by.to_string()},
                   {"created_at", core::format_rfc3339(k.created_at)},
                   {"last_used_at", time_or_null(k.last_used_at)}};
  if (!k.key.empty()) out["key"] = k.key;
  return out;
}

// A role from a request body (422 naming the field when unknown).
Result<identity::Role> role_field(const std::string& text) {
  auto role = identity::parse_role(text);
  if (!role) {
    return Error{Errc::validation_failed,
                 "the body is invalid",
                 {{"role", "must be one of owner, admin, member, viewer"}}};
  }
  return *role;
}

// The audit filter from ?action=&actor=&since=&until=&cursor=&limit= (limit 1..max_limit).
Result<audit::Filter> audit_filter(std::string_view query_text, std::int32_t default_limit,
                                   std::int32_t max_limit) {
  auto query =
      http::parse_query(query_text, {"action", "actor", "since", "until", "limit", "cursor"});
  if (!query) return query.error();
  auto limit = http::int_param(*query, "limit", default_limit, 1, max_limit);
  if (!limit) return limit.error();
  audit::Filter filter;
  filter.limit = *limit;
  Error invalid{Errc::bad_request, "invalid query parameters", {}};
  if (auto it = query->find("action"); it != query->end()) filter.action = it->second;
  if (auto it = query->find("actor"); it != query->end()) {
    filter.actor_id = db::Uuid::parse(it->second);
    if (!filter.actor_id) invalid.fields.push_back({"actor", "must be a user or API key id"});
  }
  for (auto* bound : {&filter.since, &filter.until}) {
    auto t = http::time_param(*query, bound == &filter.since ? "since" : "until");
    if (!t) {
      invalid.fields.push_back(t.error().fields.front());
    } else if (*t) {
      *bound = *t;
    }
  }
  if (auto it = query->find("cursor"); it != query->end()) {
    std::int64_t seq = 0;
    auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), seq);
    if (ec != std::errc{} || end != it->second.data() + it->second.size() || seq < 1) {
      invalid.fields.push_back({"cursor", "is not a cursor this endpoint returned"});
    } else {
      filter.before_seq = seq;
    }
  }
  if (!invalid.fields.empty()) return invalid;
  return filter;
}

}  // namespace

void add_org_routes(http::Router& router, identity::IdentityService& identity,
                    identity::OrgService& orgs, db::Database& database, RateLimits& limits,
                    records::RecordService& records) {
  Routes routes(router, identity, database, limits);
  routes.user(http::Verb::post, "/v1/orgs",
              [&](http::RequestContext& ctx, const SignedIn& who) -> Answer {
                auto fields = string_fields(ctx.request, {"name"});
                if (!fields) co_return fields.error();
                auto org = co_await orgs.create(who.scope, who.principal, (*fields)["name"]);
                if (!org) co_return org.error();
                co_return http::json_response(status::created, org_json(*org));
              });

  routes.user(http::Verb::get, "/v1/orgs",
              [&](http::RequestContext& /*ctx*/, const SignedIn& who) -> Answer {
                auto list = co_await orgs.list(who.scope, who.principal);
                if (!list) co_return list.error();
                json::array items;
                for (const auto& org : *list) items.push_back(org_json(org));
                co_return http::json_response(status::ok, json::object{{"orgs", std::move(items)}});
              });

  routes.org(http::Verb::get, "/v1/orgs/{org}", Action::org_read,
             [&](http::RequestContext& /*ctx*/, const Authorized& who) -> Answer {
               auto org = co_await orgs.get(who.scope, who.access);
               if (!org) co_return org.error();
               co_return http::json_response(status::ok, org_json(*org));
             });

  routes.org(http::Verb::patch, "/v1/orgs/{org}", Action::org_update,
             [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto fields = string_fields(ctx.request, {"name"});
               if (!fields) co_return fields.error();
               auto org = co_await orgs.rename(who.scope, who.principal, (*fields)["name"]);
               if (!org) co_return org.error();
               co_return http::json_response(status::ok, org_json(*org));
             });

  auto origins_json = [](const std::vector<std::string>& origins) {
    return json::object{{"origins", json::array(origins.begin(), origins.end())}};
  };
  routes.org(http::Verb::get, "/v1/orgs/{org}/cors-origins", Action::org_read,
             [&, origins_json](http::RequestContext& /*ctx*/, const Authorized& who) -> Answer {
               auto origins = co_await orgs.cors_origins(who.scope, who.access);
               if (!origins) co_return origins.error();
               co_return http::json_response(status::ok, origins_json(*origins));
             });

  routes.org(http::Verb::put, "/v1/orgs/{org}/cors-origins", Action::org_update,
             [&, origins_json](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto body = http::parse_json_body(ctx.request);
               if (!body) co_return body.error();
               const auto& object = body->as_object();
               if (auto unknown = unknown_members(object, {"origins"})) co_return *unknown;
               const auto* list = object.if_contains("origins");
               std::vector<std::string> origins;
               bool strings = list != nullptr && list->is_array();
               for (std::size_t i = 0; strings && i < list->as_array().size(); ++i) {
                 const auto& item = list->as_array()[i];
                 strings = item.is_string();
                 if (strings) origins.emplace_back(item.as_string());
               }
               if (!strings) {
                 co_return Error{Errc::validation_failed,
                                 "the body is invalid",
                                 {{"origins", "must be an array of origins (strings)"}}};
               }
               auto set = co_await orgs.set_cors_origins(who.scope, who.principal, origins);
               if (!set) co_return set.error();
               co_return http::json_response(status::ok, origins_json(*set));
             });

  routes.org(http::Verb::delete_, "/v1/orgs/{org}", Action::org_delete,
             [&](http::RequestContext& /*ctx*/, const Authorized& who) -> Answer {
               auto org = co_await orgs.remove(who.scope, who.principal);
               if (!org) co_return org.error();
               co_return http::json_response(status::ok, org_json(*org));
             });

  // A deleted org is invisible to access(): restore checks ownership in its own transaction.
  routes.principal(http::Verb::post, "/v1/orgs/{org}/restore",
                   [&](http::RequestContext& ctx, const SignedIn& who) -> Answer {
                     auto org = co_await orgs.restore(who.scope, who.principal, *ctx.param("org"));
                     if (!org) co_return org.error();
                     co_return http::json_response(status::ok, org_json(*org));
                   });

  routes.org(http::Verb::get, "/v1/orgs/{org}/members", Action::org_read,
             [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto query = http::parse_query(ctx.query, {"limit", "cursor"});
               if (!query) co_return query.error();
               auto limit = http::int_param(*query, "limit", 100, 1, kMaxPage);
               if (!limit) co_return limit.error();
               std::optional<db::Uuid> after;
               if (auto it = query->find("cursor"); it != query->end()) {
                 after = db::Uuid::parse(it->second);
                 if (!after) {
                   co_return Error{Errc::bad_request,
                                   "invalid query parameter",
                                   {{"cursor", "is not a cursor this endpoint returned"}}};
                 }
               }
               auto members = co_await orgs.members(who.scope, who.access, after, *limit);
               if (!members) co_return members.error();
               json::array items;
               for (const auto& m : *members) items.push_back(member_json(m));
               json::value next = nullptr;
               if (static_cast<std::int32_t>(members->size()) == *limit)
                 next = json::value(members->back().user.id.to_string());
               co_return http::json_response(
                   status::ok, json::object{{"members", std::move(items)}, {"next_cursor", next}});
             });

  routes.org(http::Verb::patch, "/v1/orgs/{org}/members/{user}", Action::members_manage,
             [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto fields = string_fields(ctx.request, {"role"});
               if (!fields) co_return fields.error();
               auto role = role_field((*fields)["role"]);
               if (!role) co_return role.error();
               auto member =
                   co_await orgs.change_role(who.scope, who.principal, *ctx.param("user"), *role);
               if (!member) co_return member.error();
               co_return http::json_response(status::ok, member_json(*member));
             });

  // Any member may leave; removing others is checked in the transaction.
  routes.org(http::Verb::delete_, "/v1/orgs/{org}/members/{user}", Action::org_read,
             [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto done =
                   co_await orgs.remove_member(who.scope, who.principal, *ctx.param("user"));
               if (!done) co_return done.error();
               co_return no_content();
             });

  routes.org(http::Verb::post, "/v1/orgs/{org}/invitations", Action::invitations_manage,
             [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto fields = string_fields(ctx.request, {"email", "role"});
               if (!fields) co_return fields.error();
               auto role = role_field((*fields)["role"]);
               if (!role) co_return role.error();
               auto invitation =
                   co_await orgs.invite(who.scope, who.principal, (*fields)["email"], *role);
               if (!invitation) co_return invitation.error();
               co_return http::json_response(status::created, invitation_json(*invitation));
             });

  routes.org(
      http::Verb::get, "/v1/orgs/{org}/invitations", Action::invitations_manage,
      [&](http::RequestContext& /*ctx*/, const Authorized& who) -> Answer {
        auto list = co_await orgs.invitations(who.scope, who.access);
        if (!list) co_return list.error();
        json::array items;
        for (const auto& i : *list) items.push_back(invitation_json(i));
        co_return http::json_response(status::ok, json::object{{"invitations", std::move(items)}});
      });

  routes.org(
      http::Verb::delete_, "/v1/orgs/{org}/invitations/{invitation}", Action::invitations_manage,
      [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
        auto done =
            co_await orgs.revoke_invitation(who.scope, who.principal, *ctx.param("invitation"));
        if (!done) co_return done.error();
        co_return no_content();
      });

  // The token travels in the body, not the path: paths end up in access logs and proxies' logs.
  routes.user(http::Verb::post, "/v1/invitations/accept",
              [&](http::RequestContext& ctx, const SignedIn& who) -> Answer {
                auto fields = string_fields(ctx.request, {"token"});
                if (!fields) co_return fields.error();
                auto org =
                    co_await orgs.accept_invitation(who.scope, who.principal, (*fields)["token"]);
                if (!org) co_return org.error();
                co_return http::json_response(status::ok, org_json(*org));
              });

  routes.org(http::Verb::post, "/v1/orgs/{org}/api-keys", Action::api_keys_manage,
             [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto fields = string_fields(ctx.request, {"name", "role"});
               if (!fields) co_return fields.error();
               auto role = role_field((*fields)["role"]);
               if (!role) co_return role.error();
               auto key =
                   co_await orgs.create_api_key(who.scope, who.principal, (*fields)["name"], *role);
               if (!key) co_return key.error();
               co_return http::json_response(status::created, api_key_json(*key));
             });

  routes.org(
      http::Verb::get, "/v1/orgs/{org}/api-keys", Action::api_keys_manage,
      [&](http::RequestContext& /*ctx*/, const Authorized& who) -> Answer {
        auto keys = co_await orgs.api_keys(who.scope, who.access);
        if (!keys) co_return keys.error();
        json::array items;
        for (const auto& k : *keys) items.push_back(api_key_json(k));
        co_return http::json_response(status::ok, json::object{{"api_keys", std::move(items)}});
      });

  routes.org(http::Verb::delete_, "/v1/orgs/{org}/api-keys/{key}", Action::api_keys_manage,
             [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto done =
                   co_await orgs.revoke_api_key(who.scope, who.principal, *ctx.param("key"));
               if (!done) co_return done.error();
               co_return no_content();
             });

  routes.org(
      http::Verb::get, "/v1/orgs/{org}/audit", Action::audit_read,
      [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
        auto filter = audit_filter(ctx.query, 50, kMaxPage);
        if (!filter) co_return filter.error();
        if (auto within = records.admit_read(who.access.org_id); !within) co_return within.error();
        // The first page shows every event committed before the request (later pages continue
        // from its sealed positions).
        if (!filter->before_seq) {
          auto settled = co_await audit::seal_committed(database, who.scope);
          if (!settled) co_return settled.error();
        }
        auto events = co_await audit::list(database, who.scope, *filter);
        if (!events) co_return events.error();
        std::string body = R"({"events":[)";
        for (std::size_t i = 0; i < events->size(); ++i) {
          if (i) body += ',';
          audit::append_json(body, (*events)[i]);
        }
        body += R"(],"next_cursor":)";
        if (static_cast<std::int32_t>(events->size()) == filter->limit && events->back().seq > 1) {
          body += '"' + std::to_string(events->back().seq) + '"';
        } else {
          body += "null";
        }
        body += '}';
        records.charge_read(who.access.org_id, body.size());
        co_return http::text_response(status::ok, std::move(body), "application/json");
      },
      http::Cost::heavy);

  // NDJSON: one event per line, newest first; up to `limit` (default and max 100,000) events, with
  // the cursor to continue in the Liftoff-Next-Cursor header when there are more. Streamed in
  // pages (chunked): the export holds one page in memory and writes it before reading the next, at
  // the client's pace. It covers the log as it was when it began (events after it wait for the
  // next export); a failure after the header cuts the response short (no final chunk), so a
  // client never mistakes a partial export for a whole one.
  routes.org(
      http::Verb::get, "/v1/orgs/{org}/audit/export", Action::audit_read,
      [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
        auto filter = audit_filter(ctx.query, kMaxExport, kMaxExport);  // limit: the whole export
        if (!filter) co_return filter.error();
        auto limit = filter->limit;
        auto org_id = who.access.org_id;
        if (auto within = records.admit_read(org_id); !within) co_return within.error();
        if (!filter->before_seq) {
          auto settled = co_await audit::seal_committed(database, who.scope);
          if (!settled) co_return settled.error();
          auto head = co_await audit::head(database, who.scope);
          if (!head) co_return head.error();
          filter->before_seq = *head + 1;
        }
        auto next = co_await audit::continuation(database, who.scope, *filter, limit);
        if (!next) co_return next.error();
        // The export outlives the request's deadline: each page has the request's time again.
        ctx.stream = [&database, &records, org_id, filter = *filter, limit, scope = who.scope,
                      budget = ctx.deadline - ctx.received_at](
                         http::Stream& stream) mutable -> asio::awaitable<void> {
          std::string chunk;
          std::int32_t remaining = limit;
          while (remaining > 0 && !stream.closing()) {
            // Past the org's read rate the export slows down to it.
            if (auto wait = records.read_wait(org_id); wait.count() > 0) {
              co_await stream.wait_until(std::chrono::steady_clock::now() + wait);
              continue;
            }
            filter.limit = std::min(remaining, kExportPage);
            auto events = co_await audit::list(database, scope.renewed(budget), filter);
            if (!events) throw ErrorException(events.error());
            chunk.clear();
            for (const auto& e : *events) {
              audit::append_json(chunk, e);
              chunk += '\n';
            }
            records.charge_read(org_id, chunk.size());
            if (!co_await stream.write(chunk)) co_return;
            remaining -= static_cast<std::int32_t>(events->size());
            if (static_cast<std::int32_t>(events->size()) < filter.limit) break;
            filter.before_seq = events->back().seq;
          }
        };
        http::Response res{status::ok, 11};
        res.set(field::content_type, "application/x-ndjson");
        res.set(field::cache_control, "no-store");
        if (*next) res.set("Liftoff-Next-Cursor", std::to_string(**next));
        co_return res;
      },
      http::Cost::heavy);
}

}  // namespace liftoff::api
