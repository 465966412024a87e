// Record events without a database: the in-memory filter (three-valued, as SQL), event ids, and how
// audit log entries become events.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include "liftoff/records/events.hpp"
#include "liftoff/records/query.hpp"

namespace liftoff::records {
namespace {
namespace json = boost::json;

Schema tickets() {
  auto schema = Schema::parse(json::parse(R"([
    {"name": "title", "type": "text", "required": true},
    {"name": "status", "type": "enum", "values": ["open", "closed"], "indexed": true},
    {"name": "priority", "type": "integer", "indexed": true},
    {"name": "score", "type": "number"},
    {"name": "due", "type": "datetime"},
    {"name": "done", "type": "boolean"},
    {"name": "tags", "type": "list_of_text"}
  ])"),
                              {});
  EXPECT_TRUE(schema);
  return *schema;
}

const char* kRecord = R"({"id":"0190c3a2-0000-7000-8000-00000000000a","version":3,
  "created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-02-01T00:00:00.000Z",
  "data":{"title":"Printer ON fire","status":"open","priority":2,"score":1.5,
          "due":"2026-03-01T12:00:00.000Z","done":false,"tags":["hw","urgent"]}})";

bool match(std::string_view filter, const char* record = kRecord) {
  auto schema = tickets();
  auto parsed = parse_filter(filter);
  if (!parsed) {
    ADD_FAILURE() << filter << ": " << parsed.error().detail;
    return false;
  }
  auto checked = compile_count(schema, db::Uuid{}, db::Uuid{}, *parsed, std::nullopt);
  if (!checked) {
    ADD_FAILURE() << filter << ": " << checked.error().detail;
    return false;
  }
  return matches(schema, *parsed, json::parse(record).as_object());
}

TEST(EventFilter, ComparesEachTypeAsTheDatabaseDoes) {
  EXPECT_TRUE(match("priority = 2"));
  EXPECT_TRUE(match("priority >= 2 and priority < 3"));
  EXPECT_TRUE(match("score > 1.25"));
  EXPECT_FALSE(match("score > 1.5"));
  EXPECT_TRUE(match("status in ('closed', 'open')"));
  EXPECT_TRUE(match("due > '2026-03-01T11:00:00Z'"));
  EXPECT_TRUE(match("due = '2026-03-01T13:00:00+01:00'"));  // the same instant
  EXPECT_TRUE(match("done = false"));
  EXPECT_TRUE(match("title contains 'on fi'"));  // ASCII case folded
  EXPECT_TRUE(match("title prefix 'Printer'"));
  EXPECT_FALSE(match("title prefix 'printer'"));  // prefix is exact
  EXPECT_TRUE(match("tags contains 'hw'"));
  EXPECT_FALSE(match("tags contains 'h'"));
  EXPECT_TRUE(
      match("version = 3 and created_at < '2026-01-15T00:00:00Z'"
            " and id = '0190C3A2-0000-7000-8000-00000000000A'"));
  EXPECT_TRUE(match("title < 'Q'"));  // code point order: upper case before lower
  EXPECT_FALSE(match("title > 'a'"));
}

TEST(EventFilter, AbsentFieldsAreUnknownNotFalse) {
  const char* sparse = R"({"id":"0190c3a2-0000-7000-8000-00000000000b","version":1,
    "created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-01-01T00:00:00.000Z",
    "data":{"title":"t"}})";
  EXPECT_FALSE(match("priority = 1", sparse));
  EXPECT_FALSE(match("not (priority = 1)", sparse));  // not unknown is unknown
  EXPECT_TRUE(match("priority != 1", sparse));        // IS DISTINCT FROM
  EXPECT_TRUE(match("priority is null and due is null", sparse));
  EXPECT_FALSE(match("priority is not null", sparse));
  EXPECT_TRUE(match("priority = 1 or title = 't'", sparse));  // unknown or true
  EXPECT_FALSE(match("priority = 1 and title = 't'", sparse));
  // unknown and false is false, so its negation is true
  EXPECT_TRUE(match("not (priority = 1 and title = 'x')", sparse));
  EXPECT_FALSE(match("tags contains 'x'", sparse));
  EXPECT_FALSE(match("not (tags contains 'x')", sparse));
}

