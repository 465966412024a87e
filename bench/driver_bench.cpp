// Point selects per second through Liftoff's pool, for comparison with `pgbench -S -M prepared` run
// against the same server with the same client count (bench/run-foundation does both).
//
//   liftoff-driver-bench --url postgresql://... --clients 8 --threads 2 --seconds 10 --scale 10
//
// Each worker thread has its own io_context and pool (as in `liftoff serve`); the clients are
// coroutines spread over the workers, each running the pgbench -S statement in a closed loop.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <random>
#include <thread>

#include "liftoff/core/metrics.hpp"
#include "liftoff/core/worker.hpp"
#include "liftoff/db/database.hpp"

namespace asio = boost::asio;
using namespace liftoff;

namespace {
constexpr db::Statement kPointSelect{db::Plane::any, "bench.point_select",
                                     "SELECT abalance FROM pgbench_accounts WHERE aid = $1"};
}

int main(int argc, char** argv) {
  CLI::App cli{"Point-select throughput through the Liftoff PostgreSQL pool"};
  std::string url;
  unsigned clients = 8, threads = 2, seconds = 10, scale = 10, shared = 2;
  cli.add_option("--url", url, "libpq URI of a database initialized with pgbench -i")->required();
  cli.add_option("--clients", clients, "concurrent coroutines (= pooled connections)");
  cli.add_option("--threads", threads, "worker threads");
  cli.add_option("--seconds", seconds, "duration");
  cli.add_option("--scale", scale, "pgbench scale factor (100000 accounts each)");
  cli.add_option("--shared-connections", shared,
                 "pipelined connections per worker (0: each client leases a pooled connection)");
  CLI11_PARSE(cli, argc, argv);
  threads = std::max(1u, std::min(threads, clients));

  core::Registry metrics;
  db::DatabaseOptions options;
  options.connect = {url, {}, "liftoff-bench"};
  options.pool.max_size = (clients + threads - 1) / threads;
  options.pool.acquire_timeout = std::chrono::seconds(10);
  options.shared_connections = shared;
  db::Database database(options, metrics, threads);

  std::atomic<std::uint64_t> done{0}, failed{0};
  auto started = std::chrono::steady_clock::now();
  auto warmup_end = started + std::chrono::seconds(1);
  auto end = warmup_end + std::chrono::seconds(seconds);
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      core::set_this_worker(t);
      asio::io_context io(1);
      unsigned mine = clients / threads + (t < clients % threads ? 1 : 0);
      for (unsigned c = 0; c < mine; ++c) {
        asio::co_spawn(
            io,
            [&, seed = t * 1000 + c]() -> asio::awaitable<void> {
              std::mt19937_64 rng(seed);
              std::uniform_int_distribution<std::int32_t> aid(
                  1, static_cast<std::int32_t>(scale * 100000));
              for (;;) {
                auto now = std::chrono::steady_clock::now();
                if (now >= end) break;
                db::Params params(aid(rng));
                db::Scope scope{db::Tenant::control(), db::deadline_after(std::chrono::seconds(5))};
                auto rows = co_await database.query(db::Intent::read, scope, kPointSelect, params);
                if (now < warmup_end) continue;
                if (rows && rows->size() == 1) {
                  done.fetch_add(1, std::memory_order_relaxed);
                } else {
                  failed.fetch_add(1, std::memory_order_relaxed);
                }
              }
            },
            asio::detached);
      }
      io.run();
      database.stop_worker(t);
    });
  }
  for (auto& w : workers) w.join();
  double qps = static_cast<double>(done.load()) / seconds;
  fmt::print(
      "{{\"clients\":{},\"threads\":{},\"seconds\":{},\"queries\":{},\"errors\":{},\"qps\":{:.0f}}}"
      "\n",
      clients, threads, seconds, done.load(), failed.load(), qps);
  return failed.load() == 0 ? 0 : 1;
}
