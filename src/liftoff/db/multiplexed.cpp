// The multiplexed use of a connection (Connection::submit): statements of many coroutines
// pipelined on one connection, each in its own segment, answered in order by one reader, with
// deadlines enforced by a sweeper instead of a timer per statement. The exclusive use (query,
// pipeline, transactions) is in connection.cpp.
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <unordered_set>

#include "liftoff/db/connection.hpp"

namespace liftoff::db {
namespace asio = boost::asio;

namespace {
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kDeadlineSweep = std::chrono::milliseconds(50);
}  // namespace

struct Connection::Submission {
  Submission(const Statement& s, const Params& p, Deadline d, const asio::any_io_executor& ex)
      : built_name(s.fixed ? "" : s.name),
        built_sql(s.fixed ? "" : s.sql),
        statement{s.plane, s.fixed ? s.name : built_name, s.fixed ? s.sql : built_sql, s.fixed,
                  s.generic_plan},
        params(p),
        deadline(d),
        signal(ex, asio::steady_timer::time_point::max()) {}
  // The caller may give up (deadline) before the statement is sent or answered, taking a built
  // statement's text with it: the submission keeps copies (a fixed statement's text is static).
  std::string built_name, built_sql;
  Statement statement;
  Params params;
  Deadline deadline;
  bool prepare = false;
  std::optional<Result<Rows>> result;  // set once: the answer, or the timeout
  // Wakes the caller when cancelled. It never expires, so it costs a timer-heap insert and removal
  // but never a timerfd update; deadlines are enforced by sweep_deadlines().
  asio::steady_timer signal;
  Clock::time_point submitted = Clock::now();

