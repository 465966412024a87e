// The records query language and schema rules, without a database: parse, type-check, compile.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <optional>
#include <string>

#include "liftoff/records/filter.hpp"
#include "liftoff/records/query.hpp"
#include "liftoff/records/schema.hpp"

namespace liftoff::records {
namespace {

Schema tickets() {
  auto schema = Schema::parse(boost::json::parse(R"([
    {"name": "title", "type": "text", "required": true},
    {"name": "status", "type": "enum", "values": ["open", "closed"], "indexed": true, "required": true},
    {"name": "priority", "type": "integer", "indexed": true, "required": true},
    {"name": "due", "type": "datetime"},
    {"name": "tags", "type": "list_of_text"},
    {"name": "urgent", "type": "boolean"}
  ])"),
                              {});
  EXPECT_TRUE(schema) << (schema ? "" : schema.error().fields[0].message);
  return *schema;
}

std::string error_of(std::string_view filter) {
  auto parsed = parse_filter(filter);
  return parsed ? "" : parsed.error().detail;
}

TEST(Filter, ParsesPrecedenceAndGrouping) {
  auto tree = parse_filter("a = 1 or b = 2 and not (c = 3 or d is null)");
  ASSERT_TRUE(tree);
  const auto& any = std::get<Logical>(tree->node);
  EXPECT_EQ(any.kind, Logical::Kind::any);  // or binds loosest
  ASSERT_EQ(any.children.size(), 2u);
  const auto& all = std::get<Logical>(any.children[1].node);
  EXPECT_EQ(all.kind, Logical::Kind::all);
  EXPECT_EQ(std::get<Logical>(all.children[1].node).kind, Logical::Kind::negate);
}

TEST(Filter, ReadsEveryValueKindAndOperator) {
  auto tree = parse_filter(
      "a in ('x', \"y\\\"z\", -2.5e3) AND b contains 'q' AND c prefix 'p' AND d IS NOT NULL AND e "
      "!= "
      "true");
  ASSERT_TRUE(tree) << tree.error().detail;
  const auto& all = std::get<Logical>(tree->node);
  const auto& in = std::get<Comparison>(all.children[0].node);
  EXPECT_EQ(in.op, CompareOp::in);
  ASSERT_EQ(in.values.size(), 3u);
  EXPECT_EQ(in.values[1].as_string(), "y\"z");
  EXPECT_EQ(in.values[2].as_double(), -2500.0);
  EXPECT_EQ(std::get<Comparison>(all.children[3].node).op, CompareOp::is_not_null);
  EXPECT_EQ(std::get<Comparison>(all.children[4].node).values[0].as_bool(), true);
}

TEST(Filter, SyntaxErrorsNameTheirPosition) {
  EXPECT_EQ(error_of(""), "filter: empty filter at position 0");
  EXPECT_EQ(error_of("a ="), "filter: expected a value, found the end at position 3");
  EXPECT_EQ(error_of("a = 'open"), "filter: unterminated string at position 4");
  EXPECT_EQ(error_of("(a = 1"), "filter: missing ')' for '(' at 0 at position 6");
  EXPECT_EQ(error_of("a = 1 b = 2"), "filter: unexpected 'b' at position 6");
  EXPECT_EQ(error_of("a ~ 1"), "filter: unexpected character '~' at position 2");
  EXPECT_EQ(error_of("and = 1"), "filter: expected a field name, found 'and' at position 0");
  EXPECT_EQ(error_of("a = 1x"), "filter: malformed number '1x' at position 4");
  FilterLimits tight{100, 2, 3, 2};
  EXPECT_FALSE(parse_filter("a = 1 and b = 2 and c = 3", tight));
  EXPECT_FALSE(parse_filter("((((a = 1))))", tight));
  EXPECT_FALSE(parse_filter("a in (1, 2, 3)", tight));
  EXPECT_FALSE(parse_filter(std::string(200, ' ') + "a = 1", tight));
}

TEST(Filter, CompilesToParametersNeverToUserText) {
  ListRequest request;
  request.filter = *parse_filter("title = 'x\\' OR 1=1' or status = 'open' and priority > 2");
  request.sort = *parse_sort("", tickets());
  auto out = compile_list(tickets(), db::Uuid{}, db::Uuid{}, request);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->sql.find("OR 1=1"), std::string::npos);
  EXPECT_NE(out->sql.find("t1 = $"), std::string::npos);  // the indexed field's slot
  EXPECT_NE(out->sql.find("n1 > $"), std::string::npos);
  EXPECT_NE(out->sql.find("(data->>$3)"), std::string::npos);       // title, by parameter
  EXPECT_NE(out->sql.find("ORDER BY id DESC"), std::string::npos);  // newest first by default
}

