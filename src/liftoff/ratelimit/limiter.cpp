#include "liftoff/ratelimit/limiter.hpp"

#include <openssl/evp.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "liftoff/core/metrics.hpp"
#include "liftoff/core/worker.hpp"
#include "liftoff/pubsub/redis_connection.hpp"

namespace liftoff::ratelimit {
namespace asio = boost::asio;

namespace {

// A batch of requests, decided in order, each all or nothing. KEYS: every request's keys, one
// after the other. ARGV: the number of requests; then per request its number of keys followed by
// each key's emission interval and tolerance in microseconds. Returns, per request, allowed (1/0)
// and per key remaining, reset, retry_after (microseconds). The same GCRA as gcra_step(); TIME is
// Redis's clock, one for every process. A key's TAT is read once and then kept in the script, so a
// request sees what the requests before it in the batch spent; each changed key is written once,
// expiring when its quota is whole again. Numbers are Lua doubles: microseconds since 1970 stay
// exact below 2^53 (the year 2255).
constexpr std::string_view kScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats, changed, out = {}, {}, {}
local k, a = 1, 2
for _ = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  a = a + 1
  local head = #out + 1
  out[head] = 1
  local new_tats = {}
  for i = 0, n - 1 do
    local key = KEYS[k + i]
    local interval = tonumber(ARGV[a + 2 * i])
    local tolerance = tonumber(ARGV[a + 2 * i + 1])
    local tat = tats[key]
    if tat == nil then
      tat = tonumber(redis.call('GET', key) or '0')
      tats[key] = tat
    end
    local base = math.max(tat, now)
    local new_tat = base + interval
    if new_tat - now > tolerance then
      out[head] = 0
      out[#out + 1] = 0
      out[#out + 1] = base - now
      out[#out + 1] = new_tat - now - tolerance
    else
      out[#out + 1] = math.floor((tolerance - (new_tat - now)) / interval)
      out[#out + 1] = new_tat - now
      out[#out + 1] = 0
    end
    new_tats[i + 1] = new_tat
  end
  if out[head] == 1 then
    for i = 0, n - 1 do
      local key = KEYS[k + i]
      if tats[key] ~= new_tats[i + 1] then
        tats[key] = new_tats[i + 1]
        if not changed[key] then
          changed[key] = true
          changed[#changed + 1] = key
        end
      end
    end
  end
  k = k + n
  a = a + 2 * n
end
for i = 1, #changed do
  local key = changed[i]
  redis.call('SET', key, string.format('%.0f', tats[key]), 'PX',
             math.ceil((tats[key] - now) / 1000) + 1)
end
return out
)lua";

// At most this many requests in one script call: Redis runs a script alone, so a batch is kept
// to a fraction of a millisecond.
constexpr std::size_t kMaxBatch = 128;

constexpr std::string_view kKeyPrefix = "liftoff:rl:";

std::string sha1_hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

}  // namespace

// Requests of one worker that share one script call.
class Limiter::Batch {
 public:
  explicit Batch(const asio::any_io_executor& executor) : done_(executor) {
    done_.expires_at(asio::steady_timer::time_point::max());
  }

  // Adds a request's checks; its index in the batch.
  std::size_t add(std::span<const Check> checks) {
    sizes_.push_back(checks.size());
    arguments_.push_back(std::to_string(checks.size()));
    for (const auto& check : checks) {
      keys_.push_back(std::string(kKeyPrefix) + check.key);
      arguments_.push_back(std::to_string(check.policy.interval()));
      arguments_.push_back(std::to_string(check.policy.tolerance()));
    }
    decisions_.emplace_back();
    return sizes_.size() - 1;
  }
  [[nodiscard]] std::size_t size() const { return sizes_.size(); }

  // EVALSHA of the script with the batch's keys and arguments.
  [[nodiscard]] std::vector<std::string> command(const std::string& sha) const {
    std::vector<std::string> args;
    args.reserve(4 + keys_.size() + arguments_.size());
    args.insert(args.end(), {"EVALSHA", sha, std::to_string(keys_.size())});
    args.insert(args.end(), keys_.begin(), keys_.end());
    args.push_back(std::to_string(sizes_.size()));
    args.insert(args.end(), arguments_.begin(), arguments_.end());
    return args;
  }

  // Records the script's answer (nothing when it is not the shape the script returns) and wakes
  // every request of the batch.
  void decide(const Result<pubsub::RedisReply>& reply) {
    if (reply) decode(*reply);
    decided_ = true;
    done_.cancel();
  }
  // Waits until decide() ran; then the request's decision, or none (it decides alone).
  asio::awaitable<std::optional<Decision>> decision(std::size_t index) {
    if (!decided_) co_await done_.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return std::move(decisions_[index]);
  }

 private:
  void decode(const pubsub::RedisReply& reply) {
    using Type = pubsub::RedisReply::Type;
    if (reply.type != Type::array || reply.elements.size() != sizes_.size() + 3 * keys_.size()) {
      return;
    }
    for (const auto& e : reply.elements) {
      if (e.type != Type::integer) return;
    }
    auto next = reply.elements.begin();
    for (std::size_t request = 0; request < sizes_.size(); ++request) {
      Decision decision;
      decision.allowed = (next++)->integer == 1;
      for (std::size_t i = 0; i < sizes_[request]; ++i, next += 3) {
        decision.outcomes.push_back({next[0].integer, next[1].integer, next[2].integer});
      }
      decisions_[request] = std::move(decision);
    }
  }

  std::vector<std::size_t> sizes_;      // checks per request
  std::vector<std::string> keys_;       // every request's keys, in order
  std::vector<std::string> arguments_;  // per request: its key count, then interval, tolerance
  std::vector<std::optional<Decision>> decisions_;
  bool decided_ = false;
  asio::steady_timer done_;  // the requests wait on it; decide() cancels it
};

std::string_view Limiter::script() {
  return kScript;
}

Limiter::Limiter(LimiterOptions options, core::Registry& metrics)
    : options_(std::move(options)),
      local_(options_.local_max_keys),
      script_sha_(sha1_hex(kScript)),
      connections_(options_.threads),
      executors_(options_.threads),
      forming_(options_.threads),
      allowed_(metrics.counter("liftoff_rate_limit_decisions_total",
                               "Requests the rate limiter decided", "outcome=\"allowed\"")),
      refused_(metrics.counter("liftoff_rate_limit_decisions_total",
                               "Requests the rate limiter decided", "outcome=\"refused\"")),
      local_decisions_(metrics.counter(
          "liftoff_rate_limit_local_decisions_total",
          "Decisions the process made alone because Redis was not configured, down or slow")) {}

Limiter::~Limiter() = default;

Decision Limiter::local(std::span<const Check> checks) {
  local_decisions_.inc();
  return local_.check(checks, now_micros());
}

asio::awaitable<Decision> Limiter::check(std::span<const Check> checks) {
  std::optional<Decision> decision;
  const auto worker = core::this_worker();
  if (options_.redis && worker < connections_.size()) {
    auto executor = co_await asio::this_coro::executor;
    auto batch = forming_[worker];
    const bool leads = !batch || batch->size() == kMaxBatch;
    if (leads) batch = forming_[worker] = std::make_shared<Batch>(executor);
    const auto index = batch->add(checks);
    if (leads) {
      // The requests this event loop has ready now join before the batch leaves.
      co_await asio::post(executor, asio::use_awaitable);
      if (forming_[worker] == batch) forming_[worker].reset();
      co_await send(worker, *batch);
    }
    decision = co_await batch->decision(index);
  }
  if (!decision) decision = local(checks);
  (decision->allowed ? allowed_ : refused_).inc();
  co_return std::move(*decision);
}

asio::awaitable<void> Limiter::send(std::size_t worker, Batch& batch) {
  auto executor = co_await asio::this_coro::executor;
  auto keep = connection(worker, executor);  // outlives this call even if the worker stops
  auto reply = co_await keep->command(batch.command(script_sha_), options_.redis_timeout);
  batch.decide(reply);
}

std::shared_ptr<pubsub::RedisConnection>& Limiter::connection(
    std::size_t worker, const asio::any_io_executor& executor) {
  auto& slot = connections_[worker];
  if (!slot) {
    slot = std::make_shared<pubsub::RedisConnection>(
        executor, *options_.redis,
        pubsub::RedisConnection::OnConnect{{"SCRIPT", "LOAD", std::string(kScript)}});
  }
  return slot;
}

void Limiter::start_worker(std::size_t worker, const asio::any_io_executor& executor) {
  if (!options_.redis || worker >= connections_.size()) return;
  executors_[worker] = executor;
  connection(worker, executor)->connect_soon();
}

void Limiter::drain() {
  for (std::size_t worker = 0; worker < executors_.size(); ++worker) {
    if (!executors_[worker]) continue;
    asio::post(executors_[worker], [this, worker] {
      if (connections_[worker]) connections_[worker]->close();
    });
  }
}

void Limiter::stop_worker(std::size_t worker) {
  if (worker < connections_.size() && connections_[worker]) {
    connections_[worker]->close();
    connections_[worker].reset();
  }
}

}  // namespace liftoff::ratelimit
