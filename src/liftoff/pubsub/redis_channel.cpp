#include "liftoff/pubsub/redis_channel.hpp"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <chrono>
#include <memory>

namespace liftoff::pubsub {
namespace {

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// A connected (and authenticated) context, or why not.
Result<Context> connect(const RedisOptions& options) {
  timeval timeout{2, 0};
  Context c(redisConnectWithTimeout(options.host.c_str(), options.port, timeout));
  if (!c) return make_error(Errc::unavailable, "redis: out of memory");
  if (c->err) return make_error(Errc::unavailable, std::string("redis: ") + c->errstr);
  redisSetTimeout(c.get(), timeout);
  if (!options.password.empty()) {
    Reply r(static_cast<redisReply*>(redisCommand(c.get(), "AUTH %s", options.password.c_str())));
    if (!r || r->type == REDIS_REPLY_ERROR)
      return make_error(Errc::unavailable, "redis: AUTH failed");
  }
  return c;
}

}  // namespace

Result<RedisOptions> parse_redis_url(std::string_view url) {
  auto invalid = [] {
    return make_error(Errc::validation_failed, "expected redis://[:password@]host[:port]");
  };
  constexpr std::string_view kScheme = "redis://";
  if (!url.starts_with(kScheme)) return invalid();
  auto rest = url.substr(kScheme.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);
  RedisOptions options;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    auto credentials = rest.substr(0, at);
    if (auto colon = credentials.find(':'); colon != std::string_view::npos)
      credentials = credentials.substr(colon + 1);
    options.password = std::string(credentials);
    rest = rest.substr(at + 1);
  }
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    auto digits = rest.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc{} || end != digits.data() + digits.size() || port == 0 || port > 65535)
      return invalid();
    options.port = static_cast<std::uint16_t>(port);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return invalid();
  options.host = std::string(rest);
  return options;
}

RedisChannel::RedisChannel(RedisOptions options, std::string channel, OnMessage on_message,
                           std::function<void()> on_subscribed)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      on_message_(std::move(on_message)),
      on_subscribed_(std::move(on_subscribed)) {
  if (::pipe2(wake_pipe_, O_NONBLOCK | O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
}

RedisChannel::~RedisChannel() {
  stop();
  ::close(wake_pipe_[0]);
  ::close(wake_pipe_[1]);
}

void RedisChannel::start() {
  thread_ = std::thread([this] { run(); });
}

void RedisChannel::stop() {
  stopping_.store(true, std::memory_order_relaxed);
  wake();
  if (thread_.joinable()) thread_.join();
}

void RedisChannel::publish(std::string message) {
  {
    std::lock_guard lock(mutex_);
    outbox_.push_back(std::move(message));
  }
  wake();
}

void RedisChannel::wake() {
  char byte = 1;
  [[maybe_unused]] auto n = ::write(wake_pipe_[1], &byte, 1);  // full pipe: a wake is pending
}

void RedisChannel::run() {
  std::chrono::milliseconds backoff{100};
  while (!stopping_.load(std::memory_order_relaxed)) {
    auto subscriber = connect(options_);
    auto publisher = subscriber ? connect(options_) : Result<Context>(subscriber.error());
    if (subscriber && publisher) {
      Reply r(static_cast<redisReply*>(
          redisCommand(subscriber->get(), "SUBSCRIBE %b", channel_.data(), channel_.size())));
      if (!r || r->type == REDIS_REPLY_ERROR)
        subscriber = make_error(Errc::unavailable, "redis: SUBSCRIBE failed");
    }
    if (!subscriber || !publisher) {
      const auto& error = !subscriber ? subscriber.error() : publisher.error();
      spdlog::warn("{} channel: {}; retrying in {} ms", channel_, error.detail, backoff.count());
      pollfd p{wake_pipe_[0], POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(backoff.count()));
      char drain[64];
      while (::read(wake_pipe_[0], drain, sizeof drain) > 0) {
      }
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      std::lock_guard lock(mutex_);
      outbox_.clear();  // nobody could be told; the hubs' polls cover it
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    subscribed_.store(true, std::memory_order_relaxed);
    if (on_subscribed_) on_subscribed_();
    auto* sub = subscriber->get();
    auto* pub = publisher->get();
    bool healthy = true;
    while (healthy && !stopping_.load(std::memory_order_relaxed)) {
      std::array<pollfd, 2> fds{pollfd{sub->fd, POLLIN, 0}, pollfd{wake_pipe_[0], POLLIN, 0}};
      ::poll(fds.data(), fds.size(), 250);
      if (fds[1].revents & POLLIN) {
        char drain[64];
        while (::read(wake_pipe_[0], drain, sizeof drain) > 0) {
        }
      }
      std::vector<std::string> outgoing;
      {
        std::lock_guard lock(mutex_);
        outgoing.swap(outbox_);
      }
      // Pipelined: every PUBLISH goes out in one write, then the replies are read.
      for (const auto& m : outgoing)
        redisAppendCommand(pub, "PUBLISH %b %b", channel_.data(), channel_.size(), m.data(),
                           m.size());
      for (std::size_t i = 0; i < outgoing.size() && healthy; ++i) {
        void* raw = nullptr;
        healthy = redisGetReply(pub, &raw) == REDIS_OK;
        if (raw != nullptr) freeReplyObject(raw);
      }
      if (healthy && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
        healthy = redisBufferRead(sub) == REDIS_OK;
        void* raw = nullptr;
        while (healthy && redisGetReplyFromReader(sub, &raw) == REDIS_OK && raw != nullptr) {
          Reply reply(static_cast<redisReply*>(raw));
          raw = nullptr;
          // ["message", channel, payload]
          if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
              reply->element[2]->type == REDIS_REPLY_STRING) {
            on_message_(std::string_view(reply->element[2]->str, reply->element[2]->len));
          }
        }
      }
    }
    subscribed_.store(false, std::memory_order_relaxed);
    if (!healthy) spdlog::warn("{} channel: lost the connection to redis", channel_);
  }
}

}  // namespace liftoff::pubsub
