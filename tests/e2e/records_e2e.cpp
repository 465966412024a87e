// End-to-end: collections and records against the real server and database.
#include <zlib.h>
#include <zstd.h>

#include <boost/json/array.hpp>
#include <set>

#include "e2e/e2e.hpp"
#include "e2e/records_support.hpp"
#include "liftoff/records/query.hpp"
#include "support/async.hpp"

namespace liftoff::testing {
namespace {
namespace json = boost::json;

class Records : public E2E {
 public:
  using E2E::port;
};

std::vector<std::string> titles(const HttpResponse& r) {
  std::vector<std::string> out;
  auto body = json_of(r);
  for (const auto& rec : body.at("records").as_array())
    out.emplace_back(rec.at("data").at("title").as_string());
  return out;
}

TEST_F(Records, CollectionsValidateTheirSchema) {
  auto t = new_tenant(port(), "schema");
  create_tickets(t);
  auto got = send_json(port(), "GET", t.base + "/tickets", t.owner.token);
  ASSERT_EQ(status(got), 200);
  auto fields = json_of(*got).at("fields").as_array();
  ASSERT_EQ(fields.size(), 8u);
  EXPECT_EQ(fields[1].at("slot"), "t1");
  EXPECT_EQ(fields[2].at("slot"), "n1");
  EXPECT_EQ(fields[3].at("unique_slot"), "u1");

  EXPECT_EQ(
      status(send_json(port(), "POST", t.base, t.owner.token, R"({"name":"tickets","fields":[]})")),
      409);
  auto bad = send_json(port(), "POST", t.base, t.owner.token,
                       R"({"name":"Bad Name","fields":[{"name":"x","type":"blob"},
                           {"name":"id","type":"text"},{"name":"a","type":"json","indexed":true}]})");
  ASSERT_EQ(status(bad), 422);
  std::set<std::string> named;
  auto bad_problem = problem(*bad);
  for (const auto& e : bad_problem.at("errors").as_array())
    named.insert(std::string(e.at("field").as_string()));
  EXPECT_EQ(named, (std::set<std::string>{"name", "fields[0].type", "fields[1].name",
                                          "fields[2].indexed"}));
  auto too_many = send_json(port(), "POST", t.base, t.owner.token,
                            R"({"name":"n","fields":[{"name":"a","type":"integer","indexed":true},
                                {"name":"b","type":"integer","indexed":true},
                                {"name":"c","type":"integer","indexed":true}]})");
  EXPECT_EQ(status(too_many), 422);
  EXPECT_EQ(status(send_json(port(), "POST", t.base, t.owner.token,
                             R"({"name":"x","fields":[],"extra":1})")),
            400);
  auto relation =
      send_json(port(), "POST", t.base, t.owner.token,
                R"({"name":"r","fields":[{"name":"p","type":"relation","collection":"nope"}]})");
  EXPECT_EQ(status(relation), 422);
}

TEST_F(Records, RolesGovernSchemasAndRecordsAndOtherTenantsSeeNothing) {
  auto t = new_tenant(port(), "roles");
  create_tickets(t);
  auto viewer = sign_up(port(), "rec-viewer"), member = sign_up(port(), "rec-member");
  add_member(t, viewer, "viewer");
  add_member(t, member, "member");
  auto ticket = body_of(json::object{{"title", "T"}, {"status", "open"}, {"priority", 1}});
  EXPECT_EQ(status(send_json(port(), "POST", t.base, member.token, R"({"name":"m","fields":[]})")),
            403);
  EXPECT_EQ(status(send_json(port(), "POST", t.base + "/tickets/records", viewer.token, ticket)),
            403);
  auto created = send_json(port(), "POST", t.base + "/tickets/records", member.token, ticket);
  ASSERT_EQ(status(created), 201);
  std::string id(json_of(*created).at("id").as_string());
  EXPECT_EQ(status(send_json(port(), "GET", t.base + "/tickets/records/" + id, viewer.token)), 200);

  auto other = new_tenant(port(), "other-tenant");
  create_tickets(other);
  // Another org's record id, through my org or theirs: 404 either way.
  EXPECT_EQ(
      status(send_json(port(), "GET", other.base + "/tickets/records/" + id, other.owner.token)),
      404);
  EXPECT_EQ(status(send_json(port(), "GET", t.base + "/tickets/records/" + id, other.owner.token)),
            404);
  auto theirs = send_json(port(), "GET", other.base + "/tickets/records", other.owner.token);
  EXPECT_TRUE(json_of(*theirs).at("records").as_array().empty());
}

TEST_F(Records, CreateReadUpdateDeleteWithVersions) {
  auto t = new_tenant(port(), "crud");
  create_tickets(t);
  auto created = create(t, {{"title", "Printer on fire"},
                            {"status", "open"},
                            {"priority", 2},
                            {"due", "2026-12-01T10:00:00+01:00"},
                            {"tags", json::array{"hw"}},
                            {"meta", json::object{{"floor", 3}}}});
  ASSERT_EQ(status(created), 201) << created->body;
  auto rec = json_of(*created);
  std::string id(rec.at("id").as_string());
  EXPECT_EQ(rec.at("version"), 1);
  EXPECT_EQ(rec.at("data").at("due"), "2026-12-01T09:00:00.000Z");  // normalized to UTC
  EXPECT_EQ(rec.at("data").at("urgent"), false);                    // the default
  auto path = t.base + "/tickets/records/" + id;

  auto got = send_json(port(), "GET", path, t.owner.token);
  ASSERT_EQ(status(got), 200);
  EXPECT_EQ(got->header("etag"), "\"1\"");
  auto auth = "Authorization: Bearer " + t.owner.token + "\r\n";
  EXPECT_EQ(status(http_request(port(), "GET", path, auth + "If-None-Match: \"1\"\r\n")), 304);

  auto patch_headers = auth + "Content-Type: application/merge-patch+json\r\nIf-Match: \"1\"\r\n";
  auto patched = http_request(port(), "PATCH", path, patch_headers,
                              R"({"status":"closed","tags":null,"meta":{"floor":4}})");
  ASSERT_EQ(status(patched), 200) << patched->body;
  auto after = json_of(*patched);
  EXPECT_EQ(after.at("version"), 2);
  EXPECT_EQ(after.at("data").at("status"), "closed");
  EXPECT_FALSE(after.at("data").as_object().contains("tags"));
  EXPECT_EQ(after.at("data").at("title"), "Printer on fire");
  EXPECT_EQ(patched->header("etag"), "\"2\"");

  auto stale = http_request(port(), "PATCH", path, patch_headers, R"({"priority":9})");
  ASSERT_EQ(status(stale), 412);
  EXPECT_EQ(problem(*stale).at("type"), "urn:liftoff:problem:precondition-failed");

  auto put = http_request(port(), "PUT", path,
                          auth + "Content-Type: application/json\r\nIf-Match: \"2\"\r\n",
                          R"({"title":"Replaced","status":"open","priority":1})");
  ASSERT_EQ(status(put), 200) << put->body;
  EXPECT_FALSE(json_of(*put).at("data").as_object().contains("meta"));

  EXPECT_EQ(status(http_request(port(), "DELETE", path, auth + "If-Match: \"2\"\r\n")), 412);
  EXPECT_EQ(status(http_request(port(), "DELETE", path, auth + "If-Match: \"3\"\r\n")), 204);
  EXPECT_EQ(status(send_json(port(), "GET", path, t.owner.token)), 404);
  EXPECT_EQ(status(send_json(port(), "GET", t.base + "/tickets/records/not-an-id", t.owner.token)),
            404);
  EXPECT_EQ(status(send_json(port(), "GET", t.base + "/nope/records/" + id, t.owner.token)), 404);

  // The audit log has every change.
  auto audit = send_json(port(), "GET", "/v1/orgs/" + t.org + "/audit?limit=5", t.owner.token);
  std::vector<std::string> actions;
  auto audit_body = json_of(*audit);
  for (const auto& e : audit_body.at("events").as_array())
    actions.emplace_back(e.at("action").as_string());
  EXPECT_EQ(actions, (std::vector<std::string>{"record.deleted", "record.updated", "record.updated",
                                               "record.created", "collection.created"}));
}

