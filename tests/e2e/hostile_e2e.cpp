// Requests an attacker would send to make one request cost the server unbounded memory: a batch
// over large records, an export and a replay of large audit events, pages of large records with
// their expansions. Each gets a precise answer or a streamed one, and the server's peak resident
// memory grows by less than a stated bound while it runs (the attacks move far more data than that
// through the server).
#include <fstream>
#include <set>
#include <sstream>

#include "e2e/records_support.hpp"
#include "support/event_stream.hpp"

namespace liftoff::testing {
namespace {

// What this server may hold for one request, and the attack data sizes that dwarf it.
constexpr std::size_t kBudget = 4 << 20;            // request_budget
constexpr std::size_t kPageBudget = 1536 << 10;     // page_budget: two large docs, not three
constexpr std::size_t kAuditValueLimit = 16 << 10;  // audit_value_limit
constexpr std::int64_t kGrowthBoundKb = 64 * 1024;  // peak RSS growth allowed during an attack

// A field of /proc/<pid>/status, in kB (VmRSS, VmHWM).
std::int64_t status_kb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

// Measures how far the process's resident memory peaks above where it stood when made.
class PeakGrowth {
 public:
  explicit PeakGrowth(pid_t pid) : pid_(pid) {
    std::ofstream("/proc/" + std::to_string(pid) + "/clear_refs") << "5";  // VmHWM := VmRSS
    start_kb_ = status_kb(pid, "VmRSS");
  }
  [[nodiscard]] std::int64_t kb() const { return status_kb(pid_, "VmHWM") - start_kb_; }

