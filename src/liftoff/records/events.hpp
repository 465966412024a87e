#pragma once
// Record events: what GET .../collections/{c}/events streams. The audit log is their source. Every
// record mutation already appends an audit event with the record's state before and after, in its
// transaction, and an org's audit seq is gap-free and in commit order (the chain head's row lock
// serializes the org's writers until they commit). So (org, seq) is a durable, ordered event id,
// and resuming after one is a range read of the audit log.
//
// Fan-out, per process: one EventHub tracks the orgs its subscribers watch and how far it has read
// each org's log. When a process commits a record change it tells its hub (published()); the hub
// NOTIFYs the others (`liftoff_records`, payload "<org>:<seq>", batched, after the commit and off
// the write path) and every hub LISTENs (or, with Redis configured, PUBLISH and SUBSCRIBE on a
// channel of the same name, which spares the database the notifications and the listening
// connections). A hub that learns of new events for an org it tracks
// reads them once, in one query for all such orgs, and hands each to the subscribers of its
// collection; a poll every `poll_interval` covers notifications lost to a crash or a reconnect.
// Filtering and permission checks happen in each subscriber's own thread, in memory.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/connection.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/plans/plans.hpp"
#include "liftoff/pubsub/redis_channel.hpp"

namespace liftoff::db {
class Database;
}

namespace liftoff::records {

inline constexpr std::string_view kRecordsChannel = "liftoff_records";

// What happens to a record, as the audit log's batch events and the event stream name it.
inline constexpr std::string_view kCreated = "created";
inline constexpr std::string_view kUpdated = "updated";
inline constexpr std::string_view kDeleted = "deleted";

// Where an event sits in its org's log: the audit seq, and for a records.batch event the position
// of the change within it (-1 for a single-record event). The SSE id is "seq" or "seq-index".
struct EventPosition {
  std::int64_t seq = 0;
  std::int32_t index = -1;
  auto operator<=>(const EventPosition&) const = default;
  [[nodiscard]] std::string to_string() const;
  // nullopt for anything to_string() cannot have produced.
  [[nodiscard]] static std::optional<EventPosition> parse(std::string_view text);
};

struct RecordEvent {
  db::Uuid org_id;
  EventPosition position;
  std::string collection;
  std::string_view type;  // kCreated, kUpdated or kDeleted
  std::string record_id;
  // The record in its API form, after and before the change (what filters look at).
  std::optional<boost::json::object> record;
  std::optional<boost::json::object> previous;
  std::string data;  // the SSE data: {"id":…,"record":…,"previous":…} (absent members omitted)
  db::Timestamp occurred_at;
};
using EventPtr = std::shared_ptr<const RecordEvent>;

// One subscriber's mailbox. The hub pushes from its thread; the subscriber takes on its own
// executor, where `wake` (set by the subscriber) is called after a push.
class Subscriber : public std::enable_shared_from_this<Subscriber> {
 public:
  // At most `max_queue` events and `max_queue_bytes` of them (by their SSE data's size) wait.
  // `client`: the address it is open from (for EventHubOptions::max_per_client).
  Subscriber(db::Uuid org_id, std::string collection, boost::asio::any_io_executor executor,
             std::size_t max_queue, std::size_t max_queue_bytes, std::string client = {})
      : org_id_(org_id),
        collection_(std::move(collection)),
        client_(std::move(client)),
        executor_(std::move(executor)),
        max_queue_(max_queue),
        max_queue_bytes_(max_queue_bytes) {}

  [[nodiscard]] const db::Uuid& org_id() const { return org_id_; }
  [[nodiscard]] const std::string& client() const { return client_; }
  [[nodiscard]] const std::string& collection() const { return collection_; }

  void push(EventPtr event);
  // On the subscriber's executor: what arrived since the last take.
  [[nodiscard]] std::vector<EventPtr> take();
  // True once more than max_queue events (or max_queue_bytes) waited: the queue was dropped and the
  // subscriber must start over from its last position (a client reconnects with Last-Event-ID).
  [[nodiscard]] bool overflowed();
  // On the subscriber's executor; an empty function stops the calls.
  void on_push(std::function<void()> wake) { wake_ = std::move(wake); }

