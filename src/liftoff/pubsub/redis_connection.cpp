#include "liftoff/pubsub/redis_connection.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <optional>

namespace liftoff::pubsub {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(1);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);
constexpr auto kFirstBackoff = std::chrono::milliseconds(50);

RedisReply convert(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::string;
      out.text.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::status;
      out.text.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::error;
      out.text.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::integer;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::array;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
      break;
    default:
      out.type = RedisReply::Type::nil;
  }
  return out;
}

Error unavailable(std::string why) {
  return make_error(Errc::unavailable, "redis: " + std::move(why));
}

}  // namespace

struct RedisConnection::Pending {
  explicit Pending(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;
  std::optional<Result<RedisReply>> result;
};

struct RedisConnection::Impl {
  explicit Impl(asio::any_io_executor ex)
      : executor(std::move(ex)), socket(executor), write_wake(executor) {}
  ~Impl() {
    if (reader) redisReaderFree(reader);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  asio::any_io_executor executor;
  tcp::socket socket;
  asio::steady_timer write_wake;  // the writer waits on it; enqueue() cancels it
  std::string outbox;
  std::deque<std::shared_ptr<Pending>> pending;
  redisReader* reader = nullptr;
};

RedisConnection::RedisConnection(asio::any_io_executor executor, RedisOptions options,
                                 OnConnect on_connect)
    : impl_(std::make_unique<Impl>(std::move(executor))),
      options_(std::move(options)),
      on_connect_(std::move(on_connect)) {}

RedisConnection::~RedisConnection() = default;

void RedisConnection::enqueue(const std::vector<std::string>& args,
                              const std::shared_ptr<Pending>& pending) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* formatted = nullptr;
  auto length = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()), argv.data(),
                                       lengths.data());
  if (length < 0 || formatted == nullptr) {
    pending->result = unavailable("cannot format the command");
    return;
  }
  impl_->outbox.append(formatted, static_cast<std::size_t>(length));
  redisFreeCommand(formatted);
  impl_->pending.push_back(pending);
  impl_->write_wake.cancel();
}

void RedisConnection::drop(std::string_view why, bool quietly) {
  if (state_ == State::up && !quietly)
    spdlog::warn("redis {}:{}: {}", options_.host, options_.port, why);
  state_ = State::down;
  ++generation_;
  retry_at_ = Clock::now() + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  boost::system::error_code ignored;
  impl_->socket.close(ignored);
  impl_->outbox.clear();
  impl_->write_wake.cancel();
  auto waiting = std::move(impl_->pending);
  impl_->pending.clear();
  for (auto& p : waiting) {
    if (!p->result) p->result = unavailable(std::string(why));
    p->timer.cancel();
  }
}

void RedisConnection::connect_soon() {
  if (state_ != State::down) return;
  state_ = State::connecting;
  asio::co_spawn(
      impl_->executor,
      [self = shared_from_this()]() -> asio::awaitable<void> { co_await self->connect(); },
      asio::detached);
}

void RedisConnection::close() {
  drop("closed", true);
  retry_at_ = Clock::time_point::max();
}

asio::awaitable<Result<RedisReply>> RedisConnection::command(std::vector<std::string> args,
                                                             std::chrono::microseconds timeout) {
  if (state_ != State::up) {
    if (state_ == State::down && Clock::now() >= retry_at_) connect_soon();
    co_return unavailable("not connected");
  }
  auto pending = std::make_shared<Pending>(impl_->executor);
  pending->timer.expires_after(timeout);
  enqueue(args, pending);
  if (!pending->result) co_await pending->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (pending->result) co_return std::move(*pending->result);
  drop("no reply within " + std::to_string(timeout.count()) + " us");
  co_return unavailable("no reply in time");
}

