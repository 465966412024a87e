#include "liftoff/db/error.hpp"

#include <libpq-fe.h>

#include <string>

namespace liftoff::db {

Errc errc_for_sqlstate(std::string_view s) noexcept {
  if (s.size() != 5) return Errc::internal;
  if (s == "23505" || s == "23503" || s == "23P01") return Errc::conflict;  // unique, FK, exclusion
  if (s == "23502" || s == "23514") return Errc::validation_failed;         // not null, check
  if (s == "40001" || s == "40P01" || s == "55P03")
    return Errc::retryable;                // serialization, deadlock, lock
  if (s == "57014") return Errc::timeout;  // query_canceled
  auto cls = s.substr(0, 2);
  if (cls == "22") return Errc::bad_request;  // data exception: invalid input value, overflow
  if (cls == "08" || cls == "53" || cls == "57")
    return Errc::unavailable;  // connection, resources, shutdown
  return Errc::internal;
}

Error error_from_result(const pg_result* result) {
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  std::string sqlstate = state ? state : "";
  std::string message = primary ? primary : PQresultErrorMessage(result);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return Error{errc_for_sqlstate(sqlstate), message + " (SQLSTATE " + sqlstate + ")", {}};
}

}  // namespace liftoff::db