 private:
  db::Uuid org_id_;
  std::string collection_;
  std::string client_;
  boost::asio::any_io_executor executor_;
  std::size_t max_queue_;
  std::size_t max_queue_bytes_;
  std::mutex mutex_;
  std::vector<EventPtr> queue_;
  std::size_t queue_bytes_ = 0;
  bool overflowed_ = false;
  bool wake_posted_ = false;
  std::function<void()> wake_;  // touched on executor_ only
};

struct EventHubOptions {
  // Where hubs tell each other about commits: Redis pub/sub when set, else PostgreSQL NOTIFY.
  std::optional<pubsub::RedisOptions> redis;
  std::chrono::milliseconds poll_interval{1'000};  // 0: no fallback read
  std::size_t max_subscribers = 10'000;            // per process
  std::size_t max_per_org = 1'000;                 // per organization, per process
  std::size_t max_per_client = 100;                // per client address, per process
  std::size_t max_queue = 10'000;                  // events waiting per subscriber
  std::size_t max_queue_bytes = 8 << 20;  // and their bytes: a stalled client holds no more
};

class EventHub {
 public:
  EventHub(db::Database& database, db::ConnectOptions listen, EventHubOptions options)
      : db_(database), listen_(std::move(listen)), options_(std::move(options)) {}

  [[nodiscard]] const EventHubOptions& options() const { return options_; }

  // Registers `subscriber` for its org's events after seq `after`. Returns the seq up to which the
  // hub had already read the org's log: events in (after, that] are the subscriber's to replay
  // (replay()); later ones arrive in its queue. Refused with unavailable when the process has
  // max_subscribers, too_many_requests when the org has max_per_org or the subscriber's client
  // max_per_client, and with the plan's 402 when `plan` (event_streams) allows no more of the org's
  // in this process.
  [[nodiscard]] Result<std::int64_t> subscribe(const std::shared_ptr<Subscriber>& subscriber,
                                               std::int64_t after,
                                               const plans::Allowance* plan = nullptr);
  void unsubscribe(const std::shared_ptr<Subscriber>& subscriber);

  // A record change of `org` committed here with audit seq `seq`. Thread-safe; never blocks.
  void published(const db::Uuid& org_id, std::int64_t seq);

  struct Replay {
    std::vector<EventPtr> events;           // record events of the collection, oldest first
    std::optional<db::Timestamp> first_at;  // when the first log entry read was written
    std::int64_t read_until = 0;            // the seq of the last log entry read (else `after`)
  };
  // The first `limit` of the org's log entries in (after, until], as the collection's record
  // events: one page of a replay (a replay reads page after page, so it never holds more).
  [[nodiscard]] boost::asio::awaitable<Result<Replay>> replay(const db::Scope& scope,
                                                              std::string_view collection,
                                                              std::int64_t after,
                                                              std::int64_t until,
                                                              std::int32_t limit);

  // LISTENs, announces and reads until stop(). Spawn on one worker.
  [[nodiscard]] boost::asio::awaitable<void> run();
  void stop();

 private:
  struct OrgState {
    std::int64_t read = 0;         // every log entry up to here was handed out
    std::uint64_t generation = 0;  // changes when the state is recreated
    bool due = true;               // read soon
    std::vector<std::shared_ptr<Subscriber>> subscribers;
  };
  [[nodiscard]] boost::asio::awaitable<void> listen();
  [[nodiscard]] boost::asio::awaitable<void> pump();
  [[nodiscard]] boost::asio::awaitable<void> announce();
  // False when the read failed (the orgs stay due).
  [[nodiscard]] boost::asio::awaitable<bool> read_due();
  void mark_due(std::string_view payload);
  // Reading and announcing the log for every org (a statement's worth of time).
  // Every org of `shard` (main: where the hub's NOTIFY goes).
  [[nodiscard]] db::Scope background_scope(std::size_t shard = 0) const;
  void mark_all_due();
  void wake_pump();

  db::Database& db_;
  db::ConnectOptions listen_;
  EventHubOptions options_;
  std::mutex mutex_;
  std::unordered_map<std::string, OrgState> orgs_;  // by org id text
  std::unordered_map<std::string, std::int64_t> unannounced_;
  std::unordered_map<std::string, std::size_t> clients_;  // open subscribers by client address
  std::size_t subscribers_ = 0;
  std::uint64_t generations_ = 0;
  bool stopping_ = false;
  bool wake_posted_ = false;
  std::optional<boost::asio::any_io_executor> executor_;  // the pump's, once run() started
  std::function<void()> wake_;                            // on executor_: cuts the pump's wait
  std::unique_ptr<pubsub::RedisChannel> redis_;           // when options_.redis
};

// The record events one audit log entry holds (none for other actions). Exposed for tests.
void append_record_events(std::vector<EventPtr>& out, const db::Uuid& org_id, std::int64_t seq,
                          db::Timestamp occurred_at, std::string_view action,
                          std::string_view target_type, const std::optional<std::string>& before,
                          const std::optional<std::string>& after);

}  // namespace liftoff::records
