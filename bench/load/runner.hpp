#pragma once
// An HTTP/1.1 load generator: keep-alive connections against one server, in a closed loop (each
// connection sends its next request when the last answer arrived, after an optional think time)
// or an open loop (requests are due at a constant rate; each one's latency counts from when it was
// due, not from when a connection got round to sending it, so a stalled server cannot hide its
// stall by slowing the loader down: no coordinated omission). Every answer is checked by its
// scenario: a fast wrong answer is an error, not throughput.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "load/cpu.hpp"
#include "load/histogram.hpp"

namespace liftoff::load {

struct Request {
  std::string method = "GET";
  std::string target;
  std::string body;  // JSON when not empty
  std::string authorization;
  std::string kind;  // which part of a mixed scenario made it (for its check)
};

// What to send and what a right answer is. next() and check() run on the loader's threads,
// concurrently: keep them free of shared mutable state (the RNG is the caller's).
class Scenario {
 public:
  virtual ~Scenario() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  virtual Request next(std::mt19937_64& rng) = 0;
  // nullopt when the answer is right, else the kind of error ("status 500", "body").
  [[nodiscard]] virtual std::optional<std::string> check(const Request& request, int status,
                                                         std::string_view body) const = 0;
};

struct RunOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  unsigned connections = 64;
  std::chrono::milliseconds duration{10'000};
  double rate = 0;  // requests per second, all connections together; 0: closed loop
  std::chrono::milliseconds think{0};         // closed loop: pause between answer and next request
  std::chrono::milliseconds timeout{10'000};  // per request
  // Connections are opened before the measurement starts, within this time (0: 1 s plus 0.2 ms
  // per connection), so a connect storm is not measured as the server's latency.
  std::chrono::milliseconds connect_time{0};
  unsigned threads = 1;
  // Process trees whose CPU time over the measured window is reported (e.g. server, database).
  CpuRoots cpu_roots;
  // Correct answers of this scenario part (e.g. a mix's "create") have their body's "id" kept in
  // RunReport::acknowledged_ids, so a fault drill can read back every acknowledged write ("*":
  // every correct answer's, for a scenario of one kind; empty: none kept).
  std::string keep_ids_of;
};

struct Second {
  std::uint64_t completed = 0;
  std::uint64_t errors = 0;
  Histogram latency;
};

struct RunReport {
  std::string scenario;
  RunOptions options;
  double seconds = 0;  // measured wall time
  // The measurement window as planned (requests are sent from its start; the open loop's last are
  // due before its end).
  std::chrono::steady_clock::time_point window_start, window_end;
  unsigned connected = 0;       // connections open when the measurement started
  std::uint64_t completed = 0;  // answers received (right or wrong)
  std::uint64_t ok = 0;
  // Correct answers by the scenario part that asked (a mix's "create", "get", ...; empty for a
  // scenario of one kind).
  std::map<std::string, std::uint64_t> ok_by_kind;
  std::map<std::string, std::uint64_t> errors;        // by kind, including connection failures
  std::map<std::string, std::string> error_examples;  // kind -> the first request and answer
  Histogram latency;                                  // of every answer
  std::vector<Second> timeline;                       // one entry per second of the run
  std::uint64_t due_not_sent = 0;  // open loop: requests due that no connection could send in time
  std::map<std::string, double> cpu_seconds;  // of each of options.cpu_roots, over the window
  std::vector<std::string> acknowledged_ids;  // options.keep_ids_of

  [[nodiscard]] std::uint64_t error_count() const;
  [[nodiscard]] double error_fraction() const;
  [[nodiscard]] double throughput() const { return seconds > 0 ? completed / seconds : 0; }
};

RunReport run(const RunOptions& options, Scenario& scenario);

}  // namespace liftoff::load