TEST_F(Records, InvalidRecordsNameEveryBadField) {
  auto t = new_tenant(port(), "invalid");
  create_tickets(t);
  auto r = create(t, {{"title", 5},
                      {"status", "pending"},
                      {"priority", 1.5},
                      {"due", "tomorrow"},
                      {"tags", json::array{1}},
                      {"colour", "red"}});
  ASSERT_EQ(status(r), 422);
  std::set<std::string> named;
  auto r_problem = problem(*r);
  for (const auto& e : r_problem.at("errors").as_array())
    named.insert(std::string(e.at("field").as_string()));
  EXPECT_EQ(named, (std::set<std::string>{"title", "status", "priority", "due", "tags", "colour"}));
  auto missing = create(t, {{"title", "x"}});
  ASSERT_EQ(status(missing), 422);
  EXPECT_EQ(problem(*missing).at("errors").as_array().size(), 2u);  // status, priority
  auto long_title =
      create(t, {{"title", std::string(201, 'a')}, {"status", "open"}, {"priority", 1}});
  EXPECT_EQ(status(long_title), 422);
  // Limits of the body itself: depth and string length (config), malformed JSON.
  std::string deep = "{\"meta\":" + std::string(40, '[') + std::string(40, ']') + "}";
  EXPECT_EQ(status(send_json(port(), "POST", t.base + "/tickets/records", t.owner.token, deep)),
            400);
  auto huge = body_of(json::object{{"title", std::string(40 * 1024, 'a')}});
  EXPECT_EQ(status(send_json(port(), "POST", t.base + "/tickets/records", t.owner.token, huge)),
            400);
  EXPECT_EQ(status(send_json(port(), "POST", t.base + "/tickets/records", t.owner.token, "[1]")),
            422);
  EXPECT_EQ(status(send_json(port(), "POST", t.base + "/tickets/records", t.owner.token, "{")),
            400);
}

