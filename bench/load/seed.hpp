#pragma once
// Writes a Dataset into a migrated Liftoff database with COPY, in one transaction: users (sharing
// one precomputed Argon2id hash of kBenchPassword), sessions, orgs with their audit chains,
// memberships, collections and records (slots and search text filled as the server would).
#include <functional>
#include <string>

#include "liftoff/core/error.hpp"
#include "load/dataset.hpp"

namespace liftoff::load {

struct SeedProgress {
  std::string table;
  std::uint64_t done = 0;
  std::uint64_t total = 0;
};

// Refuses (409) a run already in the database, and a database without Liftoff's schema.
[[nodiscard]] Result<void> seed(const std::string& database_url, const Dataset& dataset,
                                const std::function<void(const SeedProgress&)>& progress = {});

}  // namespace liftoff::load
