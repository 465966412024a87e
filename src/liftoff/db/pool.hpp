#pragma once
// A bounded pool of connections for one worker thread (thread-per-core: pools are never shared).
//
// acquire() hands out a move-only Lease; the lease returns the connection when it dies. A
// connection that comes back broken is discarded (and a waiter may open a replacement); one that
// comes back inside a transaction (an abandoned Transaction, an error path) is rolled back before
// reuse. When the pool is full, acquire() waits in FIFO order until a connection is returned or the
// acquire timeout passes (Errc::unavailable, answered 503). Failed connects back off exponentially;
// while backing off with no live connection, acquire() fails fast instead of piling up waiters.
//
// Generic over the connection type so that the state machine is unit-tested without a server
// (tests/unit/db/pool_test.cpp); production uses Pool = BasicPool<Connection>.
// Thread-safety: none; all calls on the pool's executor. Lifetime: leases keep the pool alive.
#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/core/metrics.hpp"

namespace liftoff::db {

struct PoolOptions {
  std::size_t max_size = 16;
  std::chrono::milliseconds acquire_timeout{2'000};
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{1'000};  // a failover is followed within a second
  std::chrono::milliseconds reset_timeout{
      5'000};  // rollback of a connection returned mid-transaction
};

struct PoolStats {
  std::size_t size = 0;  // live + connecting + resetting
  std::size_t idle = 0;
  std::size_t in_use = 0;
  std::size_t waiters = 0;
  std::uint64_t created = 0;
  std::uint64_t discarded = 0;
  std::uint64_t acquire_timeouts = 0;
  std::uint64_t connect_failures = 0;
};

// Process-wide series the per-thread pools add to.
struct PoolMetrics {
  core::Gauge* size = nullptr;
  core::Gauge* in_use = nullptr;
  core::Gauge* waiters = nullptr;
  core::Histogram* acquire_wait = nullptr;
  core::Counter* acquire_timeouts = nullptr;
  core::Counter* connect_failures = nullptr;
};

template <class Conn>
class BasicPool : public std::enable_shared_from_this<BasicPool<Conn>> {
  using Clock = std::chrono::steady_clock;

 public:
  using Deadline = Clock::time_point;
  using Connector =
      std::function<boost::asio::awaitable<Result<std::unique_ptr<Conn>>>(Deadline deadline)>;

  class Lease {
   public:
    Lease() = default;
    Lease(std::shared_ptr<BasicPool> pool, std::unique_ptr<Conn> conn)
        : pool_(std::move(pool)), conn_(std::move(conn)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        give_back();
        pool_ = std::move(other.pool_);
        conn_ = std::move(other.conn_);
      }
      return *this;
    }
    ~Lease() { give_back(); }

    [[nodiscard]] Conn* operator->() const { return conn_.get(); }
    [[nodiscard]] Conn& operator*() const { return *conn_; }
    [[nodiscard]] explicit operator bool() const { return conn_ != nullptr; }

   private:
    void give_back() {
      if (conn_) pool_->release(std::move(conn_));
      pool_.reset();
    }
    std::shared_ptr<BasicPool> pool_;
    std::unique_ptr<Conn> conn_;
  };

  static std::shared_ptr<BasicPool> create(boost::asio::any_io_executor executor,
                                           PoolOptions options, Connector connector,
                                           PoolMetrics metrics = {}) {
    return std::shared_ptr<BasicPool>(
        new BasicPool(std::move(executor), options, std::move(connector), metrics));
  }

  ~BasicPool() {
    size_ = 0;
    idle_.clear();
    publish();
  }

  // Waits at most until min(deadline, now + acquire_timeout).
  [[nodiscard]] boost::asio::awaitable<Result<Lease>> acquire(Deadline deadline = Deadline::max()) {
    auto started = Clock::now();
    deadline = std::min(deadline, started + options_.acquire_timeout);
    auto self = this->shared_from_this();
    for (;;) {
      if (closed_) co_return make_error(Errc::unavailable, "the database pool is shutting down");
      while (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        if (conn->check_alive()) co_return hand_out(std::move(conn), started);
        discard_one();
      }
      auto now = Clock::now();
      if (size_ < options_.max_size && now >= next_connect_at_) {
        ++size_;
        publish();
        auto conn = co_await connector_(deadline);
        if (!conn) {
          --size_;
          ++stats_.connect_failures;
          if (metrics_.connect_failures) metrics_.connect_failures->inc();
          backoff_ = backoff_.count() == 0 ? options_.backoff_min
                                           : std::min(backoff_ * 2, options_.backoff_max);
          next_connect_at_ = Clock::now() + backoff_;
          publish();
          co_return conn.error();
        }
        backoff_ = {};
        ++stats_.created;
        co_return hand_out(std::move(*conn), started);
      }
      if (size_ == 0) {
        // Nothing will be returned to wait for: the database is unreachable and we are backing off.
        co_return make_error(Errc::unavailable, "the database is unreachable; reconnecting");
      }
      Waiter waiter(executor_);
      waiter.owner = &waiters_;
      waiter.position = waiters_.insert(waiters_.end(), &waiter);
      waiter.linked = true;
      publish();
      waiter.timer.expires_at(deadline);
      co_await waiter.timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      waiter.unlink();
      publish();
      if (waiter.conn) co_return hand_out(std::move(waiter.conn), started);
      if (waiter.retry && Clock::now() < deadline) continue;
      ++stats_.acquire_timeouts;
      if (metrics_.acquire_timeouts) metrics_.acquire_timeouts->inc();
      if (metrics_.acquire_wait) metrics_.acquire_wait->observe(Clock::now() - started);
      co_return make_error(Errc::unavailable, "timed out waiting for a database connection");
    }
  }

  [[nodiscard]] PoolStats stats() const {
    PoolStats s = stats_;
    s.size = size_;
    s.idle = idle_.size();
    s.in_use = in_use_;
    s.waiters = waiters_.size();
    return s;
  }

  // Drops idle connections and fails waiters; connections returned later are discarded.
  void close() {
    closed_ = true;
    size_ -= idle_.size();
    idle_.clear();
    for (auto* w : waiters_) w->timer.cancel();
    publish();
  }

 private:
  struct Waiter {
    explicit Waiter(const boost::asio::any_io_executor& ex) : timer(ex) {}
    ~Waiter() { unlink(); }
    void unlink() {
      if (linked) owner->erase(position);
      linked = false;
    }
    boost::asio::steady_timer timer;
    std::unique_ptr<Conn> conn;
    bool retry = false;
    bool linked = false;
    std::list<Waiter*>* owner = nullptr;
    typename std::list<Waiter*>::iterator position;
  };

  BasicPool(boost::asio::any_io_executor executor, PoolOptions options, Connector connector,
            PoolMetrics metrics)
      : executor_(std::move(executor)),
        options_(options),
        connector_(std::move(connector)),
        metrics_(metrics) {}

  Lease hand_out(std::unique_ptr<Conn> conn, Clock::time_point started) {
    ++in_use_;
    if (metrics_.acquire_wait) metrics_.acquire_wait->observe(Clock::now() - started);
    publish();
    return Lease(this->shared_from_this(), std::move(conn));
  }

  void release(std::unique_ptr<Conn> conn) {
    --in_use_;
    put_back(std::move(conn));
  }

  void put_back(std::unique_ptr<Conn> conn) {
    if (closed_ || !conn->usable()) {
      conn.reset();
      discard_one();
      return;
    }
    if (conn->transaction_state() != decltype(conn->transaction_state())::idle) {
      boost::asio::co_spawn(executor_, reset(this->shared_from_this(), std::move(conn)),
                            [self = this->shared_from_this()](const std::exception_ptr& e) {
                              if (e) self->discard_one();  // the connection died with the frame
                            });
      return;
    }
    if (!waiters_.empty()) {
      Waiter* w = waiters_.front();
      w->unlink();
      w->conn = std::move(conn);
      w->timer.cancel();
      publish();
      return;
    }
    idle_.push_back(std::move(conn));
    publish();
  }

  // Rolls back a connection returned inside a transaction, then pools it (or discards it).
  static boost::asio::awaitable<void> reset(std::shared_ptr<BasicPool> self,
                                            std::unique_ptr<Conn> conn) {
    auto done =
        co_await conn->execute_script("ROLLBACK", Clock::now() + self->options_.reset_timeout);
    if (!done) conn.reset();
    if (conn) {
      self->put_back(std::move(conn));
    } else {
      self->discard_one();
    }
  }

  void discard_one() {
    --size_;
    ++stats_.discarded;
    if (!waiters_.empty()) {  // a slot opened: let the first waiter connect
      Waiter* w = waiters_.front();
      w->unlink();
      w->retry = true;
      w->timer.cancel();
    }
    publish();
  }

  void publish() {
    auto sync = [](core::Gauge* g, std::int64_t& last, std::size_t now) {
      if (!g) return;
      g->add(static_cast<std::int64_t>(now) - last);
      last = static_cast<std::int64_t>(now);
    };
    sync(metrics_.size, published_size_, size_);
    sync(metrics_.in_use, published_in_use_, in_use_);
    sync(metrics_.waiters, published_waiters_, waiters_.size());
  }

  boost::asio::any_io_executor executor_;
  PoolOptions options_;
  Connector connector_;
  PoolMetrics metrics_;
  std::vector<std::unique_ptr<Conn>> idle_;  // LIFO: the most recently used connection is warmest
  std::list<Waiter*> waiters_;
  std::size_t size_ = 0;
  std::size_t in_use_ = 0;
  bool closed_ = false;
  std::chrono::milliseconds backoff_{0};
  Clock::time_point next_connect_at_{};
  PoolStats stats_;
  std::int64_t published_size_ = 0;
  std::int64_t published_in_use_ = 0;
  std::int64_t published_waiters_ = 0;
};

}  // namespace liftoff::db
