#pragma once
// Thread-per-core bookkeeping: which worker (event-loop thread) the caller runs on. Per-worker
// state (database pools, caches) is indexed by this number, so threads share nothing on the hot
// path.
#include <cstddef>

namespace liftoff::core {

// The index of the worker thread running the caller; 0 outside the server's workers (tools, tests).
[[nodiscard]] std::size_t this_worker() noexcept;
void set_this_worker(std::size_t index) noexcept;

}  // namespace liftoff::core
