#pragma once
// The shard outbox (docs/decisions/0021-tenant-shards.md, migrations/control/0023). A change of
// the control plane for an organization whose tenant plane is on another cluster (renaming it,
// its members, keys, invitations, plan) cannot write the org's audit event or job in its own
// transaction: it posts them to the outbox, a table of the control cluster, in that transaction
// (Transaction::post). The relay writes them on the org's shard, in the order they were posted,
// and deletes them from the outbox afterwards. The shard remembers each id it received
// (shard_inbox), so an item relayed again (the relay stopped between the shard's commit and the
// outbox's delete) is written once. Receivers, one per kind of item, are the domains' own code:
// the data tier names no domain's tables.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "liftoff/core/error.hpp"
#include "liftoff/db/value.hpp"

namespace liftoff::db {

class Database;
class Transaction;

// One row a control-plane transaction owes an organization's shard.
struct OutboxItem {
  Uuid id;  // the row's own id (an event's, a job's): written once on the shard
  Uuid org_id;
  std::string kind;  // the receiver that writes it
  std::string body;  // a JSON object, as the receiver reads it
};

// The items' bodies as one JSON array, in their order: what a receiver's statement reads.
[[nodiscard]] std::string bodies_as_array(std::span<const OutboxItem> items);

// Writes items of one kind on a shard, in `tx` (for every org of that shard), in their order.
using OutboxReceiver = std::function<boost::asio::awaitable<Result<void>>(
    Transaction& tx, std::span<const OutboxItem> items)>;

class Outbox {
 public:
  explicit Outbox(Database& database) : database_(database) {}

  // The receiver of `kind`'s items. Register every kind before relaying: an item whose kind has
  // no receiver stays in the outbox (and its shard's other items with it), with an error logged.
  void receive(std::string kind, OutboxReceiver receiver);

  // Writes posted items on their shards, oldest first: those of `org`, or of every org, at most
  // `limit`. Returns how many left the outbox. The items of a shard that fails stay for the next
  // call; relays that run at once each take their own items, in order.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> relay(std::optional<Uuid> org,
                                                                  std::size_t limit = 500);

  // What relay() of every org runs each round in the background: the relay, and every
  // `inbox_retention / 100` the shards' inboxes' ids older than `inbox_retention`.
  [[nodiscard]] boost::asio::awaitable<Result<std::size_t>> sweep(
      std::chrono::hours inbox_retention = std::chrono::hours(24 * 7));

 private:
  // Writes `items` (all of one shard) there, each once, in one transaction.
  [[nodiscard]] boost::asio::awaitable<Result<void>> deliver(std::size_t shard,
                                                             std::span<const OutboxItem> items);

  Database& database_;
  std::map<std::string, OutboxReceiver, std::less<>> receivers_;
  std::chrono::steady_clock::time_point next_prune_{};
};

}  // namespace liftoff::db
