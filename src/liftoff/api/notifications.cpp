#include "liftoff/api/notifications.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

#include "liftoff/api/support.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/http/json_body.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/identity/organizations.hpp"
#include "liftoff/identity/service.hpp"
#include "liftoff/notify/hub.hpp"
#include "liftoff/notify/notifications.hpp"

namespace liftoff::api {
namespace {
namespace asio = boost::asio;
namespace json = boost::json;
using http::beast_http::status;
using Clock = std::chrono::steady_clock;

constexpr std::int32_t kMaxPage = 200;
constexpr std::int32_t kStreamPage = 100;  // notifications a stream reads at a time
constexpr std::size_t kMaxUserIds = 1'000;

json::object notification_json(const notify::Notification& n) {
  boost::system::error_code ec;
  auto data = json::parse(n.data, ec);
  return {{"id", n.id.to_string()},
          {"seq", n.seq},
          {"org_id", n.org_id ? json::value(n.org_id->to_string()) : json::value(nullptr)},
          {"kind", n.kind},
          {"title", n.title},
          {"body", n.body},
          {"link", n.link ? json::value(*n.link) : json::value(nullptr)},
          {"data", ec ? json::value(json::object{}) : std::move(data)},
          {"created_at", core::format_rfc3339(n.created_at)},
          {"read_at", time_or_null(n.read_at)}};
}

// A seq: a non-negative integer of at most 18 digits.
std::optional<std::int64_t> parse_seq(std::string_view text) {
  std::int64_t seq = 0;
  if (text.empty() || text.size() > 18 || text.front() == '-' || text.front() == '+')
    return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seq);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return seq;
}

// POST /v1/orgs/{org}/notifications: the draft and its recipients.
struct Sending {
  notify::Draft draft;
  std::vector<db::Uuid> user_ids;
  std::vector<identity::Role> roles;
};

Result<Sending> sending_of(const http::Request& request) {
  auto body = http::parse_json_body(request);
  if (!body) return body.error();
  const auto& object = body->as_object();
  if (auto unknown =
          unknown_members(object, {"kind", "title", "body", "link", "data", "user_ids", "roles"}))
    return *unknown;
  Error invalid{Errc::validation_failed, "the notification is invalid", {}};
  Sending sending;
  auto text = [&](std::string_view name, bool required) -> std::optional<std::string> {
    const auto* value = object.if_contains(name);
    if (value == nullptr || (!required && value->is_null())) {
      if (required) invalid.fields.push_back({std::string(name), "is required"});
      return std::nullopt;
    }
    if (!value->is_string()) {
      invalid.fields.push_back({std::string(name), "must be a string"});
      return std::nullopt;
    }
    return std::string(value->get_string());
  };
  sending.draft.kind = text("kind", true).value_or("");
  sending.draft.title = text("title", true).value_or("");
  sending.draft.body = text("body", false).value_or("");
  sending.draft.link = text("link", false);
  if (const auto* data = object.if_contains("data"); data != nullptr && !data->is_null()) {
    if (data->is_object()) {
      sending.draft.data = data->get_object();
    } else {
      invalid.fields.push_back({"data", "must be an object"});
    }
  }
  auto strings = [&](std::string_view name, std::size_t max,
                     auto&& each) {  // each(text, index) -> false when invalid
    const auto* value = object.if_contains(name);
    if (value == nullptr) return;
    if (!value->is_array() || value->get_array().size() > max) {
      invalid.fields.push_back(
          {std::string(name), "must be an array of at most " + std::to_string(max) + " strings"});
      return;
    }
    std::size_t index = 0;
    for (const auto& item : value->get_array()) {
      auto field = std::string(name) + "[" + std::to_string(index) + "]";
      if (!item.is_string() || !each(std::string_view(item.get_string()))) {
        invalid.fields.push_back({field, name == "roles" ? "is not a role" : "is not a user id"});
      }
      ++index;
    }
  };
  strings("user_ids", kMaxUserIds, [&](std::string_view id) {
    auto parsed = db::Uuid::parse(id);
    if (parsed) sending.user_ids.push_back(*parsed);
    return parsed.has_value();
  });
  strings("roles", 4, [&](std::string_view name) {
    auto role = identity::parse_role(name);
    if (role) sending.roles.push_back(*role);
    return role.has_value();
  });
  if (!invalid.fields.empty()) return invalid;
  return sending;
}

// One stream: what its body needs after the request is gone.
struct FeedPlan {
  identity::Credential credential;
  db::Uuid user_id;
  db::Scope scope;            // the request's; renewed for each step of the stream
  Clock::duration budget{};   // the time each step has: the request's
  std::int64_t position = 0;  // the seq shown last: the head at the start, or Last-Event-ID
  bool resumed = false;
};

// A stream's bell in the hub, for exactly as long as its stream (or, if the response is never
// streamed, its handler's answer) exists.
struct FeedRegistration {
  notify::Hub& hub;
  std::shared_ptr<notify::Bell> bell;
  FeedRegistration(notify::Hub& h, std::shared_ptr<notify::Bell> b) : hub(h), bell(std::move(b)) {}
  FeedRegistration(const FeedRegistration&) = delete;
  FeedRegistration& operator=(const FeedRegistration&) = delete;
  ~FeedRegistration() {
    bell->on_ring({});
    hub.unsubscribe(bell);
  }
};

void append_notification(std::string& out, const notify::Notification& n) {
  out += "id: " + std::to_string(n.seq) + "\nevent: notification\ndata: ";
  out += json::serialize(notification_json(n));
  out += "\n\n";
}

void append_unread(std::string& out, const notify::Head& head) {
  out += "event: unread\ndata: ";
  out += json::serialize(json::object{{"unread", head.unread}, {"seq", head.seq}});
  out += "\n\n";
}

asio::awaitable<void> run_feed(http::Stream& stream, FeedPlan plan,
                               identity::IdentityService& identity,
                               notify::Notifications& notifications,
                               const NotificationStreamOptions& options,
                               const FeedRegistration& registration) {
  bool rung = true;  // read at once
  registration.bell->on_ring([&] {
    rung = true;
    stream.wake();
  });
  struct Detach {  // the stream goes before the registration: no ring may reach it after
    const std::shared_ptr<notify::Bell>& bell;
    ~Detach() { bell->on_ring({}); }
  } detach{registration.bell};

  std::string out = "retry: 2000\n\n";
  std::optional<notify::Head> shown;  // the head whose unread count the client has
  bool first = true;
  auto next_heartbeat = Clock::now();
  while (!stream.closing()) {
    auto now = Clock::now();
    if (rung || now >= next_heartbeat) {
      // The session may have ended (logout, password change): ask again (the cache answers).
      auto still = co_await identity.authenticate(plan.scope.renewed(plan.budget), plan.credential);
      if (!still) co_return;
    }
    bool more = false;
    if (rung) {
      rung = false;
      auto page = co_await notifications.after(plan.scope.renewed(plan.budget), plan.user_id,
                                               plan.position, kStreamPage);
      if (!page) co_return;
      const auto& head = page->head;
      if (first && plan.resumed &&
          (plan.position > head.seq ||
           head.seq - plan.position > static_cast<std::int64_t>(options.max_replay))) {
        // Not a seq of this feed, or too far back: the client reloads the list and goes on from
        // the head.
        std::string_view why = plan.position > head.seq
                                   ? "Last-Event-ID is not a notification of this feed"
                                   : "more notifications than a stream replays arrived since "
                                     "Last-Event-ID";
        out += "id: " + std::to_string(head.seq) +
               "\nevent: reset\ndata: " + json::serialize(json::object{{"reason", why}}) + "\n\n";
        plan.position = head.seq;
      } else {
        for (const auto& n : page->items) {
          append_notification(out, n);
          plan.position = n.seq;
        }
        more = page->items.size() == static_cast<std::size_t>(kStreamPage);
      }
      if (!shown || shown->unread != head.unread) {
        append_unread(out, head);
        shown = head;
      }
      first = false;
    }
    if (out.empty() && now >= next_heartbeat) out = ": heartbeat\n\n";
    if (!out.empty()) {
      if (!co_await stream.write(out)) co_return;
      out.clear();
      next_heartbeat = Clock::now() + options.heartbeat;
    }
    if (more) {
      rung = true;
      continue;
    }
    co_await stream.wait_until(next_heartbeat);
  }
}

}  // namespace