TEST(Filter, APageBudgetBoundsTheRowsInTheListsOwnOrder) {
  ListRequest request;
  request.filter = *parse_filter("priority = 3");
  request.sort = *parse_sort("-priority", tickets());
  auto bounded = compile_list(tickets(), db::Uuid{}, db::Uuid{}, request, 1 << 20);
  auto unbounded = compile_list(tickets(), db::Uuid{}, db::Uuid{}, request);
  ASSERT_TRUE(bounded && unbounded);
  EXPECT_TRUE(bounded->budget_column);
  EXPECT_FALSE(unbounded->budget_column);
  EXPECT_EQ(bounded->sort_columns, unbounded->sort_columns);
  // One more parameter, the budget, after the limit; the running size follows the page's order.
  ASSERT_EQ(bounded->params.size(), unbounded->params.size() + 1);
  auto budget = "$" + std::to_string(bounded->params.size());
  EXPECT_NE(bounded->sql.find("running <= " + budget), std::string::npos);
  EXPECT_NE(bounded->sql.find("WINDOW w AS (ORDER BY n1 DESC, id DESC ROWS UNBOUNDED PRECEDING) "
                              "ORDER BY n1 DESC, id DESC"),
            std::string::npos)
      << bounded->sql;
  EXPECT_EQ(bounded->generic_plan, unbounded->generic_plan);
}

bool generic_plan(std::string_view filter, std::string_view sort = "",
                  std::optional<std::string> q = std::nullopt) {
  ListRequest request;
  if (!filter.empty()) request.filter = *parse_filter(filter);
  request.q = std::move(q);
  request.sort = *parse_sort(sort, tickets(), request.q.has_value());
  auto out = compile_list(tickets(), db::Uuid{}, db::Uuid{}, request);
  EXPECT_TRUE(out);
  return out && out->generic_plan;
}

TEST(Filter, OnlyListsWhosePlanIgnoresTheValuesArePlannedOnce) {
  // Served in order by an index whatever the values: the primary key, or a slot's index.
  EXPECT_TRUE(generic_plan(""));
  EXPECT_TRUE(generic_plan("", "id"));
  EXPECT_TRUE(generic_plan("priority = 3"));
  EXPECT_TRUE(generic_plan("priority = 3 and status = 'open'"));
  EXPECT_TRUE(generic_plan("id = '00000000-0000-0000-0000-000000000001'"));
  // The best plan depends on how many rows match.
  EXPECT_FALSE(generic_plan("priority > 3"));
  EXPECT_FALSE(generic_plan("priority = 3 or status = 'open'"));
  EXPECT_FALSE(generic_plan("not priority = 3"));
  EXPECT_FALSE(generic_plan("priority in (1, 2)"));
  EXPECT_FALSE(generic_plan("title = 'x'"));                          // not indexed
  EXPECT_FALSE(generic_plan("created_at = '2026-01-01T00:00:00Z'"));  // no index of its own
  EXPECT_FALSE(generic_plan("", "priority"));
  EXPECT_FALSE(generic_plan("priority = 3", "-created_at"));
  EXPECT_FALSE(generic_plan("", "", "urgent"));
}

