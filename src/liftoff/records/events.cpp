#include "liftoff/records/events.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <map>

#include "liftoff/audit/audit.hpp"
#include "liftoff/core/log.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/db/listener.hpp"

namespace liftoff::records {
namespace asio = boost::asio;
namespace json = boost::json;
using db::Intent;
using db::Params;
using db::Statement;

namespace {
// The next entries of each org's log read in one round (per org).
constexpr std::int32_t kReadLimit = 500;
constexpr Statement kAnnounce{
    db::Plane::any, "events.announce",
    "SELECT pg_notify('liftoff_records', p) FROM jsonb_array_elements_text($1) AS p"};

std::optional<json::object> object_of(const json::value* value) {
  if (value == nullptr || !value->is_object()) return std::nullopt;
  return value->get_object();
}

EventPtr make_event(const db::Uuid& org_id, EventPosition position, db::Timestamp occurred_at,
                    std::string_view collection, std::string_view type,
                    std::optional<json::object> record, std::optional<json::object> previous) {
  auto event = std::make_shared<RecordEvent>();
  event->org_id = org_id;
  event->position = position;
  event->occurred_at = occurred_at;
  event->collection = std::string(collection);
  event->type = type;
  const auto& some = record ? *record : *previous;
  if (const auto* id = some.if_contains("id"); id && id->is_string())
    event->record_id = std::string(id->get_string());
  json::object data{{"id", event->record_id}};
  if (record) data["record"] = *record;
  if (previous) data["previous"] = *previous;
  event->data = json::serialize(data);
  event->record = std::move(record);
  event->previous = std::move(previous);
  return event;
}

std::optional<json::object> parse_object(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  boost::system::error_code ec;
  auto value = json::parse(*text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.get_object());
}

void append_events_of(std::vector<EventPtr>& out, const audit::Entry& entry) {
  append_record_events(out, entry.org_id, entry.seq, entry.occurred_at, entry.action,
                       entry.target_type, entry.before, entry.after);
}

}  // namespace

std::string EventPosition::to_string() const {
  return index < 0 ? std::to_string(seq) : std::to_string(seq) + "-" + std::to_string(index);
}

std::optional<EventPosition> EventPosition::parse(std::string_view text) {
  auto number = [](std::string_view digits, auto& out) {
    if (digits.empty() || digits.size() > 18 || digits.front() == '-' || digits.front() == '+')
      return false;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return ec == std::errc{} && end == digits.data() + digits.size();
  };
  EventPosition position;
  auto dash = text.find('-');
  if (!number(text.substr(0, dash), position.seq)) return std::nullopt;
  if (dash != std::string_view::npos && !number(text.substr(dash + 1), position.index))
    return std::nullopt;
  return position;
}

void append_record_events(std::vector<EventPtr>& out, const db::Uuid& org_id, std::int64_t seq,
                          db::Timestamp occurred_at, std::string_view action,
                          std::string_view target_type, const std::optional<std::string>& before,
                          const std::optional<std::string>& after) {
  EventPosition position{seq, -1};
  if (action == "record.created" || action == "record.updated" || action == "record.deleted") {
    auto type = action == "record.created"   ? kCreated
                : action == "record.updated" ? kUpdated
                                             : kDeleted;
    auto record = parse_object(after);
    auto previous = parse_object(before);
    if (!record && !previous) return;  // written before events carried the record
    out.push_back(make_event(org_id, position, occurred_at, target_type, type, std::move(record),
                             std::move(previous)));
    return;
  }
  if (action != "records.batch") return;
  auto batch = parse_object(after);
  const auto* changes = batch ? batch->if_contains("changes") : nullptr;
  if (changes == nullptr || !changes->is_array()) return;
  std::int32_t index = 0;
  for (const auto& change : changes->get_array()) {
    position.index = index++;
    if (!change.is_object()) continue;
    const auto& c = change.get_object();
    const auto* op = c.if_contains("op");
    if (op == nullptr || !op->is_string()) continue;
    std::string_view type = op->get_string() == kCreated   ? kCreated
                            : op->get_string() == kUpdated ? kUpdated
                                                           : kDeleted;
    auto record = object_of(c.if_contains("record"));
    auto previous = object_of(c.if_contains("previous"));
    if (!record && !previous) continue;
    out.push_back(make_event(org_id, position, occurred_at, target_type, type, std::move(record),
                             std::move(previous)));
  }
}

void Subscriber::push(EventPtr event) {
  {
    std::lock_guard lock(mutex_);
    if (overflowed_) return;
    if (queue_.size() >= max_queue_ || queue_bytes_ + event->data.size() > max_queue_bytes_) {
      overflowed_ = true;
      queue_.clear();
      queue_bytes_ = 0;
    } else {
      queue_bytes_ += event->data.size();
      queue_.push_back(std::move(event));
    }
    if (wake_posted_) return;
    wake_posted_ = true;
  }
  asio::post(executor_, [self = shared_from_this()] {
    {
      std::lock_guard lock(self->mutex_);
      self->wake_posted_ = false;
    }
    if (self->wake_) self->wake_();
  });
}

std::vector<EventPtr> Subscriber::take() {
  std::lock_guard lock(mutex_);
  std::vector<EventPtr> out;
  out.swap(queue_);
  queue_bytes_ = 0;
  return out;
}

bool Subscriber::overflowed() {
  std::lock_guard lock(mutex_);
  return overflowed_;
}

Result<std::int64_t> EventHub::subscribe(const std::shared_ptr<Subscriber>& subscriber,
                                         std::int64_t after, const plans::Allowance* plan) {
  std::lock_guard lock(mutex_);
  if (subscribers_ >= options_.max_subscribers)
    return make_error(Errc::unavailable, "too many open event streams");
  auto key = subscriber->org_id().to_string();
  auto it = orgs_.find(key);
  const std::size_t open = it == orgs_.end() ? 0 : it->second.subscribers.size();
  if (plan && static_cast<std::int64_t>(open) >= plan->value) {
    return plan->reached(
        fmt::format("the organization has {} event streams open on this server; its plan allows {}",
                    open, plan->value));
  }
  if (open >= options_.max_per_org) {
    return make_error(Errc::too_many_requests,
                      "too many open event streams for this organization "
                      "(events_max_streams_per_org); close one first");
  }
  if (!subscriber->client().empty()) {
    auto& open = clients_[subscriber->client()];
    if (open >= options_.max_per_client) {
      return make_error(Errc::too_many_requests,
                        "too many open event streams from your address "
                        "(events_max_streams_per_client); close one first");
    }
    ++open;
  }
  ++subscribers_;
  auto [entry, created] = orgs_.try_emplace(key);
  auto& org = entry->second;
  if (created) {
    org.read = after;
    org.generation = ++generations_;
  }
  org.due = true;
  org.subscribers.push_back(subscriber);
  wake_pump();
  return org.read;
}

void EventHub::unsubscribe(const std::shared_ptr<Subscriber>& subscriber) {
  std::lock_guard lock(mutex_);
  auto it = orgs_.find(subscriber->org_id().to_string());
  if (it == orgs_.end()) return;
  auto& list = it->second.subscribers;
  auto found = std::find(list.begin(), list.end(), subscriber);
  if (found == list.end()) return;
  list.erase(found);
  --subscribers_;
  if (auto client = clients_.find(subscriber->client()); client != clients_.end()) {
    if (--client->second == 0) clients_.erase(client);
  }
  if (list.empty()) orgs_.erase(it);
}

void EventHub::published(const db::Uuid& org_id, std::int64_t seq) {
  std::lock_guard lock(mutex_);
  auto key = org_id.to_string();
  auto& latest = unannounced_[key];
  latest = std::max(latest, seq);
  wake_pump();
}

// Under mutex_.
void EventHub::wake_pump() {
  if (!executor_ || wake_posted_) return;
  wake_posted_ = true;
  asio::post(*executor_, [this] {
    {
      std::lock_guard lock(mutex_);
      wake_posted_ = false;
    }
    if (wake_) wake_();
  });
}

void EventHub::mark_due(std::string_view payload) {
  auto colon = payload.find(':');
  std::int64_t seq = 0;
  auto digits = payload.substr(colon == std::string_view::npos ? payload.size() : colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  std::lock_guard lock(mutex_);
  auto it = orgs_.find(std::string(payload.substr(0, colon)));
  if (it == orgs_.end()) return;
  if (ec != std::errc{} || seq > it->second.read) it->second.due = true;
}

asio::awaitable<Result<EventHub::Replay>> EventHub::replay(const db::Scope& scope,
                                                           std::string_view collection,
                                                           std::int64_t after, std::int64_t until,
                                                           std::int32_t limit) {
  Replay replay;
  replay.read_until = after;
  if (until <= after) co_return replay;
  auto entries = co_await audit::entries(db_, scope, after, until, limit);
  if (!entries) co_return entries.error();
  if (entries->empty()) co_return replay;
  replay.first_at = entries->front().occurred_at;
  replay.read_until = entries->back().seq;
  std::vector<EventPtr> events;
  for (const auto& entry : *entries) append_events_of(events, entry);
  for (auto& e : events) {
    if (e->collection == collection) replay.events.push_back(std::move(e));
  }
  co_return replay;
}

db::Scope EventHub::background_scope(std::size_t shard) const {
  return db::Scope::background(db::Tenant::every_org_on(shard), db_.options().query_timeout);
}

asio::awaitable<void> EventHub::run() {
  auto executor = co_await asio::this_coro::executor;
  {
    std::lock_guard lock(mutex_);
    executor_ = executor;
  }
  if (options_.redis) {
    redis_ = std::make_unique<pubsub::RedisChannel>(
        *options_.redis, std::string(kRecordsChannel),
        [this](std::string_view payload) {
          mark_due(payload);
          std::lock_guard lock(mutex_);
          wake_pump();
        },
        [this] { mark_all_due(); });
    redis_->start();
  } else {
    asio::co_spawn(executor, listen(), core::failure_handler("record event listener", nullptr));
  }
  co_await pump();
  if (redis_) redis_->stop();
  std::lock_guard lock(mutex_);
  executor_.reset();
}

void EventHub::stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  wake_pump();
}

void EventHub::mark_all_due() {
  std::lock_guard lock(mutex_);
  for (auto& [key, org] : orgs_) org.due = true;
  wake_pump();
}

asio::awaitable<void> EventHub::listen() {
  co_await db::listen(listen_, std::string(kRecordsChannel),
                      {[this] {
                         std::lock_guard lock(mutex_);
                         return stopping_;
                       },
                       // Whatever was announced while nobody listened: read every org again.
                       [this] { mark_all_due(); },
                       [this](const std::vector<db::Notification>& batch) {
                         for (const auto& n : batch) mark_due(n.payload);
                         std::lock_guard lock(mutex_);
                         wake_pump();
                       },
                       [] {}});
}

asio::awaitable<void> EventHub::pump() {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  bool woken = false;
  wake_ = [&] {
    woken = true;
    timer.cancel();
  };
  // The fallback read of every org; off (never due) at a zero interval.
  auto poll_after = [&] {
    return options_.poll_interval.count() == 0
               ? std::chrono::steady_clock::time_point::max()
               : std::chrono::steady_clock::now() + options_.poll_interval;
  };
  auto next_poll = poll_after();
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    co_await announce();
    if (std::chrono::steady_clock::now() >= next_poll) {
      mark_all_due();
      next_poll = poll_after();
    }
    bool more = false;
    if (!co_await read_due()) {
      // The database is unwell: try again a little later rather than spin.
      timer.expires_after(std::chrono::milliseconds(200));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      more = !unannounced_.empty() ||
             std::any_of(orgs_.begin(), orgs_.end(), [](const auto& o) { return o.second.due; });
    }
    if (more) continue;
    if (!woken) {
      timer.expires_at(next_poll);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    woken = false;
  }
  wake_ = nullptr;
}

asio::awaitable<void> EventHub::announce() {
  json::array payloads;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [org, seq] : unannounced_)
      payloads.emplace_back(org + ":" + std::to_string(seq));
    unannounced_.clear();
    // This process's own subscribers need no round trip through NOTIFY.
  }
  if (payloads.empty()) co_return;
  for (const auto& p : payloads) mark_due(p.get_string());
  if (redis_) {
    for (const auto& p : payloads) redis_->publish(std::string(p.get_string()));
    co_return;
  }
  Params params(db::Json{json::serialize(payloads)});
  auto sent = co_await db_.query(Intent::write, background_scope(), kAnnounce, params);
  if (!sent) spdlog::warn("announcing record events failed: {}", sent.error().for_log());
}

