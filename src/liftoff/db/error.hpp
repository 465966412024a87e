#pragma once
// SQLSTATE -> canonical error code. The mapping is the contract services rely on: a unique
// violation is `conflict`, a serialization failure or deadlock is `retryable`, a cancelled
// statement is `timeout`, a lost or refused connection is `unavailable`.
#include <string>
#include <string_view>

#include "liftoff/core/error.hpp"

struct pg_result;

namespace liftoff::db {

[[nodiscard]] Errc errc_for_sqlstate(std::string_view sqlstate) noexcept;

// Builds the Error for a failed result: code from the SQLSTATE; a detail safe for clients that
// names only the kind of failure; PostgreSQL's message and SQLSTATE as the cause (logs only); the
// violated constraint's name, if any.
[[nodiscard]] Error error_from_result(const pg_result* result);

// A failure to reach or keep a connection: `detail` for clients, libpq's message (host, port,
// reason) as the cause.
[[nodiscard]] Error connection_error(Errc code, std::string detail, std::string cause);

}  // namespace liftoff::db