// A list (weak ETag) goes gzip- or zstd-compressed to a client that accepts it, with Vary; the same
// bytes once unpacked. A record's answer, whose ETag is strong (its version, sent back in
// If-Match), goes as it is.
TEST_F(Records, ListsAreCompressedForClientsThatAcceptIt) {
  auto t = new_tenant(port(), "compressed");
  create_tickets(t);
  std::string id;
  for (int i = 0; i < 30; ++i) {
    auto r = create(t, {{"title", "ticket number " + std::to_string(i)},
                        {"status", "open"},
                        {"priority", i},
                        {"tags", json::array{std::string(60, 'a' + i % 26)}}});
    ASSERT_EQ(status(r), 201);
    id = std::string(json_of(*r).at("id").as_string());
  }
  auto get = [&](const std::string& path, const std::string& accept) {
    return http_request(port(), "GET", path,
                        "Authorization: Bearer " + t.owner.token + "\r\n" +
                            (accept.empty() ? "" : "Accept-Encoding: " + accept + "\r\n"));
  };
  auto list = t.base + "/tickets/records?limit=30";
  auto plain = get(list, "");
  ASSERT_EQ(status(plain), 200);
  ASSERT_GT(plain->body.size(), 2'000u);
  EXPECT_EQ(plain->header("content-encoding"), "");
  // Every answer varies by Origin (CORS), a compressible one by Accept-Encoding too.
  EXPECT_EQ(plain->header("vary"), "Origin, Accept-Encoding");

  auto gzipped = get(list, "gzip, deflate");
  ASSERT_EQ(status(gzipped), 200);
  EXPECT_EQ(gzipped->header("content-encoding"), "gzip");
  EXPECT_EQ(gzipped->header("vary"), "Origin, Accept-Encoding");
  EXPECT_LT(gzipped->body.size(), plain->body.size() / 3);
  std::string unpacked(plain->body.size(), '\0');
  auto length = static_cast<uLongf>(unpacked.size());
  z_stream z{};
  ASSERT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(gzipped->body.data());
  z.avail_in = static_cast<uInt>(gzipped->body.size());
  z.next_out = reinterpret_cast<Bytef*>(unpacked.data());
  z.avail_out = static_cast<uInt>(length);
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  unpacked.resize(z.total_out);
  inflateEnd(&z);
  EXPECT_EQ(unpacked, plain->body);

  auto zstd = get(list, "gzip, deflate, br, zstd");
  ASSERT_EQ(status(zstd), 200);
  EXPECT_EQ(zstd->header("content-encoding"), "zstd");
  std::string out(plain->body.size(), '\0');
  auto n = ZSTD_decompress(out.data(), out.size(), zstd->body.data(), zstd->body.size());
  ASSERT_FALSE(ZSTD_isError(n));
  out.resize(n);
  EXPECT_EQ(out, plain->body);

  EXPECT_EQ(status(get(list, "gzip;q=0, zstd;q=0")), 200);
  EXPECT_EQ(get(list, "gzip;q=0, zstd;q=0")->header("content-encoding"), "");
  // HEAD tells the length of what a GET with the same Accept-Encoding sends.
  auto head =
      http_request(port(), "HEAD", list,
                   "Authorization: Bearer " + t.owner.token + "\r\nAccept-Encoding: gzip\r\n");
  ASSERT_EQ(status(head), 200);
  EXPECT_EQ(head->header("content-encoding"), "gzip");

  auto one = get(t.base + "/tickets/records/" + id, "gzip");
  ASSERT_EQ(status(one), 200);
  EXPECT_EQ(one->header("content-encoding"), "");
}

TEST_F(Records, UniqueFieldsAndIdempotencyKeys) {
  auto t = new_tenant(port(), "unique");
  create_tickets(t);
  json::object ticket{{"title", "A"}, {"status", "open"}, {"priority", 1}, {"code", "T-1"}};
  ASSERT_EQ(status(create(t, ticket)), 201);
  auto dup = create(t, ticket);
  ASSERT_EQ(status(dup), 409);
  EXPECT_EQ(problem(*dup).at("errors").as_array()[0].at("field"), "code");
  // No constraint or index name of the database reaches the client.
  EXPECT_EQ(dup->body.find("records_u"), std::string::npos) << dup->body;
  // A value too long to index is the client's to fix and names its field (it was a 500: a btree
  // entry holds about 2,700 bytes).
  std::string digits;
  for (int i = 0; digits.size() < 3'000; ++i) digits += std::to_string(i * 7919 % 10007);
  ticket["code"] = digits;
  auto too_long = create(t, ticket);
  ASSERT_EQ(status(too_long), 422) << too_long->body;
  EXPECT_EQ(problem(*too_long).at("errors").as_array()[0].at("field"), "code");

  json::object other{{"title", "B"}, {"status", "open"}, {"priority", 1}};
  auto first = create(t, other, "Idempotency-Key: abc-123\r\n");
  ASSERT_EQ(status(first), 201);
  auto again = create(t, other, "Idempotency-Key: abc-123\r\n");
  ASSERT_EQ(status(again), 201);
  EXPECT_EQ(again->body, first->body);
  EXPECT_EQ(again->header("idempotent-replayed"), "true");
  // A 201 names what it made: Location is the record's URL, ETag its version (as a GET answers),
  // on the first answer and on its replay alike.
  auto id = std::string(json_of(*first).at("id").as_string());
  EXPECT_EQ(first->header("location"), t.base + "/tickets/records/" + id);
  EXPECT_EQ(first->header("etag"), "\"1\"");
  EXPECT_EQ(again->header("location"), first->header("location"));
  EXPECT_EQ(again->header("etag"), first->header("etag"));
  auto fetched = send_json(port(), "GET", first->header("location"), t.owner.token);
  ASSERT_EQ(status(fetched), 200);
  EXPECT_EQ(fetched->header("etag"), first->header("etag"));
  other["title"] = "C";
  EXPECT_EQ(status(create(t, other, "Idempotency-Key: abc-123\r\n")), 422);
  auto list = send_json(port(), "GET", t.base + "/tickets/records?count=exact", t.owner.token);
  EXPECT_EQ(json_of(*list).at("count"), 2);  // A and B once
}

// A client that retries before its first attempt answered (a timeout, two tabs, a queue consumer
// run twice) sends the same key concurrently: one record is stored, and every attempt gets its
// answer, the later ones marked as replays.
TEST_F(Records, ConcurrentCreatesWithOneIdempotencyKeyStoreOneRecord) {
  auto t = new_tenant(port(), "idem-race");
  create_tickets(t);
  constexpr int kAttempts = 6;
  std::vector<std::optional<HttpResponse>> answers(kAttempts);
  std::vector<std::thread> threads;
  for (int i = 0; i < kAttempts; ++i) {
    threads.emplace_back([&, i] {
      answers[i] = create(t, {{"title", "once"}, {"status", "open"}, {"priority", 1}},
                          "Idempotency-Key: race-1\r\n");
    });
  }
  for (auto& th : threads) th.join();
  int replays = 0;
  std::set<std::string> bodies;
  for (const auto& a : answers) {
    ASSERT_EQ(status(a), 201) << (a ? a->body : "no answer");
    bodies.insert(a->body);
    if (a->header("idempotent-replayed") == "true") ++replays;
  }
  EXPECT_EQ(bodies.size(), 1u);  // the same record, id and version, in every answer
  EXPECT_EQ(replays, kAttempts - 1);
  auto list = send_json(port(), "GET", t.base + "/tickets/records?count=exact", t.owner.token);
  ASSERT_EQ(status(list), 200);
  EXPECT_EQ(json_of(*list).at("count"), 1);
}

// If-Match takes the ETags this API hands out ("3"); anything else can match no version, so the
// write is refused as a failed precondition and nothing changes.
TEST_F(Records, AMalformedIfMatchIs412AndChangesNothing) {
  auto t = new_tenant(port(), "if-match");
  create_tickets(t);
  auto created = create(t, {{"title", "A"}, {"status", "open"}, {"priority", 1}});
  ASSERT_EQ(status(created), 201);
  std::string path =
      t.base + "/tickets/records/" + std::string(json_of(*created).at("id").as_string());
  auto auth = "Authorization: Bearer " + t.owner.token + "\r\nContent-Type: application/json\r\n";
  for (std::string value :
       {"1", "\"\"", "\"1", "W/\"1\"", "\"one\"", "\"1x\"", "\"-\"", "\"99999999999999999999\""}) {
    auto r = http_request(port(), "PATCH", path, auth + "If-Match: " + value + "\r\n",
                          R"({"priority":2})");
    ASSERT_EQ(status(r), 412) << value << ": " << (r ? r->body : "no answer");
    EXPECT_EQ(problem(*r).at("type"), "urn:liftoff:problem:precondition-failed");
    EXPECT_EQ(status(http_request(port(), "DELETE", path, auth + "If-Match: " + value + "\r\n")),
              412)
        << value;
  }
  auto got = send_json(port(), "GET", path, t.owner.token);
  ASSERT_EQ(status(got), 200);
  EXPECT_EQ(json_of(*got).at("version"), 1);
  EXPECT_EQ(json_of(*got).at("data").at("priority"), 1);
  // "*" matches any current version.
  EXPECT_EQ(
      status(http_request(port(), "PATCH", path, auth + "If-Match: *\r\n", R"({"priority":3})")),
      200);
}

TEST_F(Records, ConcurrentUpdatesWithTheSameIfMatchHaveOneWinner) {
  auto t = new_tenant(port(), "race");
  create_tickets(t);
  auto created = create(t, {{"title", "A"}, {"status", "open"}, {"priority", 1}});
  std::string path =
      t.base + "/tickets/records/" + std::string(json_of(*created).at("id").as_string());
  std::vector<int> codes(6);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      codes[i] =
          status(http_request(port(), "PATCH", path,
                              "Authorization: Bearer " + t.owner.token +
                                  "\r\nContent-Type: application/json\r\nIf-Match: \"1\"\r\n",
                              body_of(json::object{{"priority", i + 10}})));
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(std::count(codes.begin(), codes.end(), 200), 1);
  EXPECT_EQ(std::count(codes.begin(), codes.end(), 412), 5);
}

TEST_F(Records, FiltersSortsAndCursors) {
  auto t = new_tenant(port(), "query");
  create_tickets(t);
  for (int i = 1; i <= 7; ++i) {
    json::object data{{"title", "ticket " + std::to_string(i)},
                      {"status", i % 2 ? "open" : "closed"},
                      {"priority", i},
                      {"tags", i <= 3 ? json::array{"hw"} : json::array{"sw"}}};
    if (i == 7) data["due"] = "2026-12-24T00:00:00Z";
    ASSERT_EQ(status(create(t, data)), 201);
  }
  auto list = [&](const std::string& query) {
    return send_json(port(), "GET", t.base + "/tickets/records?" + query, t.owner.token);
  };
  auto by = [&](const std::string& filter, const std::string& sort = "priority") {
    auto r = list("filter=" + encode(filter) + "&sort=" + sort);
    EXPECT_EQ(status(r), 200) << filter << ": " << (r ? r->body : "");
    return r && r->status == 200 ? titles(*r) : std::vector<std::string>{};
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(by("status = 'open' and priority >= 3"), (V{"ticket 3", "ticket 5", "ticket 7"}));
  EXPECT_EQ(by("status = 'closed' or priority = 1"),
            (V{"ticket 1", "ticket 2", "ticket 4", "ticket 6"}));
  EXPECT_EQ(by("not (priority < 6)"), (V{"ticket 6", "ticket 7"}));
  EXPECT_EQ(by("priority in (2, 4, 99)"), (V{"ticket 2", "ticket 4"}));
  EXPECT_EQ(by("tags contains 'hw' and title contains 'KET 2'"), (V{"ticket 2"}));
  EXPECT_EQ(by("title prefix 'ticket 1'"), (V{"ticket 1"}));
  EXPECT_EQ(by("due is not null"), (V{"ticket 7"}));
  EXPECT_EQ(by("due < '2027-01-01T00:00:00Z'"), (V{"ticket 7"}));
  EXPECT_EQ(by("urgent = false and status != 'open'"), (V{"ticket 2", "ticket 4", "ticket 6"}));
  EXPECT_EQ(by("status = 'open'", "-priority"),
            (V{"ticket 7", "ticket 5", "ticket 3", "ticket 1"}));
  // Form-encoded, as browsers, URLSearchParams and Python's urlencode send it: '+' for a space.
  auto form = list("filter=status+%3D+%27open%27+and+priority+%3E%3D+3&sort=priority");
  ASSERT_EQ(status(form), 200) << form->body;
  EXPECT_EQ(titles(*form), (V{"ticket 3", "ticket 5", "ticket 7"}));
  // Injection attempts are data.
  EXPECT_TRUE(by("title = 'x\\' OR 1=1 --'").empty());
  EXPECT_EQ(status(list("filter=" + encode("title = 'x'' OR 1=1 --'"))), 400);  // SQL quoting: no
  EXPECT_TRUE(by("title = \"'); DROP TABLE records; --\"").empty());

  // Pages of 3 walk every record once, in order, for same-direction and mixed sorts.
  for (std::string sort : {"priority", "-priority", "status,-priority", "-status,title"}) {
    V walked;
    std::string cursor;
    for (int page = 0; page < 5; ++page) {
      auto r = list("limit=3&sort=" + encode(sort) + (cursor.empty() ? "" : "&cursor=" + cursor));
      ASSERT_EQ(status(r), 200) << r->body;
      for (auto& title : titles(*r)) walked.push_back(title);
      auto next = json_of(*r).at("next_cursor");
      if (next.is_null()) break;
      cursor = std::string(next.as_string());
    }
    EXPECT_EQ(walked.size(), 7u) << sort;
    EXPECT_EQ(std::set<std::string>(walked.begin(), walked.end()).size(), 7u) << sort;
  }

  auto fields = list("fields=title&limit=1");
  ASSERT_EQ(status(fields), 200);
  auto first = json_of(*fields).at("records").as_array()[0].at("data").as_object();
  EXPECT_EQ(first.size(), 1u);
  auto counted = list("filter=" + encode("status = 'open'") + "&count=exact&limit=1");
  EXPECT_EQ(json_of(*counted).at("count"), 4);
  auto estimated = list("count=estimate&limit=1");
  ASSERT_EQ(status(estimated), 200);
  EXPECT_TRUE(json_of(*estimated).at("count").is_int64());

  // Bad queries: a precise 400, never a 500.
  for (std::string bad : std::vector<std::string>{
           "filter=" + encode("status = "), "filter=" + encode("(status = 'open'"),
           "filter=" + encode("colour = 'red'"), "filter=" + encode("priority = 'high'"),
           "filter=" + encode("status = 'open' and"), "filter=" + encode("title @ 'x'"),
           "filter=" + encode("tags > 'a'"), "sort=colour", "sort=due", "limit=0", "limit=500",
           "cursor=garbage", "cursor=" + encode("eyJzIjoiLWlkIiwidiI6WyJ4Il19"), "fields=nope",
           "count=maybe", "q=", "q=" + std::string(501, 'a')}) {
    auto r = list(bad);
    ASSERT_EQ(status(r), 400) << bad << ": " << (r ? r->body : "");
  }
  auto syntax = list("filter=" + encode("status = 'open' or or"));
  EXPECT_NE(std::string(problem(*syntax).at("detail").as_string()).find("position 19"),
            std::string::npos)
      << syntax->body;
}

TEST_F(Records, BatchesAreAllOrNothingAndNameTheFailingItem) {
  auto t = new_tenant(port(), "batch");
  create_tickets(t);
  auto first = create(t, {{"title", "A"}, {"status", "open"}, {"priority", 1}});
  std::string a(json_of(*first).at("id").as_string());
  auto count = [&] {
    auto r =
        send_json(port(), "GET", t.base + "/tickets/records?count=exact&limit=1", t.owner.token);
    return json_of(*r).at("count").as_int64();
  };
  auto batch = [&](const json::array& ops) {
    return send_json(port(), "POST", t.base + "/tickets/records:batch", t.owner.token,
                     body_of(json::object{{"operations", ops}}));
  };
  json::object ticket{{"title", "B"}, {"status", "open"}, {"priority", 2}};
  auto ok = batch({json::object{{"op", "create"}, {"data", ticket}},
                   json::object{{"op", "update"},
                                {"id", a},
                                {"if_match", 1},
                                {"data", json::object{{"status", "closed"}}}},
                   json::object{{"op", "create"}, {"data", ticket}}});
  ASSERT_EQ(status(ok), 200) << ok->body;
  // Minimal by default: each result's status, id and version, no record.
  EXPECT_EQ(ok->header("preference-applied"), "return=minimal");
  auto results = json_of(*ok).at("results").as_array();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].at("status"), 201);
  EXPECT_EQ(results[1].at("id").as_string(), a);
  EXPECT_EQ(results[1].at("version"), 2);
  EXPECT_FALSE(results[1].as_object().contains("record"));
  EXPECT_EQ(count(), 3);
  // The records on request (RFC 7240), among other preferences.
  auto echoed = http_request(
      port(), "POST", t.base + "/tickets/records:batch",
      "Content-Type: application/json\r\nAuthorization: Bearer " + t.owner.token +
          "\r\nPrefer: respond-async, return=representation\r\n",
      body_of(json::object{
          {"operations",
           json::array{json::object{
               {"op", "update"}, {"id", a}, {"data", json::object{{"priority", 7}}}}}}}));
  ASSERT_EQ(status(echoed), 200) << echoed->body;
  EXPECT_EQ(echoed->header("preference-applied"), "return=representation");
  auto echoed_result = json_of(*echoed).at("results").at(0);
  EXPECT_EQ(echoed_result.at("record").at("version"), 3);
  EXPECT_EQ(echoed_result.at("record").at("data").at("status"), "closed");
  EXPECT_EQ(echoed_result.at("record").at("data").at("priority"), 7);

  // Invalid items are all named, and nothing is applied.
  auto invalid = batch({json::object{{"op", "create"}, {"data", ticket}},
                        json::object{{"op", "create"}, {"data", json::object{{"title", 5}}}},
                        json::object{{"op", "explode"}}});
  ASSERT_EQ(status(invalid), 422);
  std::set<std::string> named;
  auto invalid_problem = problem(*invalid);
  for (const auto& e : invalid_problem.at("errors").as_array())
    named.insert(std::string(e.at("field").as_string()));
  EXPECT_EQ(named, (std::set<std::string>{"operations[2].op"}));  // shape first
  auto bad_data = batch({json::object{{"op", "create"}, {"data", ticket}},
                         json::object{{"op", "create"}, {"data", json::object{{"title", 5}}}}});
  ASSERT_EQ(status(bad_data), 422);
  EXPECT_NE(bad_data->body.find("operations[1].title"), std::string::npos) << bad_data->body;
  // A stale version in the middle: 412, and the create before it is rolled back.
  auto stale = batch({json::object{{"op", "create"}, {"data", ticket}},
                      json::object{{"op", "delete"}, {"id", a}, {"if_match", 1}}});
  ASSERT_EQ(status(stale), 412) << stale->body;
  EXPECT_NE(stale->body.find("operations[1]"), std::string::npos);
  EXPECT_EQ(count(), 3);
  auto deleted = batch({json::object{{"op", "delete"}, {"id", a}, {"if_match", 3}}});
  ASSERT_EQ(status(deleted), 200);
  EXPECT_EQ(count(), 2);

  json::array too_many;
  for (int i = 0; i < 1001; ++i) too_many.push_back(json::object{{"op", "delete"}, {"id", a}});
  EXPECT_EQ(status(batch(too_many)), 422);
  EXPECT_EQ(status(batch({})), 422);
  EXPECT_EQ(status(send_json(port(), "POST", t.base + "/tickets/records:batch", t.owner.token,
                             R"({"operations":[],"x":1})")),
            400);
}

TEST_F(Records, FullTextSearchFindsWordsRankedAndPages) {
  auto t = new_tenant(port(), "search");
  create_tickets(t);
  auto other = new_tenant(port(), "search-other");
  create_tickets(other);
  for (auto [title, tags] : {std::pair{"Printer on fire", "hardware"},
                             {"printer paper jam, printer offline", "hardware"},
                             {"VPN drops", "network"},
                             {"Replace the printer toner", "supplies"}}) {
    ASSERT_EQ(
        status(create(
            t,
            {{"title", title}, {"status", "open"}, {"priority", 1}, {"tags", json::array{tags}}})),
        201);
  }
  ASSERT_EQ(
      status(create(other, {{"title", "printer elsewhere"}, {"status", "open"}, {"priority", 1}})),
      201);
  auto search = [&](const std::string& q, const std::string& extra = "") {
    auto r =
        send_json(port(), "GET", t.base + "/tickets/records?q=" + encode(q) + extra, t.owner.token);
    EXPECT_EQ(status(r), 200) << q << ": " << (r ? r->body : "");
    return r && r->status == 200 ? titles(*r) : std::vector<std::string>{};
  };
  auto printers = search("printer");
  ASSERT_EQ(printers.size(), 3u);                                // never another org's record
  EXPECT_EQ(printers[0], "printer paper jam, printer offline");  // two mentions rank first
  EXPECT_EQ(search("network").size(), 1u);                       // list-of-text values count
  EXPECT_EQ(search("printer -toner").size(), 2u);                // websearch syntax
  EXPECT_EQ(search("\"paper jam\"").size(), 1u);
  EXPECT_TRUE(search("nothing-like-it").empty());
  EXPECT_EQ(search("printer", "&filter=" + encode("title prefix 'Printer'")).size(), 1u);
  // Pages through ranked results with the cursor.
  std::vector<std::string> walked;
  std::string cursor;
  for (int page = 0; page < 5; ++page) {
    auto r = send_json(
        port(), "GET",
        t.base + "/tickets/records?limit=1&q=printer" + (cursor.empty() ? "" : "&cursor=" + cursor),
        t.owner.token);
    ASSERT_EQ(status(r), 200) << r->body;
    for (auto& title : titles(*r)) walked.push_back(title);
    auto next = json_of(*r).at("next_cursor");
    if (next.is_null()) break;
    cursor = std::string(next.as_string());
  }
  EXPECT_EQ(walked, printers);
  auto counted =
      send_json(port(), "GET", t.base + "/tickets/records?q=printer&count=exact", t.owner.token);
  EXPECT_EQ(json_of(*counted).at("count"), 3);
}

// A record of 900 kB of distinct words (the default body_limit is 1 MB) is accepted and found by
// the words of its first 128 KiB: its whole search vector would pass PostgreSQL's 1 MB (SQLSTATE
// 54000, a 500 before).
TEST(RecordSearch, ARecordOfManyDistinctWordsIsStoredAndSearchable) {
  OwnServer own(Server::Env{{"LIFTOFF_BODY_LIMIT", "1m"}});
  auto t = new_tenant(own.port(), "many-words");
  create_tickets(t);
  json::array many;
  std::string item = "lighthouse ";
  for (int word = 0; many.size() < 1'000;) {
    for (int letter = 0, n = word++; letter < 4; ++letter, n /= 26) item += char('a' + n % 26);
    item += ' ';
    if (item.size() > 890) {
      many.emplace_back(item);
      item.clear();
    }
  }
  auto created =
      create(t, {{"title", "Big"}, {"status", "open"}, {"priority", 1}, {"tags", std::move(many)}});
  ASSERT_EQ(status(created), 201) << (created ? created->body : "");
  auto found = send_json(own.port(), "GET", t.base + "/tickets/records?q=lighthouse&fields=title",
                         t.owner.token);
  ASSERT_EQ(status(found), 200);
  EXPECT_EQ(titles(*found), (std::vector<std::string>{"Big"}));
}

TEST_F(Records, FieldsCanBeAddedToALiveCollection) {
  auto t = new_tenant(port(), "evolve");
  create_tickets(t);
  auto old = create(t, {{"title", "Old"}, {"status", "open"}, {"priority", 1}});
  std::string old_id(json_of(*old).at("id").as_string());
  auto patch = [&](const std::string& body) {
    return http_request(
        port(), "PATCH", t.base + "/tickets",
        "Authorization: Bearer " + t.owner.token + "\r\nContent-Type: application/json\r\n", body);
  };
  auto added = patch(R"({"add":[{"name":"team","type":"enum","values":["a","b"],"indexed":true},
                                {"name":"points","type":"integer","required":true,"default":3}]})");
  ASSERT_EQ(status(added), 200) << added->body;
  auto fields = json_of(*added).at("fields").as_array();
  ASSERT_EQ(fields.size(), 10u);
  EXPECT_EQ(fields[8].at("slot"), "t2");  // after status's t1
  // New writes validate and fill the new fields; existing records simply lack them.
  auto fresh = create(t, {{"title", "New"}, {"status", "open"}, {"priority", 2}, {"team", "b"}});
  ASSERT_EQ(status(fresh), 201) << fresh->body;
  EXPECT_EQ(json_of(*fresh).at("data").at("points"), 3);
  EXPECT_EQ(
      status(create(t, {{"title", "Bad"}, {"status", "open"}, {"priority", 2}, {"team", "z"}})),
      422);
  auto by_team = send_json(
      port(), "GET", t.base + "/tickets/records?filter=" + encode("team = 'b'"), t.owner.token);
  EXPECT_EQ(titles(*by_team), (std::vector<std::string>{"New"}));
  auto without = send_json(
      port(), "GET", t.base + "/tickets/records?filter=" + encode("team is null"), t.owner.token);
  EXPECT_EQ(titles(*without), (std::vector<std::string>{"Old"}));

  EXPECT_EQ(status(patch(R"({"add":[{"name":"title","type":"text"}]})")), 422);  // taken
  EXPECT_EQ(status(patch(R"({"add":[{"name":"must","type":"text","required":true}]})")), 422);
  EXPECT_EQ(status(patch(R"({"add":[{"name":"x","type":"relation","collection":"nope"}]})")), 422);
  EXPECT_EQ(status(patch(R"({"retype":{"title":"integer"}})")), 400);  // not a change we make
  EXPECT_EQ(status(patch(R"({})")), 422);
  auto audit =
      send_json(port(), "GET", "/v1/orgs/" + t.org + "/audit?action=collection.schema_changed",
                t.owner.token);
  EXPECT_EQ(json_of(*audit).at("events").as_array().size(), 1u);
}