void add_notification_routes(http::Router& router, identity::IdentityService& identity,
                             identity::OrgService& orgs, notify::Notifications& notifications,
                             notify::Hub& hub, NotificationStreamOptions options,
                             db::Database& database, RateLimits& limits) {
  Routes routes(router, identity, database, limits);
  auto* feed = &notifications;

  routes.user(
      http::Verb::get, "/v1/me/notifications",
      [feed](http::RequestContext& ctx, const SignedIn& who) -> Answer {
        auto query = http::parse_query(ctx.query, {"limit", "cursor", "unread"});
        if (!query) co_return query.error();
        auto limit = http::int_param(*query, "limit", 50, 1, kMaxPage);
        if (!limit) co_return limit.error();
        std::optional<std::int64_t> before;
        if (auto it = query->find("cursor"); it != query->end()) {
          before = parse_seq(it->second);
          if (!before) {
            co_return Error{Errc::bad_request,
                            "invalid query parameter",
                            {{"cursor", "is not a cursor this endpoint returned"}}};
          }
        }
        bool unread_only = false;
        if (auto it = query->find("unread"); it != query->end()) {
          if (it->second != "true" && it->second != "false") {
            co_return Error{Errc::bad_request,
                            "invalid query parameter",
                            {{"unread", "must be true or false"}}};
          }
          unread_only = it->second == "true";
        }
        auto page =
            co_await feed->list(who.scope, who.principal.user.id, before, *limit, unread_only);
        if (!page) co_return page.error();
        json::array items;
        for (const auto& n : page->items) items.push_back(notification_json(n));
        json::value next = nullptr;
        if (static_cast<std::int32_t>(page->items.size()) == *limit)
          next = std::to_string(page->items.back().seq);
        co_return http::json_response(status::ok, json::object{{"notifications", std::move(items)},
                                                               {"unread", page->head.unread},
                                                               {"seq", page->head.seq},
                                                               {"next_cursor", std::move(next)}});
      });

  routes.user(http::Verb::post, "/v1/me/notifications/{notification}/read",
              [feed](http::RequestContext& ctx, const SignedIn& who) -> Answer {
                auto none = make_error(Errc::not_found, "no such notification");
                auto id = db::Uuid::parse(*ctx.param("notification"));
                if (!id) co_return none;
                auto marked = co_await feed->mark_read(who.scope, who.principal.user.id, *id);
                if (!marked) co_return marked.error();
                if (!*marked) co_return none;
                co_return http::json_response(
                    status::ok,
                    json::object{{"unread", (*marked)->unread}, {"seq", (*marked)->seq}});
              });

  // Every unread notification, or those up to {"up_to": seq} (what the client has shown).
  routes.user(http::Verb::post, "/v1/me/notifications/read",
              [feed](http::RequestContext& ctx, const SignedIn& who) -> Answer {
                std::optional<std::int64_t> up_to;
                if (!ctx.request.body().empty()) {
                  auto body = http::parse_json_body(ctx.request);
                  if (!body) co_return body.error();
                  const auto& object = body->as_object();
                  if (auto unknown = unknown_members(object, {"up_to"})) co_return *unknown;
                  if (const auto* value = object.if_contains("up_to")) {
                    if (!value->is_int64() || value->get_int64() < 0) {
                      co_return Error{Errc::validation_failed,
                                      "the request is invalid",
                                      {{"up_to", "must be a seq: an integer, 0 or more"}}};
                    }
                    up_to = value->get_int64();
                  }
                }
                auto marked = co_await feed->mark_all_read(who.scope, who.principal.user.id, up_to);
                if (!marked) co_return marked.error();
                co_return http::json_response(status::ok,
                                              json::object{{"marked", marked->marked},
                                                           {"unread", marked->head.unread},
                                                           {"seq", marked->head.seq}});
              });

  // EventSource cannot send Authorization: a client trades its session for a ticket (single
  // use, short-lived) and opens the stream with ?ticket=.
  routes.user(http::Verb::post, "/v1/me/notifications/events/tickets",
              [&identity](http::RequestContext& ctx, const SignedIn& who) -> Answer {
                auto token = bearer_token(ctx);
                if (!token) co_return token.error();
                auto credential = identity::credential_of(*token);
                if (!credential) co_return credential.error();
                const identity::StreamTicket stands_for{*credential, std::nullopt, std::nullopt};
                auto issued = co_await identity.issue_stream_ticket(who.scope, stands_for);
                if (!issued) co_return issued.error();
                co_return http::json_response(
                    status::created,
                    json::object{{"ticket", issued->ticket},
                                 {"expires_at", core::format_rfc3339(issued->expires_at)},
                                 {"url", "/v1/me/notifications/events?ticket=" + issued->ticket}});
              });

  routes.user_stream(
      http::Verb::get, "/v1/me/notifications/events", {"last_event_id"},
      [&identity, &hub, feed, options](http::RequestContext& ctx, const SignedIn& who,
                                       const identity::Credential& credential,
                                       const http::QueryParams& query) -> Answer {
        FeedPlan plan{
            credential, who.principal.user.id, who.scope, ctx.deadline - ctx.received_at, 0, false};
        auto last = resume_from(ctx, query);
        if (!last.value.empty()) {
          auto seq = parse_seq(last.value);
          if (!seq) {
            co_return Error{Errc::bad_request,
                            "invalid resume position",
                            {{std::string(last.field), "is not an id this stream sent"}}};
          }
          plan.position = *seq;
          plan.resumed = true;
        }
        // Rung before the head is read: a notification committed after it rings the bell.
        auto executor = co_await asio::this_coro::executor;
        auto bell = std::make_shared<notify::Bell>(who.principal.user.id, std::string(ctx.remote),
                                                   executor);
        if (auto subscribed = hub.subscribe(bell); !subscribed) co_return subscribed.error();
        auto registration = std::make_shared<FeedRegistration>(hub, bell);
        if (!plan.resumed) {
          auto head = co_await feed->head(who.scope, who.principal.user.id);
          if (!head) co_return head.error();
          plan.position = head->seq;
        }
        ctx.stream = [&identity, feed, options, registration,
                      plan = std::move(plan)](http::Stream& stream) -> asio::awaitable<void> {
          co_await run_feed(stream, plan, identity, *feed, options, *registration);
        };
        co_return event_stream_response();
      },
      http::Cost::heavy);

  routes.org(http::Verb::post, "/v1/orgs/{org}/notifications", identity::Action::notifications_send,
             [&orgs](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto sending = sending_of(ctx.request);
               if (!sending) co_return sending.error();
               auto sent = co_await orgs.send_notification(who.scope, who.principal, sending->draft,
                                                           sending->user_ids, sending->roles);
               if (!sent) co_return sent.error();
               co_return http::json_response(
                   status::created, json::object{{"recipients", static_cast<std::int64_t>(*sent)}});
             });
}

}  // namespace liftoff::api
