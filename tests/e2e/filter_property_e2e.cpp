// A property of the filter language: for random filters over random records, a list (the SQL
// compiler, run by PostgreSQL) selects exactly the records the in-memory evaluator (what event
// streams filter with) matches, so a list and a live subscription never disagree. Absent fields,
// NULL semantics, case, ordering of text, numbers and times, `in`, `contains`, `prefix` and the
// boolean connectives all take part. The generator is seeded; a failure prints its seed and filter.
#include <random>

#include "e2e/records_support.hpp"
#include "liftoff/records/filter.hpp"
#include "liftoff/records/query.hpp"
#include "liftoff/records/schema.hpp"

namespace liftoff::testing {
namespace {

constexpr const char* kFields = R"([
  {"name": "title", "type": "text", "required": true},
  {"name": "status", "type": "enum", "values": ["open", "closed", "held"], "indexed": true},
  {"name": "priority", "type": "integer", "indexed": true},
  {"name": "score", "type": "number"},
  {"name": "due", "type": "datetime"},
  {"name": "urgent", "type": "boolean"},
  {"name": "tags", "type": "list_of_text"},
  {"name": "note", "type": "text"}
])";

const std::vector<std::string> kWords = {"alpha", "Alpha beta", "beta", "ALPHA", "gamma ray",
                                         "alp",   "b",          "Beta", "zeta"};
const std::vector<std::string> kStatuses = {"open", "closed", "held"};
const std::vector<std::string> kTimes = {"2026-01-01T00:00:00Z", "2026-06-30T12:00:00Z",
                                         "2026-06-30T12:00:00.5Z", "2027-03-01T08:15:00+02:00"};
const std::vector<std::string> kTags = {"a", "b", "c", "A"};

class Generator {
 public:
  explicit Generator(unsigned seed) : rng_(seed) {}

  json::object record() {
    json::object data{{"title", pick(kWords)}};
    if (chance(0.75)) data["status"] = pick(kStatuses);
    if (chance(0.75)) data["priority"] = between(-2, 3);
    if (chance(0.75)) data["score"] = std::vector<double>{-1.5, 0, 0.5, 2.25}[between(0, 3)];
    if (chance(0.75)) data["due"] = pick(kTimes);
    if (chance(0.75)) data["urgent"] = chance(0.5);
    if (chance(0.75)) {
      json::array tags;
      for (const auto& t : kTags)
        if (chance(0.4)) tags.push_back(json::string(t));
      data["tags"] = tags;
    }
    if (chance(0.5)) data["note"] = pick(kWords);
    return data;
  }

  // A filter of at most `depth` levels of connectives.
  std::string filter(int depth) {
    if (depth == 0 || chance(0.4)) return comparison();
    switch (between(0, 2)) {
      case 0:
        return "(" + filter(depth - 1) + ") and (" + filter(depth - 1) + ")";
      case 1:
        return "(" + filter(depth - 1) + ") or (" + filter(depth - 1) + ")";
      default:
        return "not (" + filter(depth - 1) + ")";
    }
  }

 private:
  std::string comparison() {
    static const std::vector<std::string> kOrder = {"=", "!=", "<", "<=", ">", ">="};
    switch (between(0, 10)) {
      case 0:
        return "title " + pick(kOrder) + " " + quoted(pick(kWords));
      case 1:
        return std::string(chance(0.5) ? "title" : "note") + " contains " +
               quoted(pick(kWords).substr(0, static_cast<std::size_t>(between(1, 3))));
      case 2:
        return std::string(chance(0.5) ? "title" : "note") + " prefix " +
               quoted(pick(kWords).substr(0, static_cast<std::size_t>(between(0, 4))));
      case 3:
        return "status " + std::string(chance(0.5) ? "=" : "!=") + " " + quoted(pick(kStatuses));
      case 4:
        return "status in (" + quoted(pick(kStatuses)) + ", " + quoted(pick(kStatuses)) + ")";
      case 5:
        return "priority " + pick(kOrder) + " " + std::to_string(between(-3, 4));
      case 6:
        return "score " + pick(kOrder) + " " +
               std::vector<std::string>{"-1.5", "0", "0.25", "2.25", "3"}[between(0, 4)];
      case 7:
        return "due " + pick(kOrder) + " " + quoted(pick(kTimes));
      case 8:
        return "urgent " + std::string(chance(0.5) ? "=" : "!=") +
               (chance(0.5) ? " true" : " false");
      case 9:
        return "tags contains " + quoted(pick(kTags));
      default:
        return pick(std::vector<std::string>{"status", "priority", "score", "due", "urgent", "tags",
                                             "note"}) +
               (chance(0.5) ? " is null" : " is not null");
    }
  }
  static std::string quoted(const std::string& s) { return "'" + s + "'"; }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  int between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  const std::string& pick(const std::vector<std::string>& from) {
    return from[static_cast<std::size_t>(between(0, static_cast<int>(from.size()) - 1))];
  }
  std::mt19937 rng_;
};

TEST_F(E2E, AListAndTheInMemoryEvaluatorSelectTheSameRecordsForRandomFilters) {
  const unsigned seed = 20261202;
  SCOPED_TRACE("seed " + std::to_string(seed));
  Generator gen(seed);
  auto t = new_tenant(port(), "filter-property");
  auto made = send_json(port(), "POST", t.base, t.owner.token,
                        R"({"name":"items","fields":)" + std::string(kFields) + "}");
  ASSERT_EQ(status(made), 201) << made->body;
  auto schema = records::Schema::parse(json::parse(kFields), records::SchemaLimits{});
  ASSERT_TRUE(schema);

  std::vector<json::object> stored;  // each record in its API form, as the server answered
  for (int i = 0; i < 60; ++i) {
    auto r =
        send_json(port(), "POST", t.base + "/items/records", t.owner.token, body_of(gen.record()));
    ASSERT_EQ(status(r), 201) << r->body;
    stored.push_back(json_of(*r));
  }

  int nonempty = 0;
  for (int i = 0; i < 300; ++i) {
    auto text = gen.filter(3);
    SCOPED_TRACE("filter: " + text);
    auto filter = records::parse_filter(text);
    ASSERT_TRUE(filter) << filter.error().detail;
    ASSERT_TRUE(records::compile_count(*schema, db::Uuid{}, db::Uuid{}, *filter, std::nullopt));
    std::set<std::string> expected;
    for (const auto& record : stored) {
      if (records::matches(*schema, *filter, record)) expected.emplace(record.at("id").as_string());
    }
    auto listed = send_json(
        port(), "GET", t.base + "/items/records?limit=200&filter=" + encode(text), t.owner.token);
    ASSERT_EQ(status(listed), 200) << listed->body;
    std::set<std::string> selected;
    auto page = json_of(*listed);
    for (const auto& record : page.at("records").as_array())
      selected.emplace(record.at("id").as_string());
    EXPECT_EQ(selected, expected);
    nonempty += expected.empty() ? 0 : 1;
  }
  // The generator is not vacuous: most filters select something, and not everything.
  EXPECT_GT(nonempty, 100);
}

}  // namespace
}  // namespace liftoff::testing