// Single-record writes and lists take the collection from the process's schema cache and read it
// again only when it changed: a process whose cache is behind a schema change made elsewhere
// still writes and lists with the current schema, and a collection deleted elsewhere is gone for
// it too.
TEST_F(Records, AProcessBehindASchemaChangeWritesAndListsWithTheCurrentSchema) {
  auto t = new_tenant(port(), "stale-schema");
  create_tickets(t);
  Server other;  // a second process sharing the database, with its own schema cache
  ASSERT_TRUE(other.wait_ready()) << other.process->log();
  Tenant via_other = t;
  via_other.port = other.port;
  auto first = create(via_other, {{"title", "Cached"}, {"status", "open"}, {"priority", 1}});
  ASSERT_EQ(status(first), 201) << first->body;  // `other` now holds the schema
  std::string first_id(json_of(*first).at("id").as_string());

  // Writes with a warm cache read the collection in no statement of their own.
  const std::string for_share =
      R"(db_query_duration_seconds_count{statement="records.collection_for_share"})";
  auto locked_reads = metric(other.port, for_share);
  ASSERT_EQ(status(create(via_other, {{"title", "Warm"}, {"status", "open"}, {"priority", 2}})),
            201);
  EXPECT_EQ(metric(other.port, for_share), locked_reads);

  auto data = [](const std::optional<HttpResponse>& r) {  // a missing field reads as null
    return json_of(*r).at("data").as_object();
  };
  auto add_field = [&](const std::string& field) {
    auto r = send_json(port(), "PATCH", t.base + "/tickets", t.owner.token,
                       R"({"add":[)" + field + "]}");
    ASSERT_EQ(status(r), 200) << r->body;
  };
  // Each change below is made on the first process while `other` has the previous schema cached.
  // Valid under both: the write finds the collection changed and runs again with the new schema.
  add_field(R"({"name":"points","type":"integer","required":true,"default":3})");
  auto plain = create(via_other, {{"title", "Plain"}, {"status", "open"}, {"priority", 4}});
  ASSERT_EQ(status(plain), 201) << plain->body;
  EXPECT_EQ(data(plain)["points"], 3);
  ASSERT_EQ(status(create(via_other, {{"title", "Recache"}, {"status", "open"}, {"priority", 4}})),
            201);
  add_field(R"({"name":"team","type":"enum","values":["a","b"]})");
  auto updated = send_json(other.port, "PATCH", t.base + "/tickets/records/" + first_id,
                           t.owner.token, R"({"team": "b"})");
  ASSERT_EQ(status(updated), 200) << updated->body;
  EXPECT_EQ(data(updated)["team"], "b");
  EXPECT_EQ(data(updated)["points"], 3);
  ASSERT_EQ(status(create(via_other, {{"title", "Recache"}, {"status", "open"}, {"priority", 4}})),
            201);
  // Valid only under the new schema: the cached one calls `area` unknown.
  add_field(R"({"name":"area","type":"text"})");
  auto with_area = create(
      via_other, {{"title", "New field"}, {"status", "open"}, {"priority", 3}, {"area", "north"}});
  ASSERT_EQ(status(with_area), 201) << with_area->body;
  EXPECT_EQ(data(with_area)["area"], "north");
  // Lists read the collection's row version with the org's state: never a schema behind.
  auto list_on_other = [&](const std::string& filter) {
    return send_json(other.port, "GET", t.base + "/tickets/records?filter=" + encode(filter),
                     t.owner.token);
  };
  ASSERT_EQ(status(list_on_other("area = 'north'")), 200);  // `other` caches this schema
  add_field(R"({"name":"zone","type":"text","indexed":true})");
  ASSERT_EQ(
      status(create(t, {{"title", "Zoned"}, {"status", "open"}, {"priority", 1}, {"zone", "z1"}})),
      201);
  auto zoned = list_on_other("zone = 'z1'");
  ASSERT_EQ(status(zoned), 200) << zoned->body;
  EXPECT_EQ(titles(*zoned), (std::vector<std::string>{"Zoned"}));
  // Missing records are still 404 on the optimistic path.
  auto missing = send_json(other.port, "PATCH",
                           t.base + "/tickets/records/018f2d6e-0000-7000-8000-000000000000",
                           t.owner.token, R"({"priority": 6})");
  EXPECT_EQ(status(missing), 404);

  auto gone = http_request(port(), "DELETE", t.base + "/tickets",
                           "Authorization: Bearer " + t.owner.token + "\r\n");
  ASSERT_EQ(status(gone), 204) << gone->body;
  EXPECT_EQ(status(create(via_other, {{"title", "Late"}, {"status", "open"}, {"priority", 1}})),
            404);
  other.process->signal(SIGTERM);
  EXPECT_EQ(other.process->wait(10s), 0);
}

