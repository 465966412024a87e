#include "liftoff/api/jobs.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>

#include "liftoff/api/support.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/jobs/store.hpp"

namespace liftoff::api {
namespace json = boost::json;
using identity::Action;
using status = boost::beast::http::status;

namespace {
constexpr std::int32_t kMaxPage = 200;

json::object job_json(const jobs::Job& job) {
  json::error_code ec;
  auto args = json::parse(job.args, ec);
  return json::object{{"id", job.id.to_string()},
                      {"queue", job.queue},
                      {"kind", job.kind},
                      {"args", ec ? json::value(json::object{}) : args},
                      {"priority", job.priority},
                      {"state", jobs::to_string(job.state)},
                      {"attempt", job.attempt},
                      {"max_attempts", job.max_attempts},
                      {"timeout_ms", job.timeout.count()},
                      {"run_at", core::format_rfc3339(job.run_at)},
                      {"last_error", job.last_error ? json::value(*job.last_error) : nullptr},
                      {"created_at", core::format_rfc3339(job.created_at)},
                      {"started_at", time_or_null(job.started_at)},
                      {"finished_at", time_or_null(job.finished_at)}};
}

Result<db::Uuid> job_id(const http::RequestContext& ctx) {
  auto id = db::Uuid::parse(*ctx.param("job"));
  if (!id) return make_error(Errc::not_found, "no such job");
  return *id;
}

}  // namespace

void add_job_routes(http::Router& router, identity::IdentityService& identity, jobs::Queue& queue,
                    db::Database& database, RateLimits& limits) {
  Routes routes(router, identity, database, limits);
  auto store = std::make_shared<jobs::JobStore>(queue);

  routes.org(http::Verb::get, "/v1/orgs/{org}/jobs", Action::jobs_manage,
             [store](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto query = http::parse_query(ctx.query, {"state", "queue", "limit", "cursor"});
               if (!query) co_return query.error();
               auto limit = http::int_param(*query, "limit", 50, 1, kMaxPage);
               if (!limit) co_return limit.error();
               jobs::JobStore::ListQuery list;
               list.limit = static_cast<int>(*limit);
               std::vector<FieldError> invalid;
               if (auto it = query->find("state"); it != query->end()) {
                 list.state = jobs::parse_state(it->second);
                 if (!list.state)
                   invalid.push_back(
                       {"state", "must be one of ready, running, completed, discarded, cancelled"});
               }
               if (auto it = query->find("queue"); it != query->end()) list.queue = it->second;
               if (auto it = query->find("cursor"); it != query->end()) {
                 list.before = db::Uuid::parse(it->second);
                 if (!list.before)
                   invalid.push_back({"cursor", "is not a cursor this endpoint returned"});
               }
               if (!invalid.empty())
                 co_return Error{Errc::bad_request, "invalid query parameter", std::move(invalid)};
               auto found = co_await store->list(who.scope, list);
               if (!found) co_return found.error();
               json::array items;
               for (const auto& job : *found) items.push_back(job_json(job));
               json::value next = nullptr;
               if (static_cast<std::int32_t>(found->size()) == *limit)
                 next = json::value(found->back().id.to_string());
               co_return http::json_response(
                   status::ok, json::object{{"jobs", std::move(items)}, {"next_cursor", next}});
             });

  routes.org(http::Verb::get, "/v1/orgs/{org}/jobs/{job}", Action::jobs_manage,
             [store](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto id = job_id(ctx);
               if (!id) co_return id.error();
               auto job = co_await store->get(who.scope, *id);
               if (!job) co_return job.error();
               co_return http::json_response(status::ok, job_json(*job));
             });

  for (const auto& [path, what] :
       {std::pair{"/v1/orgs/{org}/jobs/{job}/retry", jobs::JobStore::Action::retry},
        std::pair{"/v1/orgs/{org}/jobs/{job}/cancel", jobs::JobStore::Action::cancel},
        std::pair{"/v1/orgs/{org}/jobs/{job}/discard", jobs::JobStore::Action::discard}}) {
    routes.org(http::Verb::post, path, Action::jobs_manage,
               [store, action = what](http::RequestContext& ctx, const Authorized& who) -> Answer {
                 auto id = job_id(ctx);
                 if (!id) co_return id.error();
                 auto job = co_await store->act(who.scope, *id, action);
                 if (!job) co_return job.error();
                 co_return http::json_response(status::ok, job_json(*job));
               });
  }
}

}  // namespace liftoff::api
