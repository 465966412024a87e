// The layers of src/liftoff (docs/architecture.md, "Layers"): a directory includes only its own
// headers and those of the layers below it, so the code keeps the shape the architecture shows.
// Read from the sources themselves: a new include of a higher layer fails here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

namespace liftoff {
namespace {
namespace fs = std::filesystem;

// Each layer and what it may include besides itself. identity and records are siblings: neither
// includes the other (the api layer composes them).
const std::map<std::string, std::set<std::string>>& allowed() {
  static const std::map<std::string, std::set<std::string>> layers{
      {"core", {}},
      {"trace", {"core"}},
      {"http", {"core", "trace"}},
      {"db", {"core", "trace"}},
      {"pubsub", {"core"}},
      {"plans", {"core"}},
      {"ratelimit", {"core", "pubsub"}},
      {"usage", {"core", "db", "audit", "plans"}},
      {"audit", {"core", "db"}},
      {"identity", {"core", "db", "audit", "jobs", "mail", "notify", "plans", "trace"}},
      {"records", {"core", "db", "audit", "pubsub", "plans", "trace"}},
      {"jobs", {"core", "db", "trace"}},
      {"webhooks", {"core", "db", "audit", "jobs", "plans", "trace"}},
      {"mail", {"core"}},
      {"notify", {"core", "db"}},
      {"shards", {"core", "db", "identity"}},
      {"api",
       {"core", "http", "db", "pubsub", "plans", "ratelimit", "audit", "identity", "records",
        "jobs", "webhooks", "mail", "notify", "usage"}},
      {"app",
       {"core", "http", "db", "pubsub", "plans", "ratelimit", "audit", "identity", "records",
        "jobs", "webhooks", "mail", "notify", "usage", "api", "shards", "trace"}},
  };
  return layers;
}

TEST(Layers, NoLayerIncludesOneAboveIt) {
  static const std::regex kInclude(R"re(#include "liftoff/([a-z_]+)/)re");
  std::size_t includes = 0;
  std::set<std::string> layers_seen;
  for (const auto& entry : fs::recursive_directory_iterator(LIFTOFF_SOURCE_DIR "/src/liftoff")) {
    if (!entry.is_regular_file()) continue;
    auto relative = fs::relative(entry.path(), LIFTOFF_SOURCE_DIR "/src/liftoff");
    auto layer = relative.begin()->string();
    if (relative.has_parent_path() == false) continue;  // files at the top (CMakeLists.txt)
    auto rules = allowed().find(layer);
    ASSERT_NE(rules, allowed().end())
        << "src/liftoff/" << layer << " is not a known layer: add it to this test and to "
        << "docs/architecture.md";
    layers_seen.insert(layer);
    std::ifstream in(entry.path());
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      std::smatch match;
      if (!std::regex_search(line, match, kInclude)) continue;
      ++includes;
      auto target = match[1].str();
      EXPECT_TRUE(target == layer || rules->second.contains(target))
          << relative.string() << ":" << number << " (" << layer << ") includes " << target
          << ", a layer it may not depend on";
    }
  }
  EXPECT_EQ(layers_seen.size(), allowed().size());
  EXPECT_GT(includes, 100u);  // the reader found the includes (it would pass vacuously otherwise)
}

}  // namespace
}  // namespace liftoff
