#pragma once
// Runs a coroutine to completion on a private io_context: the bridge from synchronous tests.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <thread>

namespace liftoff::testing {

template <class T>
T block_on(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  auto future = boost::asio::co_spawn(io, std::move(task), boost::asio::use_future);
  io.restart();
  io.run();
  return future.get();
}

template <class T>
T block_on(boost::asio::awaitable<T> task) {
  boost::asio::io_context io(1);
  return block_on(io, std::move(task));
}

// Suspends the calling coroutine (the event loop keeps running).
inline boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
  co_await t.async_wait(boost::asio::use_awaitable);
}

// Suspends the calling coroutine until `done` holds (other coroutines on the loop make it so),
// checking every 5 ms; false after `deadline`, which only fails a test that hangs.
template <class Condition>
boost::asio::awaitable<bool> until(Condition done,
                                   std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) co_return false;
    co_await sleep_for(std::chrono::milliseconds(5));
  }
  co_return true;
}

// The same for a test body (not a coroutine): waits until `done` holds (a state the system under
// test reaches on its own), polling every 20 ms. The deadline (30 s, generous on a loaded 2-core
// machine under sanitizers) only fails a test that hangs: no test depends on how soon the condition
// holds.
template <class Condition>
bool eventually(Condition done, std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace liftoff::testing

// gtest's ASSERT_* return void, which a coroutine cannot: these fail the test and co_return.
#define CO_ASSERT_TRUE(condition)                    \
  do {                                               \
    if (!(condition)) {                              \
      ADD_FAILURE() << "expected true: " #condition; \
      co_return;                                     \
    }                                                \
  } while (0)
#define CO_ASSERT_FALSE(condition)                    \
  do {                                                \
    if (condition) {                                  \
      ADD_FAILURE() << "expected false: " #condition; \
      co_return;                                      \
    }                                                 \
  } while (0)
// A Result that must hold a value: on an error, fails with the error's detail and co_returns.
#define CO_ASSERT_OK(result)                                                         \
  do {                                                                               \
    if (!(result)) {                                                                 \
      ADD_FAILURE() << "expected a value: " #result ": " << (result).error().detail; \
      co_return;                                                                     \
    }                                                                                \
  } while (0)
