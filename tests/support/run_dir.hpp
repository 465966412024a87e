#pragma once
// Where a test binary keeps its files: one directory per run, /tmp/liftoff-test-<pid>-XXXXXX, made
// on first use. When the binary ends it is removed if every test passed, and kept (its path
// printed) if one failed, so the logs of a failure can be read.
#include <filesystem>
#include <string>

namespace liftoff::testing {

[[nodiscard]] const std::filesystem::path& run_dir();
// A new directory `<prefix>XXXXXX` (mkdtemp) that others may traverse: as root, PostgreSQL runs as
// `postgres` and must reach its data inside. Aborts the binary when it cannot be made.
[[nodiscard]] std::filesystem::path make_temp_dir(const std::string& prefix);
// A new file name in run_dir(): "<stem>-<n>.log" with n unique in this run.
[[nodiscard]] std::string log_path(const std::string& stem);

}  // namespace liftoff::testing
