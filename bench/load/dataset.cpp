#include "load/dataset.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <array>

#include "liftoff/core/text.hpp"

namespace liftoff::load {
namespace {

// 32 bytes of SHA-256 over the run name, a kind and the numbers.
std::array<unsigned char, 32> derive(const std::string& run, std::string_view kind, std::uint64_t a,
                                     std::uint64_t b = 0) {
  auto text = fmt::format("liftoff-bench/{}/{}/{}/{}", run, kind, a, b);
  std::array<unsigned char, 32> out{};
  crypto_hash_sha256(out.data(), reinterpret_cast<const unsigned char*>(text.data()), text.size());
  return out;
}

db::Uuid uuid_from(const std::array<unsigned char, 32>& bytes) {
  db::Uuid id;
  std::copy_n(bytes.begin(), 16, id.bytes.begin());
  id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | 0x40);  // version 4 shape
  id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return id;
}

}  // namespace

std::uint64_t Dataset::records_in_org(std::uint64_t org) const {
  auto members = std::min(kUsersPerOrg, users - org * kUsersPerOrg);
  return members * records_per_user + (org < big_orgs ? big_org_records : 0);
}

std::uint64_t Dataset::total_records() const {
  return users * records_per_user + std::min(big_orgs, orgs()) * big_org_records;
}

db::Uuid Dataset::user_id(std::uint64_t user) const {
  return uuid_from(derive(run, "user", user));
}

std::string Dataset::user_email(std::uint64_t user) const {
  return fmt::format("user{}@{}.bench.liftoff.test", user, run);
}

std::string Dataset::session_token(std::uint64_t user) const {
  auto raw = derive(run, "session-token", user);
  return "ls_" + core::base64url(std::string_view(reinterpret_cast<const char*>(raw.data()), 32));
}

db::Uuid Dataset::session_id(std::uint64_t user) const {
  return uuid_from(derive(run, "session", user));
}

db::Uuid Dataset::org_id(std::uint64_t org) const {
  return uuid_from(derive(run, "org", org));
}

db::Uuid Dataset::collection_id(std::uint64_t org) const {
  return uuid_from(derive(run, "collection", org));
}

db::Uuid Dataset::record_id(std::uint64_t org, std::uint64_t record) const {
  return uuid_from(derive(run, "record", org, record));
}

std::string_view Dataset::role_of(std::uint64_t user) {
  switch (user % kUsersPerOrg) {
    case 0:
      return "owner";
    case 1:
    case 2:
      return "admin";
    default:
      return "member";
  }
}

std::string Dataset::records_path(std::uint64_t org) const {
  return "/v1/orgs/" + org_id(org).to_string() + "/collections/tickets/records";
}

}  // namespace liftoff::load
