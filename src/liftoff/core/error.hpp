#pragma once
// The one error model (docs/decisions/0001-error-model.md): expected failures are values of type
// Error carried in Result<T>; every Error has one canonical code that maps to an HTTP status, a
// stable problem type and a metric label. Bugs are asserts; exceptions only cross the per-request,
// per-connection and per-job catch sites, which turn them into `internal`.
#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace liftoff {

enum class Errc {
  bad_request,             // 400 malformed syntax (JSON, URL, headers)
  unauthenticated,         // 401
  payment_required,        // 402 the org's plan does not allow it (Error::limit says which limit)
  permission_denied,       // 403
  not_found,               // 404
  method_not_allowed,      // 405
  request_timeout,         // 408 client too slow
  conflict,                // 409 unique violation, state conflict
  gone,                    // 410 existed, but no longer usable (expired or revoked invitation)
  precondition_failed,     // 412
  payload_too_large,       // 413
  unsupported_media_type,  // 415
  validation_failed,       // 422 well-formed but invalid fields
  too_many_requests,       // 429
  headers_too_large,       // 431
  internal,                // 500 a bug or an unexpected failure
  unavailable,             // 503 dependency down, pool exhausted, shutting down
  retryable,  // 503 transient conflict (serialization failure, deadlock): retry the request
  timeout,    // 504 a deadline passed while we waited on a dependency
};

struct FieldError {
  std::string field;
  std::string message;
};

// Which limit of an organization's plan a request ran into (402 and the org's 429s): the
// problem+json member "limit" (docs/api.md).
struct LimitReached {
  std::string name;       // "seats", "api_requests_per_minute", ...
  std::int64_t value;     // the plan's limit
  std::string plan;       // the org's plan
  std::string lifted_by;  // the plan that allows more
};

struct Error {
  Errc code = Errc::internal;
  std::string detail;                               // human-readable, safe to show to the client
  std::vector<FieldError> fields;                   // validation errors only
  std::optional<std::chrono::seconds> retry_after;  // when the client may try again (429, 503)
  // For the server's log only, never sent to a client: what the detail does not say (PostgreSQL's
  // message and SQLSTATE, a failed connection's host and port).
  std::string cause;
  // The database constraint a conflict or check violated (PostgreSQL's constraint name): how a
  // service tells which of its fields a conflict is about.
  std::string constraint;
  std::optional<LimitReached> limit;

  // The detail with its cause, for logs.
  [[nodiscard]] std::string for_log() const {
    return cause.empty() ? detail : detail + ": " + cause;
  }
};

[[nodiscard]] inline Error make_error(Errc code, std::string detail) {
  return Error{code, std::move(detail), {}};
}

struct ErrcInfo {
  int http_status;
  std::string_view slug;   // stable: the problem type is "urn:liftoff:problem:<slug>"
  std::string_view title;  // stable short summary
};
[[nodiscard]] const ErrcInfo& info(Errc code) noexcept;

// Thrown only by Result<T>::value() on an error, i.e. by code that chose not to check.
class ErrorException : public std::runtime_error {
 public:
  explicit ErrorException(Error error)
      : std::runtime_error(error.detail), error_(std::move(error)) {}
  [[nodiscard]] const Error& error() const noexcept { return error_; }

 private:
  Error error_;
};

[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

template <class T>
using Result = boost::system::result<T, Error>;

}  // namespace liftoff