TEST_F(Records, RelationsPointIntoTheSameOrg) {
  auto t = new_tenant(port(), "relations");
  create_tickets(t);
  auto r = send_json(port(), "POST", t.base, t.owner.token,
                     R"({"name":"comments","fields":[{"name":"ticket","type":"relation",
                         "collection":"tickets","required":true,"indexed":true},
                         {"name":"body","type":"text"}]})");
  ASSERT_EQ(status(r), 201) << r->body;
  auto ticket = create(t, {{"title", "A"}, {"status", "open"}, {"priority", 1}});
  std::string id(json_of(*ticket).at("id").as_string());
  auto comment = send_json(port(), "POST", t.base + "/comments/records", t.owner.token,
                           body_of(json::object{{"ticket", id}, {"body", "hi"}}));
  EXPECT_EQ(status(comment), 201) << comment->body;
  // expand= inlines the related record, on lists and single reads.
  auto listed = send_json(port(), "GET", t.base + "/comments/records?expand=ticket", t.owner.token);
  ASSERT_EQ(status(listed), 200) << listed->body;
  auto listed_body = json_of(*listed);
  auto inlined = listed_body.at("records").as_array()[0].at("data").at("ticket");
  EXPECT_EQ(inlined.at("id").as_string(), id);
  EXPECT_EQ(inlined.at("data").at("title"), "A");
  std::string comment_id(json_of(*comment).at("id").as_string());
  auto one = send_json(port(), "GET", t.base + "/comments/records/" + comment_id + "?expand=ticket",
                       t.owner.token);
  ASSERT_EQ(status(one), 200);
  EXPECT_EQ(json_of(*one).at("data").at("ticket").at("version"), 1);
  EXPECT_EQ(
      status(send_json(port(), "GET", t.base + "/comments/records?expand=body", t.owner.token)),
      400);
  EXPECT_EQ(status(send_json(port(), "DELETE", t.base + "/tickets/records/" + id, t.owner.token)),
            204);
  auto dangling_now = send_json(
      port(), "GET", t.base + "/comments/records/" + comment_id + "?expand=ticket", t.owner.token);
  EXPECT_TRUE(json_of(*dangling_now).at("data").at("ticket").is_null());
  auto dangling =
      send_json(port(), "POST", t.base + "/comments/records", t.owner.token,
                body_of(json::object{{"ticket", "0190b5b0-0000-7000-8000-000000000000"}}));
  EXPECT_EQ(status(dangling), 422);
  // A record of another org is no target either.
  auto other = new_tenant(port(), "relations-other");
  create_tickets(other);
  auto foreign = create(other, {{"title", "F"}, {"status", "open"}, {"priority", 1}});
  auto cross = send_json(port(), "POST", t.base + "/comments/records", t.owner.token,
                         body_of(json::object{{"ticket", json_of(*foreign).at("id")}}));
  EXPECT_EQ(status(cross), 422);
}

}  // namespace
}  // namespace liftoff::testing

