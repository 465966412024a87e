// The embedded cluster's memory follows the machine: a quarter of it for shared_buffers within
// [128 MB, 8 GB], half of it as the planner's cache estimate.
#include "liftoff/db/embedded_postgres.hpp"

#include <gtest/gtest.h>

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

// Without a running server's socket, or where the socket's path would not fit in a socket address,
// the URL is TCP's.
TEST(EmbeddedPostgres, TheUrlIsTcpsWithoutAUsableSocket) {
  EmbeddedPostgres absent({"/nonexistent/liftoff", 54999, "db", "/usr/lib/postgresql/15/bin", {}});
  EXPECT_EQ(absent.url(), "postgresql://liftoff:@127.0.0.1:54999/db");
  EmbeddedPostgres long_path(
      {"/" + std::string(120, 'd'), 54999, "db", "/usr/lib/postgresql/15/bin", {}});
  EXPECT_EQ(long_path.url(), "postgresql://liftoff:@127.0.0.1:54999/db");
}

}  // namespace
}  // namespace liftoff::db
