#pragma once
// Reading a JSON request body, with the checks every JSON endpoint needs in one place: the media
// type (415), well-formed JSON and valid UTF-8 (400 with the byte offset of the fault), nesting
// depth and the number of elements (400), and an object at the top level (422 when
// `require_object`).
#include <boost/json/value.hpp>
#include <cstddef>

#include "liftoff/core/error.hpp"
#include "liftoff/http/types.hpp"

namespace liftoff::http {

struct JsonLimits {
  std::size_t max_depth = 32;
  std::size_t max_string_length = 64 * 1024;
  bool require_object = true;
};

[[nodiscard]] Result<boost::json::value> parse_json_body(const Request& request,
                                                         const JsonLimits& limits = {});

}  // namespace liftoff::http