TEST(SchemaChange, RenamesDropsAndReindexesStartANewLayout) {
  auto schema = tickets();
  auto changed = schema.changed(boost::json::parse(R"({"drop":["tags"],"rename":{"title":"name"},
      "indexed":{"due":true,"status":false}})")
                                    .as_object(),
                                {});
  ASSERT_TRUE(changed) << changed.error().fields[0].field;
  EXPECT_EQ(changed->evolution().layout, 1);
  EXPECT_TRUE(changed->rewriting());
  EXPECT_FALSE(changed->find("title"));
  EXPECT_TRUE(changed->find("name"));
  EXPECT_TRUE(changed->find("due")->building);
  EXPECT_EQ(changed->find("due")->slot, "d1");
  EXPECT_EQ(changed->evolution().draining, (std::vector<std::string>{"t1"}));
  // The drained slot is not handed out again until the rewrite settles.
  auto again = changed->changed(boost::json::parse(R"({"indexed":{"name":true}})").as_object(), {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->find("name")->slot, "t2");
  EXPECT_EQ(again->evolution().layout, 2);
  auto settled = again->settled();
  EXPECT_FALSE(settled.rewriting());
  EXPECT_EQ(settled.evolution().layout, 2);

  // A record written before the change reads as if written after it.
  auto data = boost::json::parse(R"({"title":"t","tags":["a"],"priority":1})").as_object();
  changed->upgrade(data, 0);
  EXPECT_EQ(data, boost::json::parse(R"({"name":"t","priority":1})").as_object());
  // Filters reach old and new records by their layout.
  ListRequest request;
  request.filter = *parse_filter("name = 'x' and due is null");
  request.sort = *parse_sort("", *changed);
  auto out = compile_list(*changed, db::Uuid{}, db::Uuid{}, request);
  ASSERT_TRUE(out);
  EXPECT_NE(out->sql.find("CASE WHEN layout >= 1 THEN data->>$3 ELSE data->>$4 END"),
            std::string::npos)
      << out->sql;
  EXPECT_EQ(out->sql.find("d1"), std::string::npos) << "a building slot is not read yet";
  auto ready = compile_list(changed->settled(), db::Uuid{}, db::Uuid{}, request);
  EXPECT_NE(ready->sql.find("d1 IS NULL"), std::string::npos) << ready->sql;

  auto bad = schema.changed(boost::json::parse(R"({"rename":{"title":"priority","x":"y"},
      "unique":{"title":true},"indexed":{"tags":true}})")
                                .as_object(),
                            {});
  ASSERT_FALSE(bad);
  std::vector<std::string> named;
  for (const auto& f : bad.error().fields) named.push_back(f.field);
  EXPECT_EQ(named,
            (std::vector<std::string>{"rename.title", "rename.x", "indexed.tags", "unique.title"}));
}

TEST(SchemaChange, ADroppedNameAddedAgainIsANewField) {
  auto dropped = tickets().changed(boost::json::parse(R"({"drop":["title"]})").as_object(), {});
  ASSERT_TRUE(dropped);
  auto added = dropped->changed(
      boost::json::parse(R"({"add":[{"name":"title","type":"integer"}]})").as_object(), {});
  ASSERT_TRUE(added);
  auto keys = added->stored_keys("title");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], (std::pair<std::int32_t, std::optional<std::string>>{1, "title"}));
  EXPECT_EQ(keys[1].second, std::nullopt);  // older records' title was another field
  auto old = boost::json::parse(R"({"title":"text of the old field"})").as_object();
  added->upgrade(old, 0);
  EXPECT_TRUE(old.empty());
}