namespace liftoff::testing {
namespace {

TEST_F(Records, FieldsAreRenamedDroppedAndReindexedWhileRecordsAreRewrittenInTheBackground) {
  auto t = new_tenant(port(), "evolve");
  ASSERT_EQ(status(send_json(port(), "POST", t.base, t.owner.token, R"({"name":"items","fields":[
      {"name": "title", "type": "text", "required": true},
      {"name": "code", "type": "text", "unique": true},
      {"name": "size", "type": "integer"},
      {"name": "color", "type": "text", "indexed": true},
      {"name": "note", "type": "text"}]})")),
            201);
  constexpr int kRecords = 1200;
  for (int b = 0; b < kRecords / 400; ++b) {
    json::array operations;
    for (int i = b * 400; i < (b + 1) * 400; ++i) {
      operations.push_back(
          json::object{{"op", "create"},
                       {"data", json::object{{"title", "item " + std::to_string(i)},
                                             {"code", "C-" + std::to_string(i)},
                                             {"size", i},
                                             {"color", i % 2 ? "red" : "blue"},
                                             {"note", "n"}}}});
    }
    ASSERT_EQ(status(send_json(port(), "POST", t.base + "/items/records:batch", t.owner.token,
                               body_of(json::object{{"operations", operations}}))),
              200);
  }
  auto list = [&](const std::string& filter) {
    auto r = send_json(port(), "GET",
                       t.base + "/items/records?limit=200&sort=id&filter=" + encode(filter),
                       t.owner.token);
    EXPECT_EQ(status(r), 200) << filter << ": " << (r ? r->body : "");
    return r ? json_of(*r).at("records").as_array() : json::array{};
  };
  std::string one_id(list("size = 7").at(0).at("id").as_string());
  std::string untouched_id(list("size = 8").at(0).at("id").as_string());

