#include "liftoff/api/records.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/beast/http/field.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

#include "liftoff/api/support.hpp"
#include "liftoff/http/header_list.hpp"
#include "liftoff/http/json_body.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/http/query.hpp"
#include "liftoff/identity/credentials.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/service.hpp"
#include "liftoff/records/service.hpp"
#include "liftoff/usage/meter.hpp"

namespace liftoff::api {
namespace {
namespace json = boost::json;
using http::beast_http::field;
using http::beast_http::status;
using identity::Action;

constexpr std::int32_t kMaxPage = 200;

std::string etag(std::int64_t version) {
  return "\"" + std::to_string(version) + "\"";
}

// A list's ETag is weak (two encodings of the same answer are equal), from the version the
// service gives the answer (the org's state and the query), so a client polling a list revalidates
// with one primary-key lookup (304). W/"v" -> v; anything else names no version of a list.
std::string_view weak_etag_value(std::string_view header) {
  if (header.size() < 4 || !header.starts_with("W/\"") || !header.ends_with('"')) return {};
  return header.substr(3, header.size() - 4);
}

// If-Match: "N" -> N; "*" or absent -> nullopt. Anything else can match no version of ours: 412.
Result<std::optional<std::int64_t>> if_match(const http::Request& request) {
  auto header = request[field::if_match];
  if (header.empty() || header == "*") return std::optional<std::int64_t>{};
  std::int64_t version = 0;
  if (header.size() > 2 && header.front() == '"' && header.back() == '"') {
    auto digits = header.substr(1, header.size() - 2);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
    if (ec == std::errc{} && end == digits.data() + digits.size())
      return std::optional<std::int64_t>{version};
  }
  return make_error(Errc::precondition_failed,
                    "If-Match must be an ETag this API returned, e.g. \"3\"");
}

// A 201's Location (the new record's URL: the collection's records path and its id) and ETag (its
// version), from the answer's own body: the same for a first answer and for its replay under an
// Idempotency-Key, which keeps only the body.
void name_created(http::Response& res, std::string_view target) {
  boost::system::error_code ec;
  auto body = json::parse(res.body(), ec);
  const auto* record = body.if_object();
  const auto* id = record ? record->if_contains("id") : nullptr;
  const auto* version = record ? record->if_contains("version") : nullptr;
  if (ec || !id || !id->is_string() || !version || !version->is_int64()) return;
  auto path = target.substr(0, target.find('?'));
  res.set(field::location, std::string(path) + "/" + std::string(id->get_string()));
  res.set(field::etag, etag(version->get_int64()));
}

http::Response record_response(status code, const records::Record& record) {
  auto res = http::text_response(code, records::record_json(record), "application/json");
  res.set(field::etag, etag(record.version));
  return res;
}

Result<json::object> object_body(const http::Request& request, const http::JsonLimits& limits) {
  auto body = http::parse_json_body(request, limits);
  if (!body) return body.error();
  return std::move(body->as_object());
}

Result<records::CountMode> count_param(const http::QueryParams& query) {
  auto it = query.find("count");
  if (it == query.end() || it->second == "none") return records::CountMode::none;
  if (it->second == "exact") return records::CountMode::exact;
  if (it->second == "estimate") return records::CountMode::estimate;
  return Error{
      Errc::bad_request, "invalid query parameter", {{"count", "must be none, exact or estimate"}}};
}

Result<std::optional<records::Idempotency>> idempotency(const http::RequestContext& ctx) {
  auto key = ctx.request["Idempotency-Key"];
  if (key.empty()) return std::optional<records::Idempotency>{};
  bool printable = std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (key.size() > 255 || !printable) {
    return Error{Errc::bad_request,
                 "invalid header",
                 {{"Idempotency-Key", "must be 1 to 255 visible ASCII characters"}}};
  }
  std::string request = std::string(ctx.request.target()) + "\n" + ctx.request.body();
  return std::optional<records::Idempotency>{
      records::Idempotency{std::string(key), identity::token_digest(request)}};
}

// Prefer: return=representation (RFC 7240), among other preferences (comma-separated, each with
// its ;-parameters); return=minimal, or no preference, is the default.
bool prefers_representation(const http::Request& request) {
  auto [first, last] = request.equal_range(field::prefer);
  for (auto it = first; it != last; ++it) {
    for (const auto& preference : http::list_elements(it->value())) {
      if (preference.value == "return=representation") return true;
    }
  }
  return false;
}

// {"operations": [{"op": "create"|"update"|"replace"|"delete", "id", "data", "if_match"}]}: the
// shape of every item is checked here (422 naming "operations[i].member").
Result<std::vector<records::BatchOperation>> batch_operations(const json::object& body) {
  if (auto unknown = unknown_members(body, {"operations"})) return *unknown;
  auto list = body.if_contains("operations");
  if (!list || !list->is_array() || list->get_array().empty() ||
      list->get_array().size() > records::kMaxBatchOperations) {
    return Error{
        Errc::validation_failed,
        "the batch is invalid",
        {{"operations", "must be an array of 1 to " + std::to_string(records::kMaxBatchOperations) +
                            " operations"}}};
  }
  Error invalid{Errc::validation_failed, "the batch is invalid; nothing was applied", {}};
  std::vector<records::BatchOperation> out;
  const auto& items = list->get_array();
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::string at = "operations[" + std::to_string(i) + "]";
    auto problem_at = [&](const std::string& member, const std::string& message) {
      invalid.fields.push_back({member.empty() ? at : at + '.' + member, message});
    };
    if (!items[i].is_object()) {
      problem_at("", "must be an object");
      continue;
    }
    const auto& item = items[i].get_object();
    records::BatchOperation op;
    for (const auto& [key, value] : item) {
      if (key != "op" && key != "id" && key != "data" && key != "if_match")
        problem_at(std::string(key), "is not a known member");
    }
    auto kind = item.if_contains("op");
    std::string_view name = kind && kind->is_string() ? std::string_view(kind->get_string()) : "";
    if (name == "create") {
      op.kind = records::BatchOperation::Kind::create;
    } else if (name == "update" || name == "replace") {
      op.kind = records::BatchOperation::Kind::update;
      op.merge = name == "update";
    } else if (name == "delete") {
      op.kind = records::BatchOperation::Kind::remove;
    } else {
      problem_at("op", "must be create, update, replace or delete");
      continue;
    }
    if (op.kind != records::BatchOperation::Kind::create) {
      auto id = item.if_contains("id");
      auto parsed = id && id->is_string() ? db::Uuid::parse(id->get_string()) : std::nullopt;
      if (!parsed) {
        problem_at("id", "must be a record id");
      } else {
        op.id = *parsed;
      }
    }
    if (op.kind != records::BatchOperation::Kind::remove) {
      auto data = item.if_contains("data");
      if (!data || !data->is_object()) {
        problem_at("data", "must be an object of the record's fields");
      } else {
        op.data = data->get_object();
      }
    }
    if (auto version = item.if_contains("if_match")) {
      if (!version->is_int64()) {
        problem_at("if_match", "must be a version number");
      } else {
        op.if_match = version->get_int64();
      }
    }
    out.push_back(std::move(op));
  }
  if (!invalid.fields.empty()) return invalid;
  return out;
}

// Whether the org may store `records` more records and `bytes` more bytes of record data under its
// plan: against what it was last measured to hold plus what this process stored since
// (usage::Meter), with no round trip. An org not measured yet in this process passes (its first
// measurement is scheduled).
Result<void> within_storage(usage::Meter& meter, const identity::Access& access,
                            std::int64_t records, std::int64_t bytes) {
  if (records <= 0 && bytes <= 0) return {};
  auto held = meter.holdings(access.org_id);
  if (!held) return {};
  if (records > 0) {
    const auto allowed = allowance_of(access, plans::Limit::records);
    if (held->records + records > allowed.value) {
      return allowed.reached(fmt::format("the organization stores {} records; its plan allows {}",
                                         held->records, allowed.value));
    }
  }
  const auto allowed = allowance_of(access, plans::Limit::storage_bytes);
  if (bytes > 0 && held->storage_bytes + bytes > allowed.value) {
    return allowed.reached(
        fmt::format("the organization stores {} bytes of record data; its plan allows {}",
                    held->storage_bytes, allowed.value));
  }
  return {};
}

}  // namespace

