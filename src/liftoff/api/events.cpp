#include "liftoff/api/events.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <limits>

#include "liftoff/api/support.hpp"
#include "liftoff/core/time.hpp"
#include "liftoff/http/problem.hpp"
#include "liftoff/http/query.hpp"
#include "liftoff/identity/service.hpp"
#include "liftoff/plans/plans.hpp"
#include "liftoff/records/events.hpp"
#include "liftoff/records/service.hpp"

namespace liftoff::api {
namespace {
namespace asio = boost::asio;
using http::beast_http::status;
using identity::Action;
using records::EventPosition;
using Clock = std::chrono::steady_clock;

constexpr std::int32_t kWholeSeq = std::numeric_limits<std::int32_t>::max();
// Log entries per page of a replay (each entry's before/after bounded by audit_value_limit).
constexpr std::int32_t kReplayPage = 50;

// One stream: everything its body needs after the request is gone.
struct StreamPlan {
  identity::Credential credential;
  std::string org_text;
  db::Uuid org_id;
  db::Scope scope;           // the request's, for the org; renewed for each step of the stream
  Clock::duration budget{};  // the time each step has: the request's
  std::shared_ptr<const records::Collection> collection;
  std::optional<records::FilterNode> filter;
  std::optional<EventPosition> resume;  // from Last-Event-ID
};

// Whether the subscriber sees the event: without a filter every one; with one, an event whose
// record matches before or after the change (so a client also learns what left its view).
bool visible(const StreamPlan& plan, const records::RecordEvent& event) {
  if (!plan.filter) return true;
  const auto& schema = plan.collection->schema;
  return (event.record && records::matches(schema, *plan.filter, *event.record)) ||
         (event.previous && records::matches(schema, *plan.filter, *event.previous));
}

void append_frame(std::string& out, const records::RecordEvent& event) {
  out += "id: ";
  out += event.position.to_string();
  out += "\nevent: ";
  out += event.type;
  out += "\ndata: ";
  out += event.data;  // compact JSON: no line breaks
  out += "\n\n";
}

void append_reset(std::string& out, std::int64_t seq, std::string_view why) {
  out += "id: " + std::to_string(seq) + "\nevent: reset\ndata: {\"reason\":\"";
  out += why;
  out += "\"}\n\n";
}

// A subscriber's place in the hub, for exactly as long as its stream (or, if the response is never
// streamed, its handler's answer) exists.
struct Registration {
  records::EventHub& hub;
  std::shared_ptr<records::Subscriber> subscriber;
  std::int64_t head = 0;   // the org's head when it registered
  std::int64_t until = 0;  // what the hub had read by then (see EventHub::subscribe)
  Registration(records::EventHub& h, std::shared_ptr<records::Subscriber> s)
      : hub(h), subscriber(std::move(s)) {}
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  ~Registration() {
    subscriber->on_push({});
    hub.unsubscribe(subscriber);
  }
};

asio::awaitable<void> run_stream(http::Stream& stream, const StreamPlan& plan,
                                 identity::IdentityService& identity,
                                 records::RecordService& records, records::EventHub& hub,
                                 const EventStreamOptions& options,
                                 const Registration& registration) {
  const auto& subscriber = registration.subscriber;
  const std::int64_t head = registration.head;
  std::string out = "retry: 2000\n\n";
  // Where this stream stands: events at or before `position` are behind it.
  EventPosition position{head, kWholeSeq};
  std::int64_t after = head;
  if (plan.resume) {
    position = plan.resume->index < 0 ? EventPosition{plan.resume->seq, kWholeSeq} : *plan.resume;
    after = plan.resume->index < 0 ? plan.resume->seq : plan.resume->seq - 1;
  } else {
    // The position it opens at, with no event: a client that reconnects before its first event
    // (the stream ended because one burst of events passed events_max_backlog, or the network
    // failed) resumes from here instead of missing what came meanwhile. EventSource takes an id
    // from a frame without data and dispatches nothing.
    out += "id: " + position.to_string() + "\n\n";
  }
  subscriber->on_push([&stream] { stream.wake(); });
  // Events written since the last write: once it succeeded, they count in the org's usage.
  std::int64_t framed = 0;
  auto delivered = [&] {
    if (framed > 0 && options.on_delivered) options.on_delivered(plan.org_id, framed);
    framed = 0;
  };
  struct Detach {  // the stream goes before the registration: no wake may reach it after
    const std::shared_ptr<records::Subscriber>& subscriber;
    ~Detach() { subscriber->on_push({}); }
  } detach{subscriber};

  if (plan.resume) {
    // The log is replayed page by page, each page written before the next is read: a resumed
    // stream holds one page, however far back it resumes.
    std::int64_t last = std::max(registration.until, head);
    std::optional<std::string_view> reset;
    if (plan.resume->seq > head) {
      reset = "Last-Event-ID is not an event of this organization";
    } else if (last - after > static_cast<std::int64_t>(options.max_replay)) {
      // An org's seqs have no gaps: (after, last] holds last - after log entries.
      reset = "more events than a stream replays (events_max_replay) happened since Last-Event-ID";
    }
    // Page after page until `last`; the first page also says whether the replay is too old.
    // A replay draws from the org's read rate: past it, the replay slows down to it.
    for (bool first = true; !reset; first = false) {
      while (!stream.closing()) {
        auto wait = records.read_wait(plan.org_id);
        if (wait.count() == 0) break;
        co_await stream.wait_until(Clock::now() + wait);
      }
      auto page = co_await hub.replay(plan.scope.renewed(plan.budget), plan.collection->name, after,
                                      last, kReplayPage);
      if (!page) co_return;
      if (first && page->first_at &&
          *page->first_at < std::chrono::time_point_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now() - options.replay_window)) {
        reset = "Last-Event-ID is older than the replay window (events_replay_window)";
        break;
      }
      for (const auto& event : page->events) {
        if (event->position <= position) continue;
        position = event->position;
        if (visible(plan, *event)) {
          append_frame(out, *event);
          ++framed;
        }
      }
      records.charge_read(plan.org_id, out.size());
      if (page->read_until >= last || page->read_until == after || stream.closing()) break;
      if (!co_await stream.write(out)) co_return;
      delivered();
      out.clear();
      after = page->read_until;
    }
    if (reset) {
      append_reset(out, last, *reset);
      position = {last, kWholeSeq};
    }
  }
  if (!co_await stream.write(out)) co_return;
  delivered();
  auto next_heartbeat = Clock::now() + options.heartbeat;
  while (!stream.closing() && !subscriber->overflowed()) {
    auto events = subscriber->take();
    auto now = Clock::now();
    if (!events.empty() || now >= next_heartbeat) {
      // Access may have ended (membership removed, session or key revoked): ask again.
      auto still = co_await authorize(identity, plan.scope.renewed(plan.budget).control(),
                                      plan.credential, plan.org_text, Action::records_read);
      if (!still) co_return;
    }
    out.clear();
    for (const auto& event : events) {
      if (event->position <= position) continue;
      position = event->position;
      if (visible(plan, *event)) {
        append_frame(out, *event);
        ++framed;
      }
    }
    if (out.empty() && now >= next_heartbeat) out = ": heartbeat\n\n";
    if (!out.empty()) {
      if (!co_await stream.write(out)) co_return;
      delivered();
      next_heartbeat = Clock::now() + options.heartbeat;
    }
    co_await stream.wait_until(next_heartbeat);
  }
  // Overflowed: the client was too slow for the events; it resumes with Last-Event-ID.
}

}  // namespace