  // Changes that need the stored records rewritten; bad ones name themselves, nothing changes.
  auto bad =
      send_json(port(), "PATCH", t.base + "/items", t.owner.token,
                R"({"rename":{"nope":"x","size":"id"},"unique":{"color":true},"drop":["zz"]})");
  ASSERT_EQ(status(bad), 422);
  auto bad_fields = json_of(*bad).at("errors").as_array();
  EXPECT_EQ(bad_fields.size(), 4u) << bad->body;
  auto changed = send_json(port(), "PATCH", t.base + "/items", t.owner.token,
                           R"({"rename":{"title":"name"},"drop":["note","code"],
                               "indexed":{"size":true,"color":false}})");
  ASSERT_EQ(status(changed), 200) << changed->body;
  auto collection = json_of(*changed);
  EXPECT_EQ(collection.at("rewriting"), true);
  std::set<std::string> names;
  for (const auto& f : collection.at("fields").as_array()) {
    names.insert(std::string(f.at("name").as_string()));
    if (f.at("name") == "size") {
      EXPECT_EQ(f.at("indexed"), true);
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"name", "size", "color"}));

  // Every read shows the new shape at once, whatever the rewrite has reached.
  auto check_reads = [&](const std::string& when) {
    auto got = send_json(port(), "GET", t.base + "/items/records/" + one_id, t.owner.token);
    ASSERT_EQ(status(got), 200) << when;
    auto data = json_of(*got).at("data").as_object();
    EXPECT_EQ(data.at("name"), "item 7") << when;
    EXPECT_FALSE(data.contains("title") || data.contains("note") || data.contains("code")) << when;
    auto untouched =
        send_json(port(), "GET", t.base + "/items/records/" + untouched_id, t.owner.token);
    ASSERT_EQ(status(untouched), 200) << when;
    EXPECT_EQ(json_of(*untouched).at("version"), 1) << when;  // rewriting is not a change
    EXPECT_EQ(untouched->header("etag"), "\"1\"") << when;
    EXPECT_EQ(list("name = 'item 7'").size(), 1u) << when;
    EXPECT_EQ(list("name prefix 'item 119'").size(), 11u) << when;
    EXPECT_EQ(list("size >= 1190").size(), 10u) << when;
    EXPECT_EQ(list("color = 'red' and size < 10").size(), 5u) << when;
    for (const auto& r : list("size < 3")) {
      EXPECT_TRUE(r.at("data").as_object().contains("name")) << when;
      EXPECT_FALSE(r.at("data").as_object().contains("title")) << when;
    }
  };
  check_reads("before the rewrite");
  // Writes go on meanwhile, in the new shape only.
  EXPECT_EQ(status(send_json(port(), "POST", t.base + "/items/records", t.owner.token,
                             R"({"title":"old shape"})")),
            422);
  ASSERT_EQ(status(send_json(port(), "PATCH", t.base + "/items/records/" + one_id, t.owner.token,
                             R"({"size":7000})")),
            200);
  auto patched = send_json(port(), "GET", t.base + "/items/records/" + one_id, t.owner.token);
  EXPECT_EQ(json_of(*patched).at("data").at("name"), "item 7");
  ASSERT_EQ(status(send_json(port(), "PATCH", t.base + "/items/records/" + one_id, t.owner.token,
                             R"({"size":7})")),
            200);
  // The dropped unique field's slot is still being cleared: a new unique field takes the other.
  ASSERT_EQ(status(send_json(port(), "PATCH", t.base + "/items", t.owner.token,
                             R"({"add":[{"name":"sku","type":"text","unique":true}]})")),
            200);
  EXPECT_EQ(status(send_json(port(), "PATCH", t.base + "/items", t.owner.token,
                             R"({"add":[{"name":"ean","type":"text","unique":true}]})")),
            422);

  // The background rewrite finishes and the schema settles.
  ASSERT_TRUE(eventually(
      [&] {
        auto got = send_json(port(), "GET", t.base + "/items", t.owner.token);
        return status(got) == 200 && json_of(*got).at("rewriting") == false;
      },
      60s))
      << "the rewrite did not finish";
  check_reads("after the rewrite");
  auto where = "collection_id = (SELECT id FROM collections WHERE org_id = '" + t.org +
               "' AND name = 'items')";
  EXPECT_EQ(count_of("SELECT count(*) FROM records WHERE " + where +
                     " AND layout < (SELECT layout FROM collections WHERE org_id = '" + t.org +
                     "' AND name = 'items')"),
            0);
  EXPECT_EQ(count_of("SELECT count(*) FROM records WHERE " + where +
                     " AND (data ? 'title' OR data ? 'note' OR data ? 'code' OR u1 IS NOT NULL)"),
            0);
  EXPECT_EQ(count_of("SELECT count(*) FROM records WHERE " + where + " AND n1 IS NULL"), 0);
  // The cleared unique slot is free again.
  EXPECT_EQ(status(send_json(port(), "PATCH", t.base + "/items", t.owner.token,
                             R"({"add":[{"name":"ean","type":"text","unique":true}]})")),
            200);
}

