#pragma once
// SQLSTATE -> canonical error code. The mapping is the contract services rely on: a unique
// violation is `conflict`, a serialization failure or deadlock is `retryable`, a cancelled
// statement is `timeout`, a lost or refused connection is `unavailable`.
#include <string_view>

#include "liftoff/core/error.hpp"

struct pg_result;

namespace liftoff::db {

[[nodiscard]] Errc errc_for_sqlstate(std::string_view sqlstate) noexcept;

// Builds the Error for a failed result: code from the SQLSTATE, detail "<message> (SQLSTATE
// xxxxx)".
[[nodiscard]] Error error_from_result(const pg_result* result);

}  // namespace liftoff::db
