#include "liftoff/identity/password_hasher.hpp"

#include <sodium.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <optional>
#include <stdexcept>

namespace liftoff::identity {
namespace asio = boost::asio;

namespace {
std::optional<std::string> argon2id(const std::string& password, const PasswordHashOptions& o) {
  std::string out(crypto_pwhash_STRBYTES, '\0');
  if (crypto_pwhash_str_alg(out.data(), password.data(), password.size(), o.ops_limit, o.mem_limit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return std::nullopt;  // out of memory
  }
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}
}  // namespace

PasswordHasher::PasswordHasher(PasswordHashOptions options)
    : options_(options), pool_(std::max<std::size_t>(1, options.threads)) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
  std::string random(32, '\0');
  randombytes_buf(random.data(), random.size());
  auto decoy = argon2id(random, options_);
  if (!decoy) throw std::runtime_error("cannot compute an Argon2id hash (memory limit too high?)");
  decoy_ = std::move(*decoy);
}

PasswordHasher::~PasswordHasher() {
  pool_.join();
}

Result<void> PasswordHasher::admit(const std::string& client) {
  if (admitted_.fetch_add(1, std::memory_order_relaxed) >= options_.max_queue) {
    admitted_.fetch_sub(1, std::memory_order_relaxed);
    return make_error(Errc::too_many_requests,
                      "too many password checks in progress; retry shortly");
  }
  if (client.empty() || options_.max_per_client == 0) return {};
  std::lock_guard lock(clients_mutex_);
  auto& held = clients_[client];
  if (held >= options_.max_per_client) {
    admitted_.fetch_sub(1, std::memory_order_relaxed);
    return make_error(Errc::too_many_requests,
                      "too many password checks in progress from your address; retry shortly");
  }
  ++held;
  return {};
}

void PasswordHasher::release(const std::string& client) {
  admitted_.fetch_sub(1, std::memory_order_relaxed);
  if (client.empty() || options_.max_per_client == 0) return;
  std::lock_guard lock(clients_mutex_);
  auto it = clients_.find(client);
  if (it != clients_.end() && --it->second == 0) clients_.erase(it);
}

class PasswordHasher::Admission {
 public:
  Admission(PasswordHasher& hasher, std::string client)
      : hasher_(hasher), client_(std::move(client)) {}
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;
  ~Admission() { hasher_.release(client_); }

 private:
  PasswordHasher& hasher_;
  std::string client_;
};

// Runs `work` on the hashing pool and resumes the caller on its own executor. The hand-back is a
// post to the caller's executor that cancels a never-expiring timer: no thread but the caller's
// ever touches the caller's objects.
template <class T, class Work>
asio::awaitable<Result<T>> PasswordHasher::run(Work& work, std::string_view client_address) {
  std::string client(client_address);
  if (auto admitted = admit(client); !admitted) co_return admitted.error();
  Admission admission(*this, std::move(client));
  struct Job {
    explicit Job(const asio::any_io_executor& ex)
        : done(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done;
    std::optional<Result<T>> result;
  };
  auto home = co_await asio::this_coro::executor;
  auto job = std::make_shared<Job>(home);
  // The pool thread hands the job back without keeping a reference: the job (and its timer, bound
  // to the caller's io_context) must only ever be destroyed on the caller's side. `work` is moved
  // into the pool's handler before the first suspension.
  asio::post(pool_, [job, home, work = std::move(work)]() mutable {
    Result<T> r = work();
    asio::post(home, [job = std::move(job), r = std::move(r)]() mutable {
      job->result.emplace(std::move(r));
      job->done.cancel();
    });
  });
  co_await job->done.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return std::move(*job->result);
}

asio::awaitable<Result<std::string>> PasswordHasher::hash(const std::string& password,
                                                          std::string_view client) {
  // A named lambda, not a temporary, in the co_await: GCC 12 destroys such temporaries twice.
  auto work = [password, o = options_]() -> Result<std::string> {
    auto h = argon2id(password, o);
    if (!h) return make_error(Errc::unavailable, "password hashing ran out of memory");
    return *h;
  };
  co_return co_await run<std::string>(work, client);
}

asio::awaitable<Result<Verification>> PasswordHasher::verify(const std::string& password,
                                                             const std::string& stored,
                                                             std::string_view client) {
  auto work = [password, stored, o = options_]() -> Result<Verification> {
    Verification v;
    v.matches = crypto_pwhash_str_verify(stored.c_str(), password.data(), password.size()) == 0;
    v.needs_rehash =
        v.matches && crypto_pwhash_str_needs_rehash(stored.c_str(), o.ops_limit, o.mem_limit) != 0;
    return v;
  };
  co_return co_await run<Verification>(work, client);
}

}  // namespace liftoff::identity
