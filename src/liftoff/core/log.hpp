#pragma once
// Logging: the application log goes to stderr as text; the access log is one JSON object per line.
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace liftoff::core {

class Counter;

// Sets up the default (stderr) logger and the access log. `access_log` is "-", "off" or a path.
// Call once at start, before worker threads run.
void init_logging(const std::string& level, const std::string& access_log);

// The access logger, or nullptr when the access log is off. Thread-safe.
[[nodiscard]] spdlog::logger* access_logger() noexcept;

// Work that ended by an exception (a bug: errors are values): logs that `what` failed, with the
// exception's text, and counts it in `failures` (when given).
void log_failure(std::string_view what, const std::exception_ptr& failure, Counter* failures);
// The same as the completion handler of a spawned coroutine (a normal end is not logged).
[[nodiscard]] std::function<void(std::exception_ptr)> failure_handler(std::string what,
                                                                      Counter* failures);

// Appends `value` to `out` as a JSON string literal body (without quotes), escaping per RFC 8259.
void append_json_escaped(std::string& out, std::string_view value);

}  // namespace liftoff::core