TEST(Filter, TypeMismatchesAndUnknownFieldsAre400s) {
  auto compile = [](std::string_view filter) {
    ListRequest request;
    request.filter = *parse_filter(filter);
    request.sort = *parse_sort("", tickets());
    auto out = compile_list(tickets(), db::Uuid{}, db::Uuid{}, request);
    return out ? std::string() : out.error().detail;
  };
  EXPECT_EQ(compile("colour = 'red'"), "filter: unknown field 'colour' at position 0");
  EXPECT_EQ(compile("priority = 'high'"), "filter: expected a number at position 11");
  EXPECT_EQ(compile("due > 'soon'"), "filter: expected an RFC 3339 date-time string at position 6");
  EXPECT_EQ(compile("tags > 'a'"),
            "filter: this field supports only contains and is null at position 0");
  EXPECT_EQ(compile("priority contains 'x'"),
            "filter: contains needs a text or list field at position 0");
  EXPECT_EQ(compile("id = 'nope'"), "filter: expected a record id at position 5");
  EXPECT_EQ(compile("title = 3"), "filter: expected a string at position 8");
  EXPECT_EQ(compile("urgent = 'yes'"), "filter: expected true or false at position 9");
  EXPECT_EQ(compile("urgent > false"), "filter: booleans compare only with = and != at position 0");
  EXPECT_EQ(compile("tags contains 3"), "filter: expected a string at position 14");
  EXPECT_EQ(compile("priority prefix 'a'"), "filter: prefix needs a text field at position 0");
  EXPECT_EQ(compile("priority >= 1 and status in ('open', 'closed')"), "");
}

TEST(Sort, OnlyRequiredScalarAndSystemFieldsWithAnIdTiebreaker) {
  auto keys = parse_sort("status,-priority", tickets());
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[2].field, "id");
  EXPECT_FALSE(parse_sort("due", tickets()));   // optional
  EXPECT_FALSE(parse_sort("tags", tickets()));  // a list
  EXPECT_FALSE(parse_sort("nope", tickets()));
  EXPECT_FALSE(parse_sort("title,title", tickets()));
  EXPECT_TRUE(parse_sort("-updated_at", tickets()));
}

TEST(Sort, CursorsMustMatchTheirSort) {
  ListRequest request;
  request.sort = *parse_sort("priority", tickets());
  request.cursor = make_cursor(request.sort, {"3", "0190b5b0-0000-7000-8000-000000000000"});
  EXPECT_TRUE(compile_list(tickets(), db::Uuid{}, db::Uuid{}, request));
  request.sort = *parse_sort("-priority", tickets());
  EXPECT_FALSE(compile_list(tickets(), db::Uuid{}, db::Uuid{}, request));  // another sort
  request.cursor = make_cursor(request.sort, {"3; DROP TABLE records", "x"});
  EXPECT_FALSE(compile_list(tickets(), db::Uuid{}, db::Uuid{}, request));
  request.cursor = "%%%";
  EXPECT_FALSE(compile_list(tickets(), db::Uuid{}, db::Uuid{}, request));
}

TEST(Schema, ValidatesRecordsAndFillsDefaults) {
  auto schema = Schema::parse(boost::json::parse(R"([
    {"name": "n", "type": "integer", "default": 7},
    {"name": "when", "type": "datetime", "required": true}
  ])"),
                              {});
  ASSERT_TRUE(schema);
  auto ok = validate_record(
      *schema, boost::json::parse(R"({"when": "2026-01-01T01:00:00+01:00"})").as_object());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->at("n"), 7);
  EXPECT_EQ(ok->at("when"), "2026-01-01T00:00:00.000Z");
  EXPECT_FALSE(validate_record(*schema, boost::json::parse(R"({"when": null})").as_object()));
  EXPECT_FALSE(
      validate_record(*schema, boost::json::parse(R"({"when": "x", "n": 1.5})").as_object()));
  EXPECT_FALSE(
      Schema::parse(boost::json::parse(R"([{"name":"n","type":"integer","default":"x"}])"), {}));
  EXPECT_FALSE(Schema::parse(
      boost::json::parse(R"([{"name":"a","type":"text"},{"name":"a","type":"text"}])"), {}));
  SchemaLimits one{1};
  EXPECT_FALSE(Schema::parse(
      boost::json::parse(R"([{"name":"a","type":"text"},{"name":"b","type":"text"}])"), one));
}

}  // namespace
}  // namespace liftoff::records
