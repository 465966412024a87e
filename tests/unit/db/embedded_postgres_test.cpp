// The embedded cluster's memory follows the machine: a quarter of it for shared_buffers within
// [128 MB, 8 GB], half of it as the planner's cache estimate.
#include "liftoff/db/embedded_postgres.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace liftoff::db {
namespace {

constexpr std::uint64_t kGiB = 1024ull * 1024 * 1024;

TEST(EmbeddedPostgres, MemoryFollowsTheMachineWithinBounds) {
  using Lines = std::vector<std::string>;
  EXPECT_EQ(memory_settings(24 * kGiB),
            (Lines{"shared_buffers = 6144MB", "effective_cache_size = 12288MB"}));
  EXPECT_EQ(memory_settings(kGiB / 4),  // a small machine keeps PostgreSQL's own default
            (Lines{"shared_buffers = 128MB", "effective_cache_size = 128MB"}));
  EXPECT_EQ(memory_settings(256 * kGiB),
            (Lines{"shared_buffers = 8192MB", "effective_cache_size = 131072MB"}));
  EXPECT_EQ(memory_settings(0),  // memory unknown
            (Lines{"shared_buffers = 128MB", "effective_cache_size = 128MB"}));
}

// The URL is the socket's while the socket exists and its path fits in a socket address; TCP's
// otherwise.
TEST(EmbeddedPostgres, TheUrlIsTheSocketsOnlyWhenItExistsAndFits) {
  namespace fs = std::filesystem;
  std::string pattern = (fs::temp_directory_path() / "liftoff-url-test-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  fs::path root = pattern;
  auto with_socket_file = [](const fs::path& data_dir) {  // stands in for the server's socket
    fs::create_directories(data_dir / "run");
    std::ofstream(data_dir / "run" / ".s.PGSQL.54999") << "";
    return EmbeddedPostgres({data_dir, 54999, "db", "/usr/lib/postgresql/15/bin", {}});
  };
  const std::string tcp = "postgresql://liftoff:@127.0.0.1:54999/db";
  EXPECT_EQ(EmbeddedPostgres({root / "none", 54999, "db", "/usr/lib/postgresql/15/bin", {}}).url(),
            tcp);
  auto encoded = root.string();
  for (std::size_t at = 0; (at = encoded.find('/', at)) != std::string::npos;)
    encoded.replace(at, 1, "%2F");
  EXPECT_EQ(with_socket_file(root / "short").url(),
            "postgresql://liftoff:@/db?host=" + encoded + "%2Fshort%2Frun&port=54999");
  EXPECT_EQ(with_socket_file(root / std::string(120, 'd')).url(), tcp);
  fs::remove_all(root);
}

}  // namespace
}  // namespace liftoff::db
