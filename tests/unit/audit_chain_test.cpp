// One link of the audit chain. (That every column of an event takes part in its canonical form, and
// that verification catches altered, removed and reordered events, is tested end to end against
// PostgreSQL, which builds the canonical form: tests/e2e/orgs_e2e.cpp.)
#include <gtest/gtest.h>

#include "liftoff/audit/audit.hpp"

namespace liftoff::audit {
namespace {

std::string hex(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0x0F];
  }
  return out;
}

TEST(AuditChain, ALinkIsTheSha256OfThePreviousHashThenTheEvent) {
  // SHA-256("abc"), the FIPS 180-2 test vector, split across the two parts.
  EXPECT_EQ(hex(chain_hash("a", "bc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(chain_hash("", "abc"), chain_hash("ab", "c"));
  EXPECT_NE(chain_hash(std::string(32, '\x01'), "x"), chain_hash(std::string(32, '\x02'), "x"));
}

}  // namespace
}  // namespace liftoff::audit
