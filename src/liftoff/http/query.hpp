#pragma once
// Query strings: decoded into name -> value, with the checks every endpoint needs in one place:
// malformed percent-encoding, unknown parameters and repeated ones are a 400 naming them.
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "liftoff/core/error.hpp"

namespace liftoff::http {

using QueryParams = std::map<std::string, std::string, std::less<>>;

[[nodiscard]] Result<QueryParams> parse_query(std::string_view query,
                                              std::span<const std::string_view> known);
[[nodiscard]] inline Result<QueryParams> parse_query(
    std::string_view query, std::initializer_list<std::string_view> known) {
  return parse_query(query, std::span(known.begin(), known.size()));
}

// An integer parameter in [min, max]; `fallback` when absent; 400 naming it otherwise.
[[nodiscard]] Result<std::int32_t> int_param(const QueryParams& query, std::string_view name,
                                             std::int32_t fallback, std::int32_t min,
                                             std::int32_t max);

// An RFC 3339 time parameter; nullopt when absent; 400 naming it when it is not one.
[[nodiscard]] Result<std::optional<std::chrono::sys_time<std::chrono::microseconds>>> time_param(
    const QueryParams& query, std::string_view name);

// A text parameter as given; nullopt when absent.
[[nodiscard]] std::optional<std::string> text_param(const QueryParams& query,
                                                    std::string_view name);

// A comma-separated list parameter ("a,b,c"), item by item; nullopt when absent.
[[nodiscard]] std::optional<std::vector<std::string>> list_param(const QueryParams& query,
                                                                 std::string_view name);

}  // namespace liftoff::http