void add_event_routes(http::Router& router, identity::IdentityService& identity,
                      records::RecordService& records, records::EventHub& hub,
                      const EventStreamOptions& options, db::Database& database,
                      RateLimits& limits) {
  Routes routes(router, identity, database, limits);
  // EventSource cannot send Authorization: a client trades its token for a ticket (single use,
  // short-lived) and opens the stream with ?ticket=.
  routes.org(http::Verb::post, "/v1/orgs/{org}/collections/{collection}/events/tickets",
             Action::records_read, [&](http::RequestContext& ctx, const Authorized& who) -> Answer {
               auto collection = co_await records.collection(who.scope, *ctx.param("collection"));
               if (!collection) co_return collection.error();
               // Named, not a braced temporary in the co_await (GCC 12 destroys it twice).
               const identity::StreamTicket stands_for{who.credential, who.access.org_id,
                                                       (*collection)->name};
               auto issued = co_await identity.issue_stream_ticket(who.scope.control(), stands_for);
               if (!issued) co_return issued.error();
               auto url = "/v1/orgs/" + who.access.org_id.to_string() + "/collections/" +
                          (*collection)->name + "/events?ticket=" + issued->ticket;
               co_return http::json_response(
                   status::created,
                   boost::json::object{{"ticket", issued->ticket},
                                       {"expires_at", core::format_rfc3339(issued->expires_at)},
                                       {"url", url}});
             });
  routes.org_stream(
      http::Verb::get, "/v1/orgs/{org}/collections/{collection}/events", Action::records_read,
      {"filter", "last_event_id"},
      [&, options](http::RequestContext& ctx, const Authorized& who,
                   const http::QueryParams& query) -> Answer {
        auto collection = co_await records.collection(who.scope, *ctx.param("collection"));
        if (!collection) co_return collection.error();
        StreamPlan plan{who.credential,
                        std::string(*ctx.param("org")),
                        who.access.org_id,
                        who.scope,
                        ctx.deadline - ctx.received_at,
                        *collection,
                        std::nullopt,
                        std::nullopt};
        if (auto it = query.find("filter"); it != query.end()) {
          auto filter = records::parse_filter(it->second, records.options().filter);
          if (!filter) co_return filter.error();
          // Compiling checks the fields and value types, exactly as a list would.
          auto checked = records::compile_count((*collection)->schema, (*collection)->id,
                                                who.access.org_id, *filter, std::nullopt);
          if (!checked) co_return checked.error();
          plan.filter = std::move(*filter);
        }
        auto last = resume_from(ctx, query);
        if (!last.value.empty()) {
          plan.resume = EventPosition::parse(last.value);
          if (!plan.resume) {
            co_return Error{Errc::bad_request,
                            "invalid resume position",
                            {{std::string(last.field), "is not an id this stream sent"}}};
          }
          if (auto within = records.admit_read(who.access.org_id); !within)
            co_return within.error();
        }
        // Registered before the answer goes out: a change committed after the client sees 200
        // reaches it. Registered at the head: what came before, the stream replays from the log
        // itself, so the hub never reads an old backlog for one subscriber.
        auto head = co_await records.events_head(who.scope);
        if (!head) co_return head.error();
        auto executor = co_await asio::this_coro::executor;
        auto subscriber = std::make_shared<records::Subscriber>(
            who.access.org_id, (*collection)->name, executor, hub.options().max_queue,
            hub.options().max_queue_bytes, std::string(ctx.remote));
        const auto streams = allowance_of(who.access, plans::Limit::event_streams);
        auto until = hub.subscribe(subscriber, *head, &streams);
        if (!until) co_return until.error();
        auto registration = std::make_shared<Registration>(hub, subscriber);
        registration->head = *head;
        registration->until = *until;
        ctx.stream = [&identity, &records, &hub, options, registration,
                      plan = std::move(plan)](http::Stream& stream) -> asio::awaitable<void> {
          co_await run_stream(stream, plan, identity, records, hub, options, *registration);
        };
        co_return event_stream_response();
      },
      http::Cost::heavy);
}

}  // namespace liftoff::api