asio::awaitable<void> RedisConnection::connect() {
  const auto generation = ++generation_;
  auto self = shared_from_this();
  auto& impl = *impl_;
  tcp::resolver resolver(impl.executor);
  auto [resolve_ec, endpoints] = co_await resolver.async_resolve(
      options_.host, std::to_string(options_.port), asio::as_tuple(asio::use_awaitable));
  if (generation != generation_) co_return;
  if (resolve_ec) {
    drop("cannot resolve: " + resolve_ec.message());
    co_return;
  }
  impl.socket = tcp::socket(impl.executor);
  // The connect may hang (a paused host): a timer closes the socket after kConnectTimeout.
  asio::steady_timer limit(impl.executor);
  limit.expires_after(kConnectTimeout);
  limit.async_wait([self, generation](boost::system::error_code ec) {
    if (!ec && generation == self->generation_ && self->state_ == State::connecting) {
      boost::system::error_code ignored;
      self->impl_->socket.close(ignored);
    }
  });
  auto [connect_ec, endpoint] =
      co_await asio::async_connect(impl.socket, endpoints, asio::as_tuple(asio::use_awaitable));
  limit.cancel();
  if (generation != generation_) co_return;
  if (connect_ec) {
    state_ = State::up;  // so that drop() logs the first failure of a run of them once
    drop("cannot connect: " + connect_ec.message());
    co_return;
  }
  boost::system::error_code ignored;
  impl.socket.set_option(tcp::no_delay(true), ignored);
  if (impl.reader) redisReaderFree(impl.reader);
  impl.reader = redisReaderCreate();
  state_ = State::up;
  asio::co_spawn(
      impl.executor, [self, generation]() { return self->read_loop(generation); }, asio::detached);
  asio::co_spawn(
      impl.executor, [self, generation]() { return self->write_loop(generation); }, asio::detached);
  std::vector<std::vector<std::string>> first;
  if (!options_.password.empty()) first.push_back({"AUTH", options_.password});
  first.insert(first.end(), on_connect_.begin(), on_connect_.end());
  for (const auto& args : first) {
    auto reply = co_await command(args, kConnectTimeout);
    if (generation != generation_) co_return;
    if (!reply || reply->type == RedisReply::Type::error) {
      drop("setting up the connection failed: " + (reply ? reply->text : reply.error().detail));
      co_return;
    }
  }
  backoff_ = kFirstBackoff;
  spdlog::info("redis {}:{}: connected", options_.host, options_.port);
}

asio::awaitable<void> RedisConnection::read_loop(std::uint64_t generation) {
  auto self = shared_from_this();
  std::array<char, 16 * 1024> buffer{};
  while (generation == generation_) {
    auto [ec, n] = co_await impl_->socket.async_read_some(asio::buffer(buffer),
                                                          asio::as_tuple(asio::use_awaitable));
    if (generation != generation_) co_return;
    if (ec) {
      drop(ec == asio::error::eof ? "the server closed the connection" : ec.message());
      co_return;
    }
    if (redisReaderFeed(impl_->reader, buffer.data(), n) != REDIS_OK) {
      drop("unreadable reply");
      co_return;
    }
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(impl_->reader, &raw) != REDIS_OK) {
        drop("unreadable reply");
        co_return;
      }
      if (raw == nullptr) break;
      auto* reply = static_cast<redisReply*>(raw);
      auto converted = convert(*reply);
      freeReplyObject(reply);
      if (impl_->pending.empty()) {
        drop("a reply nobody asked for");
        co_return;
      }
      auto pending = std::move(impl_->pending.front());
      impl_->pending.pop_front();
      pending->result = std::move(converted);
      pending->timer.cancel();
    }
  }
}

asio::awaitable<void> RedisConnection::write_loop(std::uint64_t generation) {
  auto self = shared_from_this();
  std::string sending;
  while (generation == generation_) {
    if (impl_->outbox.empty()) {
      impl_->write_wake.expires_at(asio::steady_timer::time_point::max());
      co_await impl_->write_wake.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    sending.clear();
    sending.swap(impl_->outbox);
    auto [ec, n] = co_await asio::async_write(impl_->socket, asio::buffer(sending),
                                              asio::as_tuple(asio::use_awaitable));
    if (generation != generation_) co_return;
    if (ec) {
      drop(ec.message());
      co_return;
    }
  }
}

}  // namespace liftoff::pubsub
