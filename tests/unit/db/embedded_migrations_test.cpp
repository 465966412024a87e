// The binary carries exactly the migrations in migrations/control (an edited file once did not
// reach the build until CMake was re-run by hand).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "liftoff/db/migrations.hpp"

namespace liftoff::db {
namespace {

TEST(EmbeddedMigrations, MatchTheFilesOnDisk) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(LIFTOFF_MIGRATIONS_DIR)) {
    if (entry.path().extension() == ".sql") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  const auto& embedded = embedded_migrations();
  ASSERT_EQ(embedded.size(), files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    std::ifstream in(files[i]);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(embedded[i].sql, text.str()) << files[i] << " differs from the built-in copy";
  }
}

}  // namespace
}  // namespace liftoff::db
