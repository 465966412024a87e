#include "liftoff/ratelimit/limiter.hpp"

#include <openssl/evp.h>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include "liftoff/core/metrics.hpp"
#include "liftoff/core/worker.hpp"
#include "liftoff/pubsub/redis_connection.hpp"

namespace liftoff::ratelimit {
namespace asio = boost::asio;

namespace {

// KEYS: one per check. ARGV: each key's emission interval and tolerance in microseconds, in
// order. Returns {allowed (1/0), then per key: remaining, reset, retry_after (microseconds)}.
// The same GCRA as gcra_step(); TIME is Redis's clock, one for every process. Numbers are Lua
// doubles: microseconds since 1970 stay exact below 2^53 (the year 2255).
constexpr std::string_view kScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {1}
local new_tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local base = math.max(tat, now)
  local new_tat = base + interval
  if new_tat - now > tolerance then
    out[1] = 0
    out[#out + 1] = 0
    out[#out + 1] = base - now
    out[#out + 1] = new_tat - now - tolerance
  else
    out[#out + 1] = math.floor((tolerance - (new_tat - now)) / interval)
    out[#out + 1] = new_tat - now
    out[#out + 1] = 0
  end
  new_tats[i] = new_tat
end
if out[1] == 1 then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], string.format('%.0f', new_tats[i]), 'PX',
               math.ceil((new_tats[i] - now) / 1000) + 1)
  end
end
return out
)lua";

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

// The script's answer as a decision; nullopt when it is not the shape the script returns.
std::optional<Decision> decode(const pubsub::RedisReply& reply, std::size_t checks) {
  using Type = pubsub::RedisReply::Type;
  if (reply.type != Type::array || reply.elements.size() != 1 + 3 * checks) return std::nullopt;
  for (const auto& e : reply.elements) {
    if (e.type != Type::integer) return std::nullopt;
  }
  Decision decision;
  decision.allowed = reply.elements[0].integer == 1;
  for (std::size_t i = 0; i < checks; ++i) {
    decision.outcomes.push_back({reply.elements[1 + 3 * i].integer,
                                 reply.elements[2 + 3 * i].integer,
                                 reply.elements[3 + 3 * i].integer});
  }
  return decision;
}

}  // namespace

std::string_view Limiter::script() {
  return kScript;
}

Limiter::Limiter(LimiterOptions options, core::Registry& metrics)
    : options_(std::move(options)),
      local_(options_.local_max_keys),
      script_sha_(sha1_hex(kScript)),
      connections_(options_.threads),
      executors_(options_.threads),
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
    auto keep = connection(worker, executor);  // outlives this call even if the worker stops
    std::vector<std::string> args{"EVALSHA", script_sha_, std::to_string(checks.size())};
    for (const auto& check : checks) args.push_back(std::string(kKeyPrefix) + check.key);
    for (const auto& check : checks) {
      args.push_back(std::to_string(check.policy.interval()));
      args.push_back(std::to_string(check.policy.tolerance()));
    }
    auto reply = co_await keep->command(std::move(args), options_.redis_timeout);
    if (reply) decision = decode(*reply, checks.size());
  }
  if (!decision) decision = local(checks);
  (decision->allowed ? allowed_ : refused_).inc();
  co_return std::move(*decision);
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