TEST(EventIds, RoundTripAndRejectEverythingElse) {
  EXPECT_EQ((EventPosition{42, -1}).to_string(), "42");
  EXPECT_EQ((EventPosition{42, 7}).to_string(), "42-7");
  EXPECT_EQ(EventPosition::parse("42"), (EventPosition{42, -1}));
  EXPECT_EQ(EventPosition::parse("42-7"), (EventPosition{42, 7}));
  for (std::string_view bad : {"", "-", "x", "42-", "-42", "+4", "4 2", "42-7-1", "42-x",
                               "99999999999999999999", "1-99999999999"}) {
    EXPECT_FALSE(EventPosition::parse(bad)) << bad;
  }
  EXPECT_LT((EventPosition{42, -1}), (EventPosition{42, 0}));
  EXPECT_LT((EventPosition{42, 9}), (EventPosition{43, -1}));
}

TEST(EventIds, AuditEntriesBecomeRecordEvents) {
  db::Uuid org{};
  std::vector<EventPtr> out;
  std::string rec = R"({"id":"r1","version":2,"data":{"title":"x"}})";
  std::string prev = R"({"id":"r1","version":1,"data":{"title":"w"}})";
  append_record_events(out, org, 5, {}, "record.updated", "tickets", prev, rec);
  append_record_events(out, org, 6, {}, "member.added", "user", std::nullopt, "{}");
  append_record_events(out, org, 7, {}, "records.batch", "tickets", std::nullopt,
                       R"({"changes":[{"op":"created","record":{"id":"a"}},)"
                       R"({"op":"deleted","previous":{"id":"b"}}]})");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0]->type, kUpdated);
  EXPECT_EQ(out[0]->position.to_string(), "5");
  EXPECT_EQ(out[0]->collection, "tickets");
  EXPECT_EQ(json::parse(out[0]->data),
            json::parse(R"({"id":"r1","record":)" + rec + R"(,"previous":)" + prev + "}"));
  EXPECT_EQ(out[1]->position.to_string(), "7-0");
  EXPECT_EQ(out[1]->type, kCreated);
  EXPECT_EQ(out[1]->record_id, "a");
  EXPECT_EQ(out[2]->position.to_string(), "7-1");
  EXPECT_EQ(out[2]->type, kDeleted);
  EXPECT_EQ(json::parse(out[2]->data), json::parse(R"({"id":"b","previous":{"id":"b"}})"));
}

EventPtr event_of(std::int64_t seq, std::size_t bytes) {
  auto e = std::make_shared<RecordEvent>();
  e->position = {seq, -1};
  e->data.assign(bytes, 'x');
  return e;
}

// A subscriber that falls behind holds at most its bounds; past either, what waited is dropped
// (memory back at once), it says so, and it takes nothing more: its stream ends and the client
// resumes from its last position.
TEST(Subscriber, PastItsBoundsItDropsTheQueueAndTakesNoMore) {
  boost::asio::io_context io;
  int wakes = 0;
  auto by_count = std::make_shared<Subscriber>(db::Uuid{}, "tickets", io.get_executor(), 3, 1000);
  by_count->on_push([&] { ++wakes; });
  for (int i = 1; i <= 3; ++i) by_count->push(event_of(i, 10));
  EXPECT_FALSE(by_count->overflowed());
  io.run();
  EXPECT_EQ(wakes, 1);  // one wake for the pushes made before it ran
  auto taken = by_count->take();
  ASSERT_EQ(taken.size(), 3u);
  EXPECT_EQ(taken[2]->position.seq, 3);
  for (int i = 4; i <= 7; ++i) by_count->push(event_of(i, 10));  // the fourth waiting overflows
  EXPECT_TRUE(by_count->overflowed());
  EXPECT_TRUE(by_count->take().empty());
  by_count->push(event_of(8, 10));
  EXPECT_TRUE(by_count->take().empty());

  auto by_bytes = std::make_shared<Subscriber>(db::Uuid{}, "tickets", io.get_executor(), 100, 1000);
  by_bytes->push(event_of(1, 600));
  by_bytes->push(event_of(2, 400));  // exactly at the bound: kept
  EXPECT_FALSE(by_bytes->overflowed());
  EXPECT_EQ(by_bytes->take().size(), 2u);
  by_bytes->push(event_of(3, 600));  // taken events no longer count
  EXPECT_FALSE(by_bytes->overflowed());
  by_bytes->push(event_of(4, 401));
  EXPECT_TRUE(by_bytes->overflowed());
  EXPECT_TRUE(by_bytes->take().empty());
}

}  // namespace
}  // namespace liftoff::records