 private:
  pid_t pid_;
  std::int64_t start_kb_ = 0;
};

class Hostile : public E2E {
 protected:
  static void SetUpTestSuite() {
    start({
        {"LIFTOFF_BODY_LIMIT", "1m"},
        {"LIFTOFF_JSON_MAX_STRING_LENGTH", "64k"},
        {"LIFTOFF_REQUEST_BUDGET", std::to_string(kBudget)},
        {"LIFTOFF_PAGE_BUDGET", std::to_string(kPageBudget)},
        {"LIFTOFF_AUDIT_VALUE_LIMIT", std::to_string(kAuditValueLimit)},
        {"LIFTOFF_REQUEST_TIMEOUT", "30s"},
        {"LIFTOFF_ORG_READ_RATE", "0"},  // these tests read far past it, on purpose
        // A small quarantine, so freed memory counts as freed (sanitizer builds only).
        {"ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:quarantine_size_mb=16"},
    });
  }
  static pid_t pid() { return server_->process->pid(); }
};

// A docs collection whose records are about 700 kB each (eleven 64 kB strings).
std::vector<std::string> create_large_docs(const Tenant& t, int n) {
  auto r = send_json(t.port, "POST", t.base, t.owner.token,
                     R"({"name":"docs","fields":[{"name":"title","type":"text"},)"
                     R"({"name":"blob","type":"json"}]})");
  EXPECT_EQ(status(r), 201) << (r ? r->body : "");
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    json::array parts;
    for (int p = 0; p < 11; ++p) parts.push_back(json::string(std::string(64000, 'a' + p)));
    auto created = send_json(
        t.port, "POST", t.base + "/docs/records", t.owner.token,
        body_of(json::object{{"title", "doc " + std::to_string(i)}, {"blob", {{"parts", parts}}}}));
    EXPECT_EQ(status(created), 201) << (created ? created->body.substr(0, 300) : "");
    if (status(created) == 201) ids.emplace_back(json_of(*created).at("id").as_string());
  }
  return ids;
}

std::optional<HttpResponse> batch(const Tenant& t, const json::array& operations,
                                  const std::string& prefer = "") {
  std::string headers =
      "Content-Type: application/json\r\nAuthorization: Bearer " + t.owner.token + "\r\n";
  if (!prefer.empty()) headers += "Prefer: " + prefer + "\r\n";
  return http_request(t.port, "POST", t.base + "/docs/records:batch", headers,
                      body_of(json::object{{"operations", operations}}));
}

TEST_F(Hostile, ABatchOverLargeRecordsIsRefusedAtTheBudgetAndAppliesNothing) {
  auto t = new_tenant(port(), "hostile-batch");
  auto ids = create_large_docs(t, 8);
  ASSERT_EQ(ids.size(), 8u);
  // The reported attack: 1,000 empty merge patches over a few large records (about 1.4 GB of
  // record data read and written, echoed and audited had it run).
  json::array operations;
  for (int i = 0; i < 1000; ++i)
    operations.push_back(
        json::object{{"op", "update"}, {"id", ids[i % 8]}, {"data", json::object{}}});
  PeakGrowth growth(pid());
  auto refused = batch(t, operations, "return=representation");
  ASSERT_EQ(status(refused), 413) << (refused ? refused->body : "no answer");
  auto why = problem(*refused);
  EXPECT_EQ(why.at("errors").at(0).at("field"), "operations");
  EXPECT_NE(std::string(why.at("detail").as_string()).find("would read and write"),
            std::string::npos);  // refused up front, from the records' sizes
  RecordProperty("peak_rss_growth_kb", std::to_string(growth.kb()));
  EXPECT_LT(growth.kb(), kGrowthBoundKb);
  // Records written before their sizes were (data_bytes NULL: the estimate falls back to their
  // compressed size, here a few kB): the batch starts, and is rolled back where it passes the
  // budget.
  EXPECT_EQ(count_of("WITH u AS (UPDATE records SET data_bytes = NULL WHERE org_id = $1 "
                     "RETURNING 1) SELECT count(*) FROM u",
                     db::Params(*db::Uuid::parse(t.org))),
            8);
  json::array sixteen(operations.begin(), operations.begin() + 16);  // 22 MB, estimated a few kB
  PeakGrowth running(pid());
  auto rolled_back = batch(t, sixteen, "return=representation");
  ASSERT_EQ(status(rolled_back), 413) << (rolled_back ? rolled_back->body : "no answer");
  EXPECT_NE(
      std::string(problem(*rolled_back).at("detail").as_string()).find("reads and writes more"),
      std::string::npos);
  EXPECT_LT(running.kb(), kGrowthBoundKb);
  // Nothing was applied.
  auto one = send_json(port(), "GET", t.base + "/docs/records/" + ids[0], t.owner.token);
  ASSERT_EQ(status(one), 200);
  EXPECT_EQ(json_of(*one).at("version"), 1);

  // Within the budget: applied, answered minimally, audited within the bound.
  json::array few{json::object{{"op", "update"}, {"id", ids[0]}, {"data", json::object{}}},
                  json::object{{"op", "update"}, {"id", ids[1]}, {"data", json::object{}}}};
  auto minimal = batch(t, few);
  ASSERT_EQ(status(minimal), 200) << minimal->body;
  EXPECT_LT(minimal->body.size(), 1024u);
  EXPECT_EQ(json_of(*minimal).at("results").at(1).at("version"), 2);
  auto echoed = batch(t, few, "return=representation");
  ASSERT_EQ(status(echoed), 200);
  EXPECT_GT(echoed->body.size(), 1'000'000u);  // both records, whole
  EXPECT_EQ(json_of(*echoed).at("results").at(0).at("record").at("version"), 3);
  settle_audit(t);
  // Each record of the batch has its own event, each within the bound.
  auto batch_events = count_of(
      "SELECT count(*) FROM audit_events WHERE org_id = $1 AND action = 'record.updated' AND "
      "octet_length(before::text) <= $2 AND octet_length(after::text) <= $2",
      db::Params(*db::Uuid::parse(t.org), static_cast<std::int64_t>(kAuditValueLimit)));
  EXPECT_EQ(batch_events, 4);  // the two updates of each batch
}

TEST_F(Hostile, ASingleRecordsAuditEventKeepsABoundedBeforeAndAfter) {
  auto t = new_tenant(port(), "hostile-audit");
  auto ids = create_large_docs(t, 1);
  ASSERT_EQ(ids.size(), 1u);
  auto patched = send_json(port(), "PATCH", t.base + "/docs/records/" + ids[0], t.owner.token,
                           R"({"title":"renamed"})");
  ASSERT_EQ(status(patched), 200);
  EXPECT_GT(patched->body.size(), 700'000u);  // the answer is the whole record
  settle_audit(t);
  auto largest = count_of(
      "SELECT max(greatest(octet_length(before::text), octet_length(after::text))) FROM "
      "audit_events WHERE org_id = $1 AND action IN ('record.created', 'record.updated')",
      db::Params(*db::Uuid::parse(t.org)));
  EXPECT_LE(largest, static_cast<std::int64_t>(kAuditValueLimit));
  // What was cut is named with its size and digest; the small field is kept.
  auto kept = count_of(
      "SELECT count(*) FROM audit_events WHERE org_id = $1 AND action = 'record.updated' AND "
      "after->'data'->>'title' = 'renamed' AND after::text LIKE '%\"$cut\"%' AND "
      "after::text LIKE '%\"sha256\"%'",
      db::Params(*db::Uuid::parse(t.org)));
  EXPECT_EQ(kept, 1);
}

// Appends `n` record.updated events of about 120 kB each to the org's log behind the server's
// back, as a version without the audit bound stored them; returns the seq before the first.
std::int64_t append_large_events(const Tenant& t, const std::string& collection, int n) {
  settle_audit(t);  // the server's own events first: nothing of the org is left to seal
  auto org = db::Params(*db::Uuid::parse(t.org));
  auto head = count_of("SELECT last_seq FROM audit_chains WHERE org_id = $1", org);
  auto inserted = count_of(
      "WITH h AS (SELECT last_seq FROM audit_chains WHERE org_id = $1), ins AS (INSERT INTO "
      "audit_events (org_id, seq, id, occurred_at, actor_type, actor_id, action, target_type, "
      "target_id, before, after, ip, user_agent, request_id, prev_hash, hash) SELECT $1, "
      "h.last_seq + g, gen_random_uuid(), now(), 'system', NULL, 'record.updated', $2, "
      "g::text, json_build_object('id', g::text, 'version', 1, 'data', json_build_object('blob', "
      "repeat('b', 60000))), json_build_object('id', g::text, 'version', 2, 'data', "
      "json_build_object('blob', repeat('a', 60000))), '127.0.0.1', 'test', 'test', "
      "''::bytea, ''::bytea FROM h, generate_series(1, $3::int) g RETURNING 1) "
      "SELECT count(*) FROM ins",
      db::Params(*db::Uuid::parse(t.org), collection, n));
  EXPECT_EQ(inserted, n);
  auto moved = count_of(
      "WITH u AS (UPDATE audit_chains SET last_seq = last_seq + $2::int WHERE org_id = $1 "
      "RETURNING last_seq) SELECT last_seq FROM u",
      db::Params(*db::Uuid::parse(t.org), n));
  EXPECT_EQ(moved, head + n);
  return head;
}

TEST_F(Hostile, AnExportOfLargeEventsIsStreamedInBoundedMemory) {
  auto t = new_tenant(port(), "hostile-export");
  append_large_events(t, "docs", 2000);  // about 240 MB of NDJSON
  PeakGrowth growth(pid());
  RawConnection c(port());
  ASSERT_TRUE(c.send("GET /v1/orgs/" + t.org + "/audit/export HTTP/1.1\r\nHost: x\r\n" +
                     "Authorization: Bearer " + t.owner.token + "\r\n\r\n"));
  auto deadline = std::chrono::steady_clock::now() + 120s;
  auto head = c.read_head(deadline);
  ASSERT_TRUE(head);
  ASSERT_EQ(head->status, 200);
  ASSERT_EQ(head->header("transfer-encoding"), "chunked");
  // Decode as it arrives, keeping nothing: count lines and bytes.
  std::size_t lines = 0;
  std::size_t bytes = 0;
  bool ended = false;
  auto& buffer = c.buffer();
  while (!ended) {
    auto line_end = buffer.find("\r\n");
    if (line_end != std::string::npos) {
      auto size = std::stoul(buffer.substr(0, line_end), nullptr, 16);
      if (buffer.size() >= line_end + 2 + size + 2) {
        lines += static_cast<std::size_t>(
            std::count(buffer.begin() + line_end + 2, buffer.begin() + line_end + 2 + size, '\n'));
        bytes += size;
        buffer.erase(0, line_end + 2 + size + 2);
        ended = size == 0;
        continue;
      }
    }
    ASSERT_EQ(c.fill(deadline), RawConnection::Fill::data) << "export cut short";
  }
  EXPECT_EQ(lines, 2001u);  // and the org's creation
  EXPECT_GT(bytes, 200'000'000u);
  RecordProperty("peak_rss_growth_kb", std::to_string(growth.kb()));
  EXPECT_LT(growth.kb(), kGrowthBoundKb);
}

TEST_F(Hostile, AStreamResumedFarBackReplaysPageByPageInBoundedMemory) {
  auto t = new_tenant(port(), "hostile-replay");
  ASSERT_EQ(status(send_json(port(), "POST", t.base, t.owner.token,
                             R"({"name":"docs","fields":[{"name":"blob","type":"json"}]})")),
            201);
  auto from = append_large_events(t, "docs", 1000);  // about 120 MB of events
  PeakGrowth growth(pid());
  EventStream stream(port(), t.base + "/docs/events",
                     "Authorization: Bearer " + t.owner.token +
                         "\r\nLast-Event-ID: " + std::to_string(from) + "\r\n");
  ASSERT_TRUE(stream.open()) << (stream.response() ? stream.response()->body : "no response");
  int received = 0;
  std::string last_id;
  while (received < 1000) {
    auto event = stream.next(60s);
    ASSERT_TRUE(event) << "after " << received << " events";
    ASSERT_EQ(event->event, "updated");
    last_id = event->id;
    ++received;
  }
  EXPECT_EQ(last_id, std::to_string(from + 1000));
  RecordProperty("peak_rss_growth_kb", std::to_string(growth.kb()));
  EXPECT_LT(growth.kb(), kGrowthBoundKb);
}

TEST_F(Hostile, APageOfLargeRecordsEndsAtTheBudgetAndItsCursorContinues) {
  auto t = new_tenant(port(), "hostile-page");
  auto ids = create_large_docs(t, 8);  // about 5.6 MB: two fit in a page
  ASSERT_EQ(ids.size(), 8u);
  ASSERT_EQ(status(send_json(port(), "POST", t.base, t.owner.token,
                             R"({"name":"refs","fields":[{"name":"doc","type":"relation",)"
                             R"("collection":"docs"}]})")),
            201);
  for (const auto& id : ids) {
    ASSERT_EQ(status(send_json(port(), "POST", t.base + "/refs/records", t.owner.token,
                               body_of(json::object{{"doc", id}}))),
              201);
  }
  // Follows a list's cursors; returns the records' ids and the size of the largest page.
  auto walk = [&](const std::string& path, bool expanded) {
    std::set<std::string> seen;
    std::size_t pages = 0;
    std::string cursor;
    for (;;) {
      auto r = send_json(port(), "GET", path + (cursor.empty() ? "" : "&cursor=" + encode(cursor)),
                         t.owner.token);
      EXPECT_EQ(status(r), 200);
      if (status(r) != 200) break;
      EXPECT_LT(r->body.size(), kPageBudget + 64 * 1024);  // nothing past the budget is sent
      auto page = json_of(*r);
      const auto& records = page.at("records").as_array();
      EXPECT_EQ(records.size(), 2u) << "each page holds the two records that fit";
      for (const auto& record : records) {
        seen.emplace(record.at("id").as_string());
        if (expanded) {  // each kept record is expanded whole
          const auto& doc = record.at("data").at("doc");
          EXPECT_TRUE(doc.is_object() && doc.as_object().contains("data")) << "not expanded";
        }
      }
      ++pages;
      if (page.at("next_cursor").is_null() || pages > 8) break;  // 4 pages expected
      cursor = std::string(page.at("next_cursor").as_string());
    }
    EXPECT_EQ(pages, 4u) << path;
    return seen;
  };
  PeakGrowth growth(pid());
  auto docs = walk(t.base + "/docs/records?limit=200", false);
  EXPECT_EQ(docs, std::set<std::string>(ids.begin(), ids.end()));
  auto refs = walk(t.base + "/refs/records?limit=200&expand=doc", true);
  EXPECT_EQ(refs.size(), 8u);
  RecordProperty("peak_rss_growth_kb", std::to_string(growth.kb()));
  EXPECT_LT(growth.kb(), kGrowthBoundKb);
}

}  // namespace
}  // namespace liftoff::testing
