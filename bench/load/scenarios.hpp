#pragma once
// The endpoints liftoff-bench measures, each with what a right answer looks like.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "load/runner.hpp"

namespace liftoff::load {

struct ScenarioOptions {
  std::string token;             // bearer token (me, get, list, create)
  std::string records;           // /v1/orgs/{org}/collections/{c}/records (get, list, create)
  std::vector<std::string> ids;  // record ids to read (get)
};

// healthz, me, get, list, create; nullptr for another name. Throws std::invalid_argument when the
// scenario needs an option that is missing.
std::unique_ptr<Scenario> make_scenario(std::string_view name, const ScenarioOptions& options);

[[nodiscard]] const std::vector<std::string>& scenario_names();

}  // namespace liftoff::load
