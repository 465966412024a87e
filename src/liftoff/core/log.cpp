#include "liftoff/core/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>

#include "liftoff/core/metrics.hpp"

namespace liftoff::core {
namespace {
std::shared_ptr<spdlog::logger> g_access;
}

void init_logging(const std::string& level, const std::string& access_log) {
  auto app = spdlog::stderr_logger_mt("liftoff");
  app->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  app->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(app);

  if (access_log == "off") {
    g_access.reset();
    return;
  }
  // Both sinks buffer through stdio instead of flushing every line (a write per request would cost
  // a system call each); the periodic flush below bounds how long a line can sit in the buffer.
  // Standard output is written through the stream the process has, never reopened by name:
  // /dev/stdout cannot be opened when it is a socket (systemd's journal, a parent's socketpair).
  spdlog::sink_ptr sink;
  if (access_log == "-") {
    sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(std::cout, /*force_flush=*/false);
  } else {
    sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(access_log, false);
  }
  g_access = std::make_shared<spdlog::logger>("access", sink);
  g_access->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ",%v)", spdlog::pattern_time_type::utc);
  g_access->set_level(spdlog::level::info);
  g_access->flush_on(spdlog::level::err);
  spdlog::register_logger(g_access);
  spdlog::flush_every(std::chrono::seconds(1));
}

spdlog::logger* access_logger() noexcept {
  return g_access.get();
}

void append_json_escaped(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += ch;
        }
    }
  }
}

void log_failure(std::string_view what, const std::exception_ptr& failure, Counter* failures) {
  if (failures) failures->inc();
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    spdlog::error("{} failed: {}", what, e.what());
  } catch (...) {
    spdlog::error("{} failed: an exception that is not a std::exception", what);
  }
}

std::function<void(std::exception_ptr)> failure_handler(std::string what, Counter* failures) {
  return [what = std::move(what), failures](const std::exception_ptr& failure) {
    if (failure) log_failure(what, failure, failures);
  };
}

}  // namespace liftoff::core
