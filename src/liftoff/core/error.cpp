#include "liftoff/core/error.hpp"

#include <array>

namespace liftoff {

const ErrcInfo& info(Errc code) noexcept {
  static constexpr std::array<ErrcInfo, 19> kInfo = {{
      {400, "bad-request", "Bad Request"},
      {401, "unauthenticated", "Unauthenticated"},
      {402, "plan-limit-reached", "Plan Limit Reached"},
      {403, "permission-denied", "Permission Denied"},
      {404, "not-found", "Not Found"},
      {405, "method-not-allowed", "Method Not Allowed"},
      {408, "request-timeout", "Request Timeout"},
      {409, "conflict", "Conflict"},
      {410, "gone", "Gone"},
      {412, "precondition-failed", "Precondition Failed"},
      {413, "payload-too-large", "Payload Too Large"},
      {415, "unsupported-media-type", "Unsupported Media Type"},
      {422, "validation-failed", "Validation Failed"},
      {429, "too-many-requests", "Too Many Requests"},
      {431, "headers-too-large", "Request Header Fields Too Large"},
      {500, "internal", "Internal Server Error"},
      {503, "unavailable", "Service Unavailable"},
      {503, "retryable", "Transient Conflict, Retry"},
      {504, "timeout", "Dependency Timeout"},
  }};
  return kInfo[static_cast<std::size_t>(code)];
}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw ErrorException(e);
}

}  // namespace liftoff
