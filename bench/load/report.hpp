#pragma once
// A run's results as a table (for people), JSON (for bench/results and scripts) and SVG (latency
// by percentile, and p50/p99 over time).
#include <string>

#include "load/runner.hpp"

namespace liftoff::load {

[[nodiscard]] std::string table(const RunReport& report);
[[nodiscard]] std::string to_json(const RunReport& report);
[[nodiscard]] std::string to_svg(const RunReport& report);

}  // namespace liftoff::load
