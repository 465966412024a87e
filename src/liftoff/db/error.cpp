#include "liftoff/db/error.hpp"

#include <libpq-fe.h>

#include <string>

namespace liftoff::db {

Errc errc_for_sqlstate(std::string_view s) noexcept {
  if (s.size() != 5) return Errc::internal;
  if (s == "23505" || s == "23503" || s == "23P01") return Errc::conflict;  // unique, FK, exclusion
  if (s == "23502" || s == "23514") return Errc::validation_failed;         // not null, check
  if (s == "54000") return Errc::validation_failed;  // a value too large for an index or tsvector
  if (s == "40001" || s == "40P01" || s == "55P03")
    return Errc::retryable;                // serialization, deadlock, lock
  if (s == "57014") return Errc::timeout;  // query_canceled
  // An org's write reached the shard it is moving away from (migrations/control/0024): its next
  // try goes to the shard that keeps it.
  if (s == "LO001") return Errc::retryable;
  auto cls = s.substr(0, 2);
  if (cls == "22") return Errc::bad_request;  // data exception: invalid input value, overflow
  if (cls == "08" || cls == "53" || cls == "57")
    return Errc::unavailable;  // connection, resources, shutdown
  return Errc::internal;
}

namespace {
// What a client is told of a database error: its kind, never PostgreSQL's text (constraint,
// table and column names, values).
std::string_view client_detail(Errc code) {
  switch (code) {
    case Errc::conflict:
      return "the change conflicts with existing data";
    case Errc::validation_failed:
      return "a value is not acceptable to the database";
    case Errc::retryable:
      return "the change collided with a concurrent one; retry it";
    case Errc::timeout:
      return "the database did not answer in time";
    case Errc::bad_request:
      return "a value is out of range or malformed";
    case Errc::unavailable:
      return "the database is unavailable";
    default:
      return "the database failed the statement";
  }
}
}  // namespace

Error error_from_result(const pg_result* result) {
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  const char* constraint = PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME);
  std::string sqlstate = state ? state : "";
  std::string message = primary ? primary : PQresultErrorMessage(result);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  Error error{
      errc_for_sqlstate(sqlstate), std::string(client_detail(errc_for_sqlstate(sqlstate))), {}};
  error.cause = "PostgreSQL: " + message + " (SQLSTATE " + sqlstate + ")";
  if (constraint) error.constraint = constraint;
  return error;
}

Error connection_error(Errc code, std::string detail, std::string cause) {
  Error error{code, std::move(detail), {}};
  error.cause = std::move(cause);
  return error;
}

}  // namespace liftoff::db
