#pragma once
// Logging: the application log goes to stderr as text; the access log is one JSON object per line.
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace liftoff::core {

// Sets up the default (stderr) logger and the access log. `access_log` is "-", "off" or a path.
// Call once at start, before worker threads run.
void init_logging(const std::string& level, const std::string& access_log);

// The access logger, or nullptr when the access log is off. Thread-safe.
[[nodiscard]] spdlog::logger* access_logger() noexcept;

// Appends `value` to `out` as a JSON string literal body (without quotes), escaping per RFC 8259.
void append_json_escaped(std::string& out, std::string_view value);

}  // namespace liftoff::core