asio::awaitable<bool> EventHub::read_due() {
  struct Reading {
    std::int64_t after;
    std::uint64_t generation;
  };
  std::unordered_map<std::string, Reading> reading;
  std::vector<audit::ReadFrom> request;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, org] : orgs_) {
      if (!org.due) continue;
      org.due = false;
      reading[key] = {org.read, org.generation};
      if (auto id = db::Uuid::parse(key)) request.push_back({*id, org.read});
    }
  }
  if (request.empty()) co_return true;
  // One read per shard, for the due orgs it holds; an org that could not be read stays due.
  std::map<std::size_t, std::vector<audit::ReadFrom>> by_shard;
  std::vector<db::Uuid> unread;
  auto control = background_scope();
  for (const auto& from : request) {
    auto shard = co_await db_.shard_of(from.org_id, control);
    if (shard) {
      by_shard[*shard].push_back(from);
    } else {
      spdlog::warn("reading record events failed: {}", shard.error().for_log());
      unread.push_back(from.org_id);
    }
  }
  std::vector<audit::Entry> entries;
  for (const auto& [shard, from] : by_shard) {
    auto read = co_await audit::entries_after(db_, background_scope(shard), from, kReadLimit);
    if (read) {
      entries.insert(entries.end(), std::make_move_iterator(read->begin()),
                     std::make_move_iterator(read->end()));
      continue;
    }
    spdlog::warn("reading record events failed: {}", read.error().for_log());
    for (const auto& f : from) unread.push_back(f.org_id);
  }
  if (!unread.empty()) {
    std::lock_guard lock(mutex_);
    for (const auto& id : unread) {
      if (auto it = orgs_.find(id.to_string()); it != orgs_.end()) it->second.due = true;
    }
  }
  struct Read {
    std::int64_t last = 0;
    std::int32_t entries = 0;
    std::vector<EventPtr> events;
  };
  std::unordered_map<std::string, Read> read;
  for (const auto& entry : entries) {
    auto& r = read[entry.org_id.to_string()];
    r.last = std::max(r.last, entry.seq);
    ++r.entries;
    append_events_of(r.events, entry);
  }
  std::lock_guard lock(mutex_);
  for (auto& [key, r] : read) {
    auto it = orgs_.find(key);
    // Recreated meanwhile (its subscribers replay from their own position): read it afresh.
    if (it == orgs_.end() || it->second.generation != reading[key].generation) continue;
    auto& org = it->second;
    org.read = std::max(org.read, r.last);
    if (r.entries >= kReadLimit) org.due = true;
    for (const auto& event : r.events) {
      for (const auto& subscriber : org.subscribers) {
        if (subscriber->collection() == event->collection) subscriber->push(event);
      }
    }
  }
  co_return unread.empty();
}

}  // namespace liftoff::records
