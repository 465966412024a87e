#pragma once
// The operators' console's own files (web/console, built into the binary): /console and its
// script, style sheet and icon. They are public, as any sign-in page is; what they show comes from
// /metrics and /v1/operator/..., which only platform operators may read
// (docs/decisions/0025-operators-console.md). The page is revalidated on every load; it names the
// other files by URLs with their version (?v=), which are cached for a year.
#include <span>
#include <string_view>

#include "liftoff/http/router.hpp"

namespace liftoff::api {

struct ConsoleFile {
  std::string_view path;  // as served: "/console", "/console/console.js"
  std::string_view content_type;
  std::string_view body;
};
// Generated from web/console (src/liftoff/CMakeLists.txt).
extern const std::span<const ConsoleFile> kConsoleFiles;

void add_console_routes(http::Router& router);

}  // namespace liftoff::api
