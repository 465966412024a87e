#include "load/runner.hpp"

#include <sys/resource.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <mutex>
#include <thread>

namespace liftoff::load {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kCloseAfterEnd = std::chrono::seconds(1);  // open loop (see connection())

// What one thread measured; merged at the end.
struct Tally {
  std::uint64_t completed = 0, ok = 0, due_not_sent = 0;
  std::map<std::string, std::uint64_t> ok_by_kind;
  std::map<std::string, std::uint64_t> errors;
  std::map<std::string, std::string> error_examples;
  Histogram latency;
  std::vector<Second> timeline;
  std::vector<std::string> acknowledged_ids;

  void answer(Clock::time_point start, Clock::time_point done, Clock::time_point due,
              const std::optional<std::string>& error, const Request& request,
              std::string_view body, const std::string& keep_ids_of) {
    auto micros = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(done - due).count());
    latency.record(micros);
    ++completed;
    auto& second = at(start, done);
    ++second.completed;
    second.latency.record(micros);
    if (error) {
      ++errors[*error];
      ++second.errors;
      if (!error_examples.contains(*error)) {
        error_examples[*error] =
            request.method + " " + request.target + " -> " + std::string(body.substr(0, 300));
      }
    } else {
      ++ok;
      ++ok_by_kind[request.kind];
      if (!keep_ids_of.empty() && (keep_ids_of == "*" || request.kind == keep_ids_of))
        keep_id(body);
    }
  }
  void keep_id(std::string_view body) {
    boost::system::error_code ec;
    auto value = boost::json::parse(body, ec);
    const auto* object = ec ? nullptr : value.if_object();
    const auto* id = object != nullptr ? object->if_contains("id") : nullptr;
    if (id != nullptr && id->is_string()) acknowledged_ids.emplace_back(id->get_string());
  }
  void failure(Clock::time_point start, Clock::time_point when, const std::string& kind) {
    ++errors[kind];
    ++at(start, when).errors;
  }
  Clock::time_point last;  // when the latest answer or failure came
  Second& at(Clock::time_point start, Clock::time_point when) {
    last = std::max(last, when);
    auto index = static_cast<std::size_t>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::seconds>(when - start).count()));
    if (timeline.size() <= index) timeline.resize(index + 1);
    return timeline[index];
  }
};

struct Shared {
  const RunOptions& options;
  Scenario& scenario;
  tcp::endpoint endpoint;
  Clock::time_point start;
  Clock::time_point end;
  std::atomic<std::uint64_t> next_ticket{0};
  std::atomic<unsigned> connected{0};    // before start
  std::chrono::nanoseconds interval{0};  // open loop: between due times
};

std::string kind_of(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "timeout";
  if (ec == asio::error::connection_refused) return "connection refused";
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
      ec == http::error::end_of_stream || ec == asio::error::eof)
    return "connection closed";
  return "io: " + ec.message();
}

asio::awaitable<void> connection(Shared& shared, Tally& tally, std::uint64_t seed) {
  auto executor = co_await asio::this_coro::executor;
  std::mt19937_64 rng(seed);
  asio::steady_timer timer(executor);
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  const bool open_loop = shared.options.rate > 0;
  // Open the connection before the measurement starts, then wait for the start.
  stream.emplace(executor);
  stream->expires_after(shared.options.timeout);
  if (auto [ec] = co_await stream->async_connect(shared.endpoint, kUseTuple); ec) {
    stream.reset();
  } else {
    stream->socket().set_option(tcp::no_delay(true));
    shared.connected.fetch_add(1, std::memory_order_relaxed);
  }
  timer.expires_at(shared.start);
  co_await timer.async_wait(kUseTuple);
  while (Clock::now() < shared.end) {
    if (!stream) {
      stream.emplace(executor);
      stream->expires_after(shared.options.timeout);
      auto [ec] = co_await stream->async_connect(shared.endpoint, kUseTuple);
      if (ec) {
        tally.failure(shared.start, Clock::now(), "connect: " + kind_of(ec));
        stream.reset();
        timer.expires_after(std::chrono::milliseconds(100));
        co_await timer.async_wait(kUseTuple);
        continue;
      }
      stream->socket().set_option(tcp::no_delay(true));
    }
    Clock::time_point due;
    if (open_loop) {
      auto ticket = shared.next_ticket.fetch_add(1, std::memory_order_relaxed);
      due = shared.start + shared.interval * static_cast<std::int64_t>(ticket);
      if (due >= shared.end) {
        // Past the window: close a second after it ends. A connection takes its next ticket as
        // soon as it is free, so at 5,000 req/s over 10,000 connections the tickets run out two
        // seconds before the end, and closing then put 10,000 disconnections into the measured
        // seconds; closing at the end would slow the requests still answering.
        timer.expires_at(shared.end + kCloseAfterEnd);
        co_await timer.async_wait(kUseTuple);
        break;
      }
      if (due > Clock::now()) {
        timer.expires_at(due);
        co_await timer.async_wait(kUseTuple);
      }
    } else {
      due = Clock::now();
    }
    auto request = shared.scenario.next(rng);
    http::request<http::string_body> req{http::string_to_verb(request.method), request.target, 11};
    req.set(http::field::host, shared.options.host);
    if (!request.authorization.empty()) req.set(http::field::authorization, request.authorization);
    if (!request.body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = request.body;
    }
    req.prepare_payload();
    stream->expires_after(shared.options.timeout);
    auto [wec, wn] = co_await http::async_write(*stream, req, kUseTuple);
    http::response<http::string_body> res;
    beast::error_code ec = wec;
    if (!ec) {
      auto [rec, rn] = co_await http::async_read(*stream, buffer, res, kUseTuple);
      ec = rec;
    }
    auto done = Clock::now();
    if (ec) {
      tally.failure(shared.start, done, kind_of(ec));
      stream.reset();
      buffer.clear();
      continue;
    }
    tally.answer(shared.start, done, due,
                 shared.scenario.check(request, res.result_int(), res.body()), request, res.body(),
                 shared.options.keep_ids_of);
    if (!res.keep_alive()) {
      stream.reset();
      buffer.clear();
    }
    if (!open_loop && shared.options.think.count() > 0) {
      timer.expires_after(shared.options.think);
      co_await timer.async_wait(kUseTuple);
    }
  }
}

}  // namespace

