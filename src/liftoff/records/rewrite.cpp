// The background rewrite of a collection's records to its current layout after a schema change
// (see RecordService::change_schema and Schema::upgrade).
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "liftoff/db/database.hpp"
#include "liftoff/records/service.hpp"

namespace liftoff::records {
namespace asio = boost::asio;
namespace json = boost::json;

asio::awaitable<Result<std::int64_t>> RecordService::rewrite_some(const db::Scope& scope,
                                                                  std::int32_t limit) {
  auto tx = co_await db_.begin(scope);
  if (!tx) co_return tx.error();
  // The claim's row lock makes this process the collection's only rewriter until commit.
  auto claimed = co_await store_.claim_rewrite(*tx);
  if (!claimed) co_return claimed.error();
  if (!*claimed) co_return std::int64_t{0};
  auto [collection_id, layout, after] = **claimed;
  auto read = co_await store_.collection_by_id(*tx, collection_id, RecordStore::Lock::none);
  if (!read) co_return read.error();
  if (!*read) {  // deleted meanwhile (the cascade removed the claim too)
    auto done = co_await tx->commit();
    if (!done) co_return done.error();
    co_return std::int64_t{0};
  }
  auto collection = std::move(**read);
  const auto& schema = collection.schema;
  if (layout != schema.evolution().layout) after.reset();  // changed again: start over
  auto records =
      co_await store_.outdated_records(*tx, collection_id, schema.evolution().layout, after, limit);
  if (!records) co_return records.error();
  for (auto& r : *records) {
    // Every record here is older than the layout: upgrade it, parsing it once.
    auto data = json::parse(r.data).as_object();
    schema.upgrade(data, r.layout);
    r.data = json::serialize(data);
    r.layout = schema.evolution().layout;
    auto rewritten = co_await store_.rewrite_record(*tx, collection, r, data);
    if (!rewritten) co_return rewritten.error();
  }
  if (static_cast<std::int32_t>(records->size()) == limit) {
    auto advanced = co_await store_.advance_rewrite(*tx, collection_id, schema.evolution().layout,
                                                    records->back().id);
    if (!advanced) co_return advanced.error();
  } else {
    // The pass is complete: every record is at the current layout (writers since the change
    // wrote it). Settle the schema, holding the collection for a moment.
    auto locked = co_await store_.collection_by_id(*tx, collection_id, RecordStore::Lock::update);
    if (!locked) co_return locked.error();
    if (!*locked) co_return make_error(Errc::internal, "the collection went while claimed");
    auto& current = **locked;
    if (current.schema.evolution().layout != schema.evolution().layout) {
      auto restarted = co_await store_.advance_rewrite(
          *tx, collection_id, current.schema.evolution().layout, std::nullopt);
      if (!restarted) co_return restarted.error();
    } else {
      current.schema = current.schema.settled();
      auto stored = co_await store_.store_schema(*tx, current);
      if (!stored) co_return stored.error();
      auto finished = co_await store_.finish_rewrite(*tx, collection_id);
      if (!finished) co_return finished.error();
    }
  }
  auto committed = co_await tx->commit();
  if (!committed) co_return committed.error();
  forget(collection.org_id, collection.name);
  co_return static_cast<std::int64_t>(records->size());
}

}  // namespace liftoff::records
