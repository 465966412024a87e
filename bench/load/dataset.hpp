#pragma once
// The benchmark data set, defined by a few numbers: every id, email and session token follows from
// the run's name and an index, so `seed` writes it and the loader finds its way around it without
// reading anything back (user 123's token is session_token(123), and so on).
//
//   users        N users; user i is a member of org i / 10 (an owner, two admins, seven members)
//   orgs         ceil(N / 10), each with one "tickets" collection (title, status indexed,
//                priority indexed)
//   records      records_per_user per member, in their org's collection; the first `big_orgs`
//                orgs hold big_org_records more each
//   sessions     one per user, its token derived from the user's index
#include <cstdint>
#include <string>

#include "liftoff/db/value.hpp"

namespace liftoff::load {

inline constexpr std::string_view kBenchPassword = "benchmark passphrase";
inline constexpr std::uint64_t kUsersPerOrg = 10;

struct Dataset {
  std::string run = "bench";  // names this data set: ids and tokens derive from it
  std::uint64_t users = 1'000'000;
  std::uint64_t records_per_user = 10;
  std::uint64_t big_orgs = 2;
  std::uint64_t big_org_records = 1'000'000;

  [[nodiscard]] std::uint64_t orgs() const { return (users + kUsersPerOrg - 1) / kUsersPerOrg; }
  [[nodiscard]] std::uint64_t records_in_org(std::uint64_t org) const;
  [[nodiscard]] std::uint64_t total_records() const;

  [[nodiscard]] db::Uuid user_id(std::uint64_t user) const;
  [[nodiscard]] std::string user_email(std::uint64_t user) const;
  [[nodiscard]] std::string session_token(std::uint64_t user) const;  // "ls_" + 43 characters
  [[nodiscard]] db::Uuid session_id(std::uint64_t user) const;
  [[nodiscard]] db::Uuid org_id(std::uint64_t org) const;
  [[nodiscard]] db::Uuid collection_id(std::uint64_t org) const;
  [[nodiscard]] db::Uuid record_id(std::uint64_t org, std::uint64_t record) const;
  [[nodiscard]] static std::uint64_t org_of(std::uint64_t user) { return user / kUsersPerOrg; }
  // owner, admin, admin, member x 7
  [[nodiscard]] static std::string_view role_of(std::uint64_t user);
  // /v1/orgs/{org}/collections/tickets/records
  [[nodiscard]] std::string records_path(std::uint64_t org) const;
};

}  // namespace liftoff::load
