#include "liftoff/core/worker.hpp"

namespace liftoff::core {
namespace {
thread_local std::size_t t_worker = 0;
}
std::size_t this_worker() noexcept {
  return t_worker;
}
void set_this_worker(std::size_t index) noexcept {
  t_worker = index;
}
}  // namespace liftoff::core