void add_record_routes(http::Router& router, identity::IdentityService& identity,
                       records::RecordService& service, http::JsonLimits limits,
                       db::Database& database, RateLimits& rate_limits, usage::Meter& meter) {
  Routes routes(router, identity, database, rate_limits);
  const std::string collections = "/v1/orgs/{org}/collections";
  const std::string one_collection = collections + "/{collection}";
  const std::string records_path = one_collection + "/records";
  const std::string one_record = records_path + "/{id}";

  routes.org(http::Verb::post, collections, Action::schema_manage,
             [&, limits](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto body = object_body(ctx.request, limits);
               if (!body) co_return body.error();
               if (auto unknown = unknown_members(*body, {"name", "fields"})) co_return *unknown;
               auto name = body->if_contains("name");
               auto fields = body->if_contains("fields");
               if (!name || !name->is_string() || !fields) {
                 Error invalid{Errc::validation_failed, "the collection is invalid", {}};
                 if (!name || !name->is_string())
                   invalid.fields.push_back({"name", "must be a string"});
                 if (!fields) invalid.fields.push_back({"fields", "is required"});
                 co_return invalid;
               }
               std::string name_text(name->get_string());
               const auto allowance = allowance_of(who.access, plans::Limit::collections);
               auto created =
                   co_await service.create_collection(who.scope, name_text, *fields, allowance);
               if (!created) co_return created.error();
               co_return http::json_response(status::created, records::collection_json(*created));
             });

  routes.org(
      http::Verb::get, collections, Action::records_read,
      [&](http::RequestContext& /*ctx*/, const Authorized& who) -> Answer {
        auto list = co_await service.collections(who.scope);
        if (!list) co_return list.error();
        json::array items;
        for (const auto& c : *list) items.push_back(records::collection_json(c));
        co_return http::json_response(status::ok, json::object{{"collections", std::move(items)}});
      });

  routes.org(http::Verb::get, one_collection, Action::records_read,
             [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto c = co_await service.collection(who.scope, *ctx.param("collection"));
               if (!c) co_return c.error();
               co_return http::json_response(status::ok, records::collection_json(**c));
             });

  routes.org(
      http::Verb::patch, one_collection, Action::schema_manage,
      [&, limits](http::RequestContext& ctx, const Authorized& who) -> Answer {
        auto body = object_body(ctx.request, limits);
        if (!body) co_return body.error();
        if (auto unknown = unknown_members(*body, {"add", "rename", "drop", "indexed", "unique"}))
          co_return *unknown;
        if (body->empty()) {
          co_return Error{Errc::validation_failed,
                          "nothing to change",
                          {{"add", "or rename, drop, indexed, unique is required"}}};
        }
        auto changed = co_await service.change_schema(who.scope, *ctx.param("collection"), *body);
        if (!changed) co_return changed.error();
        co_return http::json_response(status::ok, records::collection_json(*changed));
      });

  routes.org(http::Verb::delete_, one_collection, Action::schema_manage,
             [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto done = co_await service.delete_collection(who.scope, *ctx.param("collection"));
               if (!done) co_return done.error();
               co_return no_content();
             });

  routes.org(
      http::Verb::post, records_path, Action::records_write,
      [&, limits](http::RequestContext& ctx, const Authorized& who) -> Answer {
        auto key = idempotency(ctx);
        if (!key) co_return key.error();
        auto body = object_body(ctx.request, limits);
        if (!body) co_return body.error();
        // Checked by the service after the Idempotency-Key: a retry of a create that was stored
        // answers as the create did, even once the org is at its quota.
        const auto within = within_storage(meter, who.access, 1,
                                           static_cast<std::int64_t>(ctx.request.body().size()));
        auto created = co_await service.create_record(who.scope, *ctx.param("collection"), *body,
                                                      *key, within);
        if (!created) co_return created.error();
        auto res = http::text_response(static_cast<status>(created->status), created->body,
                                       "application/json");
        if (created->replayed) res.set("Idempotent-Replayed", "true");
        if (created->status == 201) name_created(res, ctx.request.target());
        co_return res;
      },
      http::Cost::heavy);

  // Answers minimally ({status, id, version} per operation) unless the client asks for the
  // records with Prefer: return=representation (RFC 7240); Preference-Applied says which.
  routes.org(
      http::Verb::post, records_path + ":batch", Action::records_write,
      [&, limits](http::RequestContext& ctx, const Authorized& who) -> Answer {
        auto body = object_body(ctx.request, limits);
        if (!body) co_return body.error();
        auto operations = batch_operations(*body);
        if (!operations) co_return operations.error();
        auto creates = std::count_if(operations->begin(), operations->end(), [](const auto& op) {
          return op.kind == records::BatchOperation::Kind::create;
        });
        auto within =
            within_storage(meter, who.access, creates,
                           creates > 0 ? static_cast<std::int64_t>(ctx.request.body().size()) : 0);
        if (!within) co_return within.error();
        bool echo = prefers_representation(ctx.request);
        auto results =
            co_await service.batch(who.scope, *ctx.param("collection"), *operations, echo);
        if (!results) co_return results.error();
        std::string out = R"({"results":[)";
        for (std::size_t i = 0; i < results->size(); ++i) {
          const auto& r = (*results)[i];
          out += (i ? "," : "") + std::string(R"({"status":)") + std::to_string(r.status);
          out += R"(,"id":")" + r.id.to_string() + '"';
          if (r.status != 204) out += R"(,"version":)" + std::to_string(r.version);
          if (r.record) {
            out += R"(,"record":)";
            records::append_record_json(out, *r.record);
          }
          out += '}';
        }
        out += "]}";
        auto res = http::text_response(status::ok, std::move(out), "application/json");
        res.set("Preference-Applied", echo ? "return=representation" : "return=minimal");
        co_return res;
      },
      http::Cost::heavy);

  routes.org(
      http::Verb::get, records_path, Action::records_read,
      [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
        auto query = http::parse_query(
            ctx.query, {"filter", "sort", "limit", "cursor", "fields", "count", "q", "expand"});
        if (!query) co_return query.error();
        auto limit = http::int_param(*query, "limit", 20, 1, kMaxPage);
        if (!limit) co_return limit.error();
        auto count = count_param(*query);
        if (!count) co_return count.error();
        records::ListQuery list{
            http::text_param(*query, "filter"),
            http::text_param(*query, "sort"),
            http::text_param(*query, "q"),
            http::text_param(*query, "cursor"),
            *limit,
            *count,
            http::list_param(*query, "expand").value_or(std::vector<std::string>{}),
            http::list_param(*query, "fields")};
        auto answer = co_await service.list(who.scope, *ctx.param("collection"), list,
                                            weak_etag_value(ctx.request[field::if_none_match]));
        if (!answer) co_return answer.error();
        auto tag = "W/\"" + answer->version + "\"";
        if (!answer->body) {
          http::Response res{status::not_modified, 11};
          res.set(field::etag, tag);
          co_return res;
        }
        auto res = http::text_response(status::ok, std::move(*answer->body), "application/json");
        res.set(field::etag, tag);
        co_return res;
      },
      http::Cost::heavy);

  routes.org(
      http::Verb::get, one_record, Action::records_read,
      [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
        auto query = http::parse_query(ctx.query, {"expand"});
        if (!query) co_return query.error();
        auto record = co_await service.record(
            who.scope, *ctx.param("collection"), *ctx.param("id"),
            http::list_param(*query, "expand").value_or(std::vector<std::string>{}));
        if (!record) co_return record.error();
        auto none_match = ctx.request[field::if_none_match];
        if (!none_match.empty() && (none_match == "*" || none_match == etag(record->version))) {
          http::Response res{status::not_modified, 11};
          res.set(field::etag, etag(record->version));
          co_return res;
        }
        co_return record_response(status::ok, *record);
      });

  for (auto [verb, is_merge] : {std::pair{http::Verb::patch, true}, {http::Verb::put, false}}) {
    bool merge =
        is_merge;  // a structured binding cannot be captured before C++20's P1091 (clang 14)
    routes.org(
        verb, one_record, Action::records_write,
        [&, limits, merge](http::RequestContext& ctx, const Authorized& who) -> Answer {
          auto expected = if_match(ctx.request);
          if (!expected) co_return expected.error();
          auto body = object_body(ctx.request, limits);
          if (!body) co_return body.error();
          auto updated = co_await service.update_record(who.scope, *ctx.param("collection"),
                                                        *ctx.param("id"), *body, merge, *expected);
          if (!updated) co_return updated.error();
          co_return record_response(status::ok, *updated);
        },
        http::Cost::heavy);
  }

  routes.org(http::Verb::delete_, one_record, Action::records_write,
             [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto expected = if_match(ctx.request);
               if (!expected) co_return expected.error();
               auto done = co_await service.delete_record(who.scope, *ctx.param("collection"),
                                                          *ctx.param("id"), *expected);
               if (!done) co_return done.error();
               co_return no_content();
             });
}

}  // namespace liftoff::api
