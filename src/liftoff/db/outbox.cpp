#include "liftoff/db/outbox.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <set>
#include <utility>
#include <vector>

#include "liftoff/db/database.hpp"

namespace liftoff::db {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// The time one relay (or delivery to one shard) may take.
constexpr auto kRelayBudget = std::chrono::seconds(10);

constexpr Statement kPost{
    Plane::control, "outbox.post",
    "INSERT INTO shard_outbox (id, org_id, shard, kind, body) VALUES ($1, $2, $3, $4, $5::jsonb)"};
// The oldest items (of the org in $1, or of every org), locked in order: a relay that runs at the
// same time waits for them and finds them gone, so each org's items reach its shard in order.
constexpr Statement kTake{
    Plane::control, "outbox.take",
    "SELECT id, org_id, shard, kind, body::text FROM shard_outbox "
    "WHERE ($1::uuid IS NULL OR org_id = $1) ORDER BY seq LIMIT $2 FOR UPDATE"};
// $1: a JSON array of the ids written on their shards.
constexpr Statement kDone{Plane::control, "outbox.done",
                          "DELETE FROM shard_outbox WHERE id IN "
                          "(SELECT jsonb_array_elements_text($1::jsonb)::uuid)"};
// $1: a JSON array of {id, org_id}; returns the ids this shard had not received yet.
constexpr Statement kReceive{Plane::tenant, "outbox.receive",
                             "INSERT INTO shard_inbox (id, org_id) SELECT i.id, i.org_id "
                             "FROM jsonb_to_recordset($1::jsonb) AS i(id uuid, org_id uuid) "
                             "ON CONFLICT (id) DO NOTHING RETURNING id"};
// At most 10,000 ids received more than $1 seconds ago.
constexpr Statement kPrune{Plane::tenant, "outbox.prune",
                           "DELETE FROM shard_inbox WHERE id IN (SELECT id FROM shard_inbox "
                           "WHERE received_at < now() - $1 * interval '1 second' LIMIT 10000)"};

// Items by a name (their shard, their kind), the names in the order their first item came.
using Groups = std::vector<std::pair<std::string, std::vector<OutboxItem>>>;

// The items of `name` in `groups`, a new group after the others when `name` has none yet.
std::vector<OutboxItem>& group_of(Groups& groups, const std::string& name) {
  auto group =
      std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == name; });
  if (group == groups.end()) group = groups.insert(groups.end(), {name, {}});
  return group->second;
}

}  // namespace

std::string bodies_as_array(std::span<const OutboxItem> items) {
  std::string array = "[";
  for (const auto& item : items) (array += array.size() > 1 ? "," : "") += item.body;
  return array += "]";
}

asio::awaitable<Result<std::size_t>> Transaction::shard_of(const Uuid& org) {
  if (placing_ && placing_->first == org) co_return placing_->second;
  Scope lookup;
  lookup.deadline = options_.deadline;
  co_return co_await options_.database->shard_of(org, lookup);
}

asio::awaitable<Result<bool>> Transaction::holds_tenant(const Uuid& org) {
  if (!options_.database) co_return true;
  auto shard = co_await shard_of(org);
  if (!shard) co_return shard.error();
  co_return *shard == options_.shard;
}

asio::awaitable<Result<void>> Transaction::post(const OutboxItem& item) {
  if (!options_.database) co_return make_error(Errc::internal, "a transaction without a database");
  auto shard = co_await shard_of(item.org_id);
  if (!shard) co_return shard.error();
  Params params(item.id, item.org_id, options_.database->shards()[*shard], item.kind,
                Json{item.body});
  auto posted = co_await execute(kPost, params);
  if (!posted) co_return posted.error();
  if (std::find(posted_.begin(), posted_.end(), item.org_id) == posted_.end())
    posted_.push_back(item.org_id);
  co_return Result<void>{};
}

asio::awaitable<void> Transaction::committed() {
  if (!posted_.empty()) {
    auto orgs = std::move(posted_);
    posted_.clear();
    lease_ = Lease{};  // back to its pool before the relay takes connections of its own
    for (const auto& org : orgs) {
      const std::optional<Uuid> only{org};
      auto relayed = co_await options_.database->outbox().relay(only);
      if (!relayed) {
        spdlog::warn("org {}'s outbox waits for the background relay: {}", org.to_string(),
                     relayed.error().for_log());
      }
    }
  }
  auto actions = std::move(after_commit_);
  after_commit_.clear();
  for (auto& action : actions) action();
}

