#pragma once
// GET /v1/orgs/{org}/collections/{c}/events: a collection's record changes as Server-Sent Events
// (see records/events.hpp for where they come from). Before each batch of events it sends, and at
// each heartbeat, a stream checks again that its caller may read the collection: through the
// session cache, which revocations and membership changes evict at once, so that costs no query
// unless access changed (and then the stream ends).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "liftoff/db/value.hpp"
#include "liftoff/http/router.hpp"

namespace liftoff::identity {
class IdentityService;
}
namespace liftoff::records {
class EventHub;
class RecordService;
}  // namespace liftoff::records

namespace liftoff::db {
class Database;
}

namespace liftoff::api {

class RateLimits;

struct EventStreamOptions {
  std::chrono::milliseconds heartbeat{15'000};
  std::chrono::milliseconds replay_window{24LL * 3600 * 1000};
  std::size_t max_replay = 10'000;
  // Called with the org and the number of events each time a stream has written some: the org's
  // usage. Thread-safe; must not block.
  std::function<void(const db::Uuid& org, std::int64_t events)> on_delivered;
};

void add_event_routes(http::Router& router, identity::IdentityService& identity,
                      records::RecordService& records, records::EventHub& hub,
                      const EventStreamOptions& options, db::Database& database,
                      RateLimits& limits);

}  // namespace liftoff::api