TEST_F(Records, CachedListsNeverHideACommittedWrite) {
  auto t = new_tenant(port(), "list-cache");
  create_tickets(t);
  Server other;  // a second process sharing the database, with its own list cache
  ASSERT_TRUE(other.wait_ready()) << other.process->log();
  auto path = t.base + "/tickets/records?filter=" + encode("status = 'open'");
  auto count_on = [&](unsigned short on) {
    auto r = send_json(on, "GET", path, t.owner.token);
    EXPECT_EQ(status(r), 200);
    return r ? json_of(*r).at("records").as_array().size() : 0;
  };
  Tenant via_other = t;
  via_other.port = other.port;
  for (int i = 0; i < 5; ++i) {
    // Read on both (filling both caches), write on one, read on the other at once.
    count_on(port());
    count_on(other.port);
    auto& writer = i % 2 ? t : via_other;
    ASSERT_EQ(status(create(writer, {{"title", "T"}, {"status", "open"}, {"priority", i}})), 201);
    EXPECT_EQ(count_on(port()), static_cast<std::size_t>(i + 1));
    EXPECT_EQ(count_on(other.port), static_cast<std::size_t>(i + 1));
  }
  // A polling client revalidates with the ETag: 304 until something in the org changes.
  auto first = send_json(port(), "GET", path, t.owner.token);
  auto tag = first->header("etag");
  ASSERT_FALSE(tag.empty());
  auto conditional =
      "Authorization: Bearer " + t.owner.token + "\r\nIf-None-Match: " + tag + "\r\n";
  EXPECT_EQ(status(http_request(port(), "GET", path, conditional)), 304);
  EXPECT_EQ(status(http_request(other.port, "GET", path, conditional)), 304);
  ASSERT_EQ(status(create(via_other, {{"title", "U"}, {"status", "closed"}, {"priority", 1}})),
            201);
  auto changed = http_request(port(), "GET", path, conditional);
  EXPECT_EQ(status(changed), 200);
  EXPECT_NE(changed->header("etag"), tag);
  // Another query is another answer.
  auto closed =
      send_json(port(), "GET", t.base + "/tickets/records?filter=" + encode("status = 'closed'"),
                t.owner.token);
  EXPECT_EQ(json_of(*closed).at("records").as_array().size(), 1u);
  other.process->signal(SIGTERM);
  EXPECT_EQ(other.process->wait(10s), 0);
}

// A big tenant: one collection with many records. The list query the server compiles for "filtered
// on an indexed field, sorted" must be answered by walking an index, never by sorting the tenant's
// rows. (Speed is measured in bench/run-records, not here.)
TEST_F(Records, ABigCollectionIsFilteredAndSortedByAnIndex) {
  constexpr int kRecords = 1'000'000;
  auto t = new_tenant(port(), "big");
  create_tickets(t);
  auto collection = send_json(port(), "GET", t.base + "/tickets", t.owner.token);
  auto collection_body = json_of(*collection);
  std::string collection_id(collection_body.at("id").as_string());
  auto schema = records::Schema::from_stored(collection_body.at("fields"));
  block_on([&]() -> boost::asio::awaitable<void> {
    auto conn = co_await connect_test();
    std::string seed =
        "INSERT INTO records (collection_id, id, org_id, data, t1, n1) SELECT '" + collection_id +
        "', gen_random_uuid(), '" + t.org +
        "', jsonb_build_object('title', 't' || g, 'status', s, 'priority', g % 100), s, g % 100 "
        "FROM generate_series(1, " +
        std::to_string(kRecords) +
        ") g, LATERAL (SELECT CASE WHEN g % 10 = 0 THEN 'open' ELSE 'closed' END AS s) x; "
        "ANALYZE records;";
    auto seeded = co_await conn->execute_script(seed, db::deadline_after(300s));
    EXPECT_TRUE(seeded) << (seeded ? "" : seeded.error().detail);

    auto org = *db::Uuid::parse(t.org);
    auto id = *db::Uuid::parse(collection_id);
    for (auto [filter, sort, index] : {std::tuple{"status = 'open'", "-id", "records_t1_idx"},
                                       {"priority >= 90", "priority", "records_n1_idx"},
                                       {"status = 'open' and priority = 10", "-id", ""},
                                       {"", "priority", "records_n1_idx"},
                                       {"", "-priority", "records_n1_idx"}}) {
      records::ListRequest request;
      if (*filter) request.filter = *records::parse_filter(filter);
      request.sort = *records::parse_sort(sort, schema);
      auto compiled = records::compile_list(schema, id, org, request);
      EXPECT_TRUE(compiled);
      if (!compiled) continue;
      std::string explain = "EXPLAIN " + compiled->sql;
      db::Statement statement{db::Plane::any, "test.explain", explain, false};
      auto plan = co_await conn->query(statement, compiled->params, db::deadline_after(10s));
      EXPECT_TRUE(plan) << (plan ? "" : plan.error().detail);
      if (!plan) continue;
      std::string text;
      for (int i = 0; i < plan->size(); ++i) text += (*plan)[i].get<std::string>(0) + "\n";
      EXPECT_NE(text.find("Index"), std::string::npos) << filter << "\n" << text;
      if (*index) {
        EXPECT_NE(text.find(index), std::string::npos) << filter << "\n" << text;
      }
      EXPECT_EQ(text.find("Sort"), std::string::npos) << filter << "\n" << text;
      EXPECT_EQ(text.find("Seq Scan"), std::string::npos) << filter << "\n" << text;
    }
    // Slot indexes are sparse: a million records that fill t1 and n1 add nothing to t2's index.
    db::Statement size{db::Plane::any, "test.index_size",
                       "SELECT pg_relation_size('records_t2_idx')", false};
    db::Params none;
    auto bytes = co_await conn->query(size, none, db::deadline_after(10s));
    EXPECT_TRUE(bytes);
    if (bytes) {
      EXPECT_LT(bytes->front().get<std::int64_t>(0), 1 << 20);
    }
  }());
  // And the API answers from it.
  auto page = send_json(port(), "GET",
                        t.base + "/tickets/records?limit=20&filter=status%20%3D%20%27open%27",
                        t.owner.token);
  ASSERT_EQ(status(page), 200);
  EXPECT_EQ(json_of(*page).at("records").as_array().size(), 20u);
}

}  // namespace
}  // namespace liftoff::testing