void Outbox::receive(std::string kind, OutboxReceiver receiver) {
  receivers_[std::move(kind)] = std::move(receiver);
}

asio::awaitable<Result<std::size_t>> Outbox::relay(std::optional<Uuid> org, std::size_t limit) {
  auto scope = Scope::background(Tenant::control(), kRelayBudget);
  auto tx = co_await database_.begin(scope);
  if (!tx) co_return tx.error();
  Params take(org, static_cast<std::int64_t>(limit));
  auto rows = co_await tx->query(kTake, take);
  if (!rows) co_return rows.error();
  Groups by_shard;
  for (int r = 0; r < rows->size(); ++r) {
    auto row = (*rows)[r];
    OutboxItem item{row.get<Uuid>(0), row.get<Uuid>(1), row.get<std::string>(3),
                    row.get<std::string>(4)};
    // The org's shard now: a move may have switched it since the item was posted. The shard
    // recorded then serves an org the directory no longer has (purged).
    auto shard = row.get<std::string>(2);
    auto now_on = co_await database_.find_shard(item.org_id, scope);
    if (now_on && *now_on) shard = database_.shards()[**now_on];
    group_of(by_shard, shard).push_back(std::move(item));
  }
  json::array relayed;
  for (const auto& [name, of_shard] : by_shard) {
    const auto& names = database_.shards();
    auto known = std::find(names.begin(), names.end(), name);
    if (known == names.end()) {
      spdlog::error(
          "the outbox holds {} items for shard {}, which this process's configuration "
          "does not name",
          of_shard.size(), name);
      continue;
    }
    auto delivered = co_await deliver(static_cast<std::size_t>(known - names.begin()), of_shard);
    if (!delivered) {
      spdlog::warn("the outbox's items for shard {} wait: {}", name, delivered.error().for_log());
      continue;
    }
    for (const auto& item : of_shard) relayed.emplace_back(item.id.to_string());
  }
  if (!relayed.empty()) {
    Params done(Json{json::serialize(relayed)});
    auto deleted = co_await tx->execute(kDone, done);
    if (!deleted) co_return deleted.error();
  }
  auto committed = co_await tx->commit();
  if (!committed) co_return committed.error();
  co_return relayed.size();
}

asio::awaitable<Result<void>> Outbox::deliver(std::size_t shard,
                                              std::span<const OutboxItem> items) {
  auto scope = Scope::background(Tenant::every_org_on(shard), kRelayBudget);
  auto tx = co_await database_.begin(scope);
  if (!tx) co_return tx.error();
  json::array ids;
  for (const auto& item : items)
    ids.emplace_back(
        json::object{{"id", item.id.to_string()}, {"org_id", item.org_id.to_string()}});
  Params receive(Json{json::serialize(ids)});
  auto fresh = co_await tx->query(kReceive, receive);
  if (!fresh) co_return fresh.error();
  std::set<std::string> new_ids;
  for (int r = 0; r < fresh->size(); ++r) new_ids.insert((*fresh)[r].get<Uuid>(0).to_string());
  Groups by_kind;  // of the items this shard had not received yet
  for (const auto& item : items) {
    if (new_ids.contains(item.id.to_string())) group_of(by_kind, item.kind).push_back(item);
  }
  for (const auto& [kind, of_kind] : by_kind) {
    auto receiver = receivers_.find(kind);
    if (receiver == receivers_.end()) {
      co_return make_error(Errc::internal, "no receiver for the outbox's " + kind + " items");
    }
    auto written = co_await receiver->second(*tx, of_kind);
    if (!written) co_return written.error();
  }
  co_return co_await tx->commit();
}

asio::awaitable<Result<std::size_t>> Outbox::sweep(std::chrono::hours inbox_retention) {
  auto relayed = co_await relay(std::nullopt);
  if (!relayed) co_return relayed.error();
  auto now = std::chrono::steady_clock::now();
  if (now < next_prune_) co_return *relayed;
  next_prune_ = now + inbox_retention / 100;
  const auto retention_seconds =
      static_cast<std::int64_t>(std::chrono::seconds(inbox_retention).count());
  for (std::size_t shard = 0; shard < database_.shards().size(); ++shard) {
    auto scope = Scope::background(Tenant::every_org_on(shard), kRelayBudget);
    Params prune(retention_seconds);
    auto pruned = co_await database_.query(Intent::write, scope, kPrune, prune);
    if (!pruned) co_return pruned.error();
  }
  co_return *relayed;
}

}  // namespace liftoff::db