std::uint64_t RunReport::error_count() const {
  std::uint64_t n = 0;
  for (const auto& [kind, count] : errors) n += count;
  return n;
}

double RunReport::error_fraction() const {
  auto attempts = ok + error_count();
  return attempts ? static_cast<double>(error_count()) / attempts : 0;
}

RunReport run(const RunOptions& options, Scenario& scenario) {
  rlimit limit{options.connections + 1024, options.connections + 1024};
  setrlimit(RLIMIT_NOFILE, &limit);
  asio::io_context resolver_io;
  tcp::resolver resolver(resolver_io);
  auto endpoints = resolver.resolve(options.host, std::to_string(options.port));
  Shared shared{options, scenario, *endpoints.begin(), {}, {}};
  if (options.rate > 0)
    shared.interval = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / options.rate));
  unsigned threads = std::max(1u, options.threads);
  std::vector<Tally> tallies(threads);
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (unsigned t = 0; t < threads; ++t) contexts.push_back(std::make_unique<asio::io_context>(1));
  auto connect_time = options.connect_time.count() > 0
                          ? options.connect_time
                          : std::chrono::milliseconds(1'000 + options.connections / 5);
  shared.start = Clock::now() + connect_time;
  shared.end = shared.start + options.duration;
  for (unsigned c = 0; c < options.connections; ++c) {
    auto t = c % threads;
    asio::co_spawn(*contexts[t], connection(shared, tallies[t], 0x9E3779B97F4A7C15ULL * (c + 1)),
                   asio::detached);
  }
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) workers.emplace_back([&, t] { contexts[t]->run(); });
  std::map<std::string, double> cpu_at_start;
  if (!options.cpu_roots.empty()) {
    workers.emplace_back([&] {
      std::this_thread::sleep_until(shared.start);
      cpu_at_start = cpu_seconds(read_processes(), options.cpu_roots);
    });
  }
  for (auto& w : workers) w.join();
  auto finished = Clock::now();

  RunReport report;
  report.scenario = scenario.name();
  report.options = options;
  // The window, or until the last answer when some came later; not the open loop's wait to close.
  auto last = shared.end;
  for (const auto& tally : tallies) last = std::max(last, tally.last);
  if (options.rate > 0) finished = std::min(finished, last);
  report.seconds = std::chrono::duration<double>(finished - shared.start).count();
  report.window_start = shared.start;
  report.window_end = shared.end;
  report.connected = shared.connected.load();
  if (!options.cpu_roots.empty()) {
    for (const auto& [name, seconds] : cpu_seconds(read_processes(), options.cpu_roots))
      report.cpu_seconds[name] = seconds - cpu_at_start[name];
  }
  for (auto& tally : tallies) {
    report.completed += tally.completed;
    report.ok += tally.ok;
    for (const auto& [kind, n] : tally.ok_by_kind) report.ok_by_kind[kind] += n;
    for (const auto& [kind, n] : tally.errors) report.errors[kind] += n;
    report.error_examples.merge(tally.error_examples);
    report.acknowledged_ids.insert(report.acknowledged_ids.end(), tally.acknowledged_ids.begin(),
                                   tally.acknowledged_ids.end());
    report.latency.merge(tally.latency);
    if (report.timeline.size() < tally.timeline.size())
      report.timeline.resize(tally.timeline.size());
    for (std::size_t i = 0; i < tally.timeline.size(); ++i) {
      report.timeline[i].completed += tally.timeline[i].completed;
      report.timeline[i].errors += tally.timeline[i].errors;
      report.timeline[i].latency.merge(tally.timeline[i].latency);
    }
  }
  if (options.rate > 0) {
    // Tickets due before the end that no connection took: the loader (or the server) fell behind.
    auto due = static_cast<std::uint64_t>(options.rate *
                                          std::chrono::duration<double>(options.duration).count());
    auto taken = std::min(shared.next_ticket.load(), due);
    report.due_not_sent = due > taken ? due - taken : 0;
    if (report.due_not_sent > 0) report.errors["not sent: behind schedule"] += report.due_not_sent;
  }
  return report;
}

}  // namespace liftoff::load
