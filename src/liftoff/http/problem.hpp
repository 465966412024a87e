#pragma once
// Responses in one place: every error leaves the server as application/problem+json (RFC 9457).
#include <boost/json/fwd.hpp>

#include "liftoff/core/error.hpp"
#include "liftoff/http/types.hpp"

namespace liftoff::http {

inline constexpr std::string_view kProblemTypePrefix = "urn:liftoff:problem:";

// {"type","title","status","detail","request_id"?,"trace_id"?,"errors"?,"limit"?}; `errors` lists
// field errors.
[[nodiscard]] Response problem_response(const Error& error, const RequestIds& ids,
                                        unsigned version = 11);

[[nodiscard]] Response json_response(beast_http::status status, const boost::json::value& body,
                                     unsigned version = 11);

[[nodiscard]] Response text_response(beast_http::status status, std::string body,
                                     std::string_view content_type, unsigned version = 11);

}  // namespace liftoff::http