  // Hands the caller its answer (the first one wins: a late result after a timeout is dropped).
  void answer(Result<Rows> r) {
    if (result) return;
    result.emplace(std::move(r));
    signal.cancel();
  }
};

std::shared_ptr<Connection::Submission> Connection::enqueue(const Statement& statement,
                                                            const Params& params,
                                                            Deadline deadline) {
  auto submission = std::make_shared<Submission>(statement, params, deadline, executor_);
  unsent_.push_back(submission);
  if (!flush_posted_) {
    // Let every coroutine that runs in this turn of the event loop add its statement first.
    flush_posted_ = true;
    asio::post(executor_, [self = shared_from_this()] { self->flush_submissions(); });
  }
  if (!sweeper_running_ && (deadline != Deadline::max() || silence_limit_.count() > 0)) {
    sweeper_running_ = true;
    asio::co_spawn(
        executor_, sweep_deadlines(),
        [self = shared_from_this()](const std::exception_ptr&) { self->sweeper_running_ = false; });
  }
  return submission;
}

asio::awaitable<Result<Rows>> Connection::answer_of(std::shared_ptr<Submission> submission) {
  if (!submission->result) co_await submission->signal.async_wait(kUseTuple);
  co_return std::move(*submission->result);
}

asio::awaitable<Result<Rows>> Connection::submit(const Statement& statement, const Params& params,
                                                 Deadline deadline) {
  if (!usable()) co_return make_error(Errc::unavailable, "connection to PostgreSQL is not usable");
  auto self = weak_from_this().lock();  // alive until answered
  if (!self)
    co_return make_error(Errc::internal, "submit() needs a connection owned by a shared_ptr");
  co_return co_await answer_of(enqueue(statement, params, deadline));
}

asio::awaitable<std::vector<Result<Rows>>> Connection::submit(std::span<const Query> queries,
                                                              Deadline deadline) {
  std::vector<Result<Rows>> results;
  results.reserve(queries.size());
  auto self = weak_from_this().lock();  // alive until answered
  if (!usable() || !self) {
    for (std::size_t i = 0; i < queries.size(); ++i)
      results.emplace_back(make_error(Errc::unavailable, "connection to PostgreSQL is not usable"));
    co_return results;
  }
  std::vector<std::shared_ptr<Submission>> submissions;
  submissions.reserve(queries.size());
  for (const auto& query : queries)
    submissions.push_back(enqueue(*query.statement, query.params, deadline));
  for (auto& submission : submissions) results.push_back(co_await answer_of(submission));
  co_return results;
}

Clock::time_point Connection::oldest_submitted() const {
  if (!sent_.empty()) return sent_.front()->submitted;
  if (!unsent_.empty()) return unsent_.front()->submitted;
  return Clock::now();
}

// While statements are outstanding, answers those past their deadline with Errc::timeout, and
// closes the connection when the server has been silent past silence_limit_.
asio::awaitable<void> Connection::sweep_deadlines() {
  asio::steady_timer timer(executor_);
  while (in_flight() > 0) {
    timer.expires_after(kDeadlineSweep);
    co_await timer.async_wait(kUseTuple);
    auto now = Clock::now();
    if (silence_limit_.count() > 0 && !sent_.empty() && now - answered_at_ > silence_limit_) {
      spdlog::warn(
          "PostgreSQL sent nothing on connection {} for {} ms with {} statements waiting: "
          "closing it",
          backend_pid(), silence_limit_.count(), sent_.size());
      force_close();
      fail_submissions(
          make_error(Errc::unavailable, "PostgreSQL stopped answering; the connection was closed"));
      break;
    }
    for (auto* queue : {&sent_, &unsent_}) {
      for (auto& sub : *queue) {
        if (!sub->result && sub->deadline <= now) {
          sub->answer(make_error(Errc::timeout, "query exceeded its deadline"));
        }
      }
    }
  }
}

void Connection::flush_submissions() {
  flush_posted_ = false;
  if (unsent_.empty()) return;
  if (!usable()) {
    fail_submissions(make_error(Errc::unavailable, "connection to PostgreSQL is not usable"));
    return;
  }
  std::unordered_set<std::string_view> preparing;  // by segments still in flight
  for (const auto& sent : sent_) {
    if (sent->prepare) preparing.insert(sent->statement.name);
  }
  while (!unsent_.empty()) {
    auto sub = std::move(unsent_.front());
    unsent_.pop_front();
    auto prepare = send_segment(sub->statement, sub->params, preparing);
    if (!prepare) {
      sub->answer(prepare.error());
      if (!usable()) {
        fail_submissions(prepare.error());
        return;
      }
      continue;  // a misnamed statement fails alone
    }
    sub->prepare = *prepare;
    if (sent_.empty()) answered_at_ = Clock::now();  // the silence counts from here
    sent_.push_back(std::move(sub));
  }
  if (reader_running_) {
    if (PQflush(conn_) == 1) {
      // Output is left over and the reader may be waiting for input only: make it wait for both.
      rewait_ = true;
      interrupt_socket_wait();
    }
    return;
  }
  reader_running_ = true;
  // The completion handler owns a reference, so the connection outlives its reader.
  asio::co_spawn(executor_, read_submissions(),
                 [self = shared_from_this()](const std::exception_ptr& e) {
                   if (!e) return;
                   self->reader_running_ = false;
                   self->broken_ = true;
                   self->fail_submissions(make_error(Errc::internal, "pipelined reader failed"));
                 });
}

asio::awaitable<void> Connection::read_submissions() {
  while (!sent_.empty()) {
    auto sub = sent_.front();
    auto rows = co_await read_segment(sub->statement, sub->prepare);
    if (!usable()) {
      fail_submissions(rows ? broken_error("receive") : rows.error());
      break;
    }
    if (sent_.empty() || sent_.front() != sub) break;  // failed and cleared while we waited
    sent_.pop_front();
    answered_at_ = Clock::now();
    // Observed first: once answered, a statement built for the request (Statement::fixed false)
    // may be gone.
    if (observer_)
      observer_->observed(sub->statement, sub->params, Clock::now() - sub->submitted,
                          rows.has_value());
    sub->answer(std::move(rows));
  }
  reader_running_ = false;
}

void Connection::fail_submissions(const Error& error) {
  for (auto* queue : {&sent_, &unsent_}) {
    for (auto& sub : *queue) sub->answer(error);
    queue->clear();
  }
}

}  // namespace liftoff::db
