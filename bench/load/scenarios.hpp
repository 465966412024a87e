#pragma once
// The endpoints liftoff-bench measures, each with what a right answer looks like. Who sends each
// request comes from a seeded Dataset (a random user of it, their org, a record of that org) or,
// without one, from a fixed token, records path and list of ids.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "load/dataset.hpp"
#include "load/runner.hpp"

namespace liftoff::load {

struct ScenarioOptions {
  std::optional<Dataset> dataset;  // when set, the options below are not needed
  std::string token;               // bearer token (me, get, list, create)
  std::string records;             // /v1/orgs/{org}/collections/{c}/records (get, list, create)
  std::vector<std::string> ids;    // record ids to read (get)
  // With a data set: the users of its first `skip_orgs` orgs send nothing (another load
  // generator plays them, as bench/run-noisy-neighbour's hostile tenant).
  std::uint64_t skip_orgs = 0;
};

// healthz, me, get, list, create, login (dataset only); nullptr for another name. Throws
// std::invalid_argument when the scenario needs an option that is missing.
std::unique_ptr<Scenario> make_scenario(std::string_view name, const ScenarioOptions& options);

[[nodiscard]] const std::vector<std::string>& scenario_names();

}  // namespace liftoff::load
