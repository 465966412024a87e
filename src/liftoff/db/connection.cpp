#include "liftoff/db/connection.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <unordered_set>

#include "liftoff/db/error.hpp"

namespace liftoff::db {
namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

namespace {
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kCancelGrace = std::chrono::seconds(1);
// Run in a generic-plan statement's segment, ahead of it: transaction-local, so the setting ends
// with the segment's implicit transaction (and a SET LOCAL there would log a warning).
constexpr const char* kGenericPlanName = "liftoff.generic_plan";
constexpr const char* kGenericPlanSql =
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)";

// PQcancel opens a new connection and blocks; it runs here, never on an event loop.
asio::thread_pool& cancel_pool() {
  static asio::thread_pool pool(1);
  return pool;
}

// libpq's messages end in a newline (and sometimes a space).
std::string trimmed(std::string m) {
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

std::string pg_message(pg_conn* conn) {
  return trimmed(conn ? PQerrorMessage(conn) : "out of memory");
}

// Waits until `sd` is ready for `first`, or `second` when given, or until the deadline passes.
// Returns the error code (operation_aborted on deadline).
asio::awaitable<boost::system::error_code> wait_fd(asio::posix::stream_descriptor& sd,
                                                   asio::posix::descriptor_base::wait_type type,
                                                   Deadline deadline) {
  asio::steady_timer timer(sd.get_executor(), deadline);
  auto result = co_await (sd.async_wait(type, kUseTuple) || timer.async_wait(kUseTuple));
  if (result.index() == 1) co_return asio::error::timed_out;
  co_return std::get<0>(std::get<0>(result));
}
}  // namespace

// The dup()ed socket registered with the reactor; closing it never closes libpq's own descriptor.
struct Connection::Descriptor {
  asio::posix::stream_descriptor sd;
};

// Arms the deadline of one operation: cancel at the deadline, close the socket after the grace.
struct Connection::Watchdog {
  struct State {
    Connection* conn;
    asio::steady_timer timer;
    bool active = true;
  };
  std::shared_ptr<State> state;

  Watchdog(Connection& c, Deadline deadline)
      : state(std::make_shared<State>(State{&c, asio::steady_timer(c.executor_), true})) {
    c.timed_out_ = false;
    if (deadline == Deadline::max()) return;
    state->timer.expires_at(deadline);
    state->timer.async_wait([s = state](const boost::system::error_code& ec) {
      if (ec || !s->active) return;
      s->conn->timed_out_ = true;
      s->conn->request_cancel();
      s->timer.expires_after(kCancelGrace);
      s->timer.async_wait([s](const boost::system::error_code& ec2) {
        if (ec2 || !s->active) return;
        spdlog::warn("postgres did not honour a cancel request within {}s; closing the connection",
                     kCancelGrace.count());
        s->conn->force_close();
      });
    });
  }
  ~Watchdog() {
    state->active = false;
    state->timer.cancel();
  }
};

Connection::Connection(asio::any_io_executor executor, pg_conn* conn)
    : executor_(std::move(executor)), conn_(conn) {
  int fd = ::dup(PQsocket(conn_));
  socket_ = std::make_unique<Descriptor>(Descriptor{asio::posix::stream_descriptor(executor_, fd)});
  cancel_ = std::shared_ptr<pg_cancel>(PQgetCancel(conn_), [](pg_cancel* c) {
    if (c) PQfreeCancel(c);
  });
  PQsetNoticeReceiver(conn_, on_notice, this);
}

// Notices, and errors the server sends while no statement runs, which libpq passes as notices: a
// FATAL one (57P01 at a shutdown or pg_terminate_backend) means the server is ending this session,
// and its EOF may not have arrived yet.
void Connection::on_notice(void* self, const pg_result* notice) {
  const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
  std::string_view level = severity ? severity : "";
  auto message = trimmed(PQresultErrorMessage(notice));
  if (level == "FATAL" || level == "PANIC") {
    static_cast<Connection*>(self)->broken_ = true;
    spdlog::info("postgres ended a connection: {}", message);
  } else {
    spdlog::debug("postgres: {}", message);
  }
}

Connection::~Connection() {
  boost::system::error_code ec;
  socket_->sd.close(ec);
  PQfinish(conn_);
}

asio::awaitable<Result<std::unique_ptr<Connection>>> Connection::connect(
    asio::any_io_executor executor, const ConnectOptions& options, Deadline deadline) {
  // No parallel query: one tenant's statement would take every core of the database from the others
  // (docs/decisions/0018-noisy-neighbours.md); Liftoff's throughput comes from many statements.
  std::string server_options =
      "-c DateStyle=ISO -c TimeZone=UTC -c max_parallel_workers_per_gather=0";
  if (options.statement_timeout.count() > 0) {
    server_options += " -c statement_timeout=" + std::to_string(options.statement_timeout.count());
  }
  if (!options.role.empty()) server_options += " -c role=" + options.role;
  const char* keys[] = {"dbname", "application_name", options.pooled ? nullptr : "options",
                        nullptr};
  const char* values[] = {options.conninfo.c_str(), options.application_name.c_str(),
                          server_options.c_str(), nullptr};
  pg_conn* raw = PQconnectStartParams(keys, values, /*expand_dbname=*/1);
  std::unique_ptr<pg_conn, void (*)(pg_conn*)> conn(raw, PQfinish);
  if (!conn || PQstatus(conn.get()) == CONNECTION_BAD) {
    co_return connection_error(Errc::unavailable, "cannot connect to PostgreSQL",
                               pg_message(conn.get()));
  }
  if (PQsetnonblocking(conn.get(), 1) != 0) {
    co_return connection_error(Errc::unavailable, "cannot connect to PostgreSQL",
                               "cannot set non-blocking mode: " + pg_message(conn.get()));
  }
  for (;;) {
    auto status = PQconnectPoll(conn.get());
    if (status == PGRES_POLLING_OK) break;
    if (status == PGRES_POLLING_FAILED) {
      co_return connection_error(Errc::unavailable, "cannot connect to PostgreSQL",
                                 pg_message(conn.get()));
    }
    // The socket can change between attempts (several hosts, SSL fallback): register it anew.
    asio::posix::stream_descriptor sd(executor, ::dup(PQsocket(conn.get())));
    auto type = status == PGRES_POLLING_READING ? asio::posix::descriptor_base::wait_read
                                                : asio::posix::descriptor_base::wait_write;
    auto ec = co_await wait_fd(sd, type, deadline);
    if (ec == asio::error::timed_out) {
      co_return make_error(Errc::timeout, "connecting to PostgreSQL timed out");
    }
    if (ec)
      co_return connection_error(Errc::unavailable, "cannot connect to PostgreSQL", ec.message());
  }
  if (PQenterPipelineMode(conn.get()) != 1) {
    co_return connection_error(Errc::internal, "cannot enter pipeline mode",
                               pg_message(conn.get()));
  }
  std::unique_ptr<Connection> connection(new Connection(std::move(executor), conn.release()));
  connection->silence_limit_ = options.silence_limit.count() > 0 ? options.silence_limit
                               : options.statement_timeout.count() > 0
                                   ? options.statement_timeout + std::chrono::seconds(2)
                                   : std::chrono::milliseconds(0);
  connection->unnamed_ = options.pooled;
  if (options.pooled) co_return connection;
  // Prepared here, outside the statement cache: send_segment runs it ahead of generic-plan
  // statements.
  Watchdog watchdog(*connection, deadline);
  if (PQsendPrepare(connection->conn_, kGenericPlanName, kGenericPlanSql, 0, nullptr) != 1 ||
      PQpipelineSync(connection->conn_) != 1) {
    co_return connection->broken_error("prepare");
  }
  auto prepared = co_await connection->read_statement_result();
  if (!prepared) co_return prepared.error();
  auto synced = co_await connection->read_sync();
  if (!synced) co_return synced.error();
  co_return connection;
}

bool Connection::usable() const {
  return !broken_ && PQstatus(conn_) == CONNECTION_OK;
}

int Connection::backend_pid() const {
  return PQbackendPID(conn_);
}

TransactionState Connection::transaction_state() const {
  switch (PQtransactionStatus(conn_)) {
    case PQTRANS_IDLE:
      return TransactionState::idle;
    case PQTRANS_ACTIVE:
      return TransactionState::active;
    case PQTRANS_INTRANS:
      return TransactionState::in_transaction;
    case PQTRANS_INERROR:
      return TransactionState::failed;
    default:
      return TransactionState::unknown;
  }
}

bool Connection::check_alive() {
  if (!usable()) return false;
  // Non-blocking: reads a termination notice or EOF the server sent while we were idle. Parsing
  // what was read (PQisBusy) hands a notice to on_notice, which marks a FATAL one.
  if (PQconsumeInput(conn_) == 0) {
    broken_ = true;
    return false;
  }
  (void)PQisBusy(conn_);
  return usable();
}

Error Connection::broken_error(std::string_view what) {
  broken_ = true;
  if (timed_out_)
    return make_error(Errc::timeout, "query exceeded its deadline; connection closed");
  return connection_error(Errc::unavailable, "the connection to PostgreSQL was lost",
                          std::string(what) + ": " + pg_message(conn_));
}

void Connection::request_cancel() {
  asio::post(cancel_pool(), [cancel = cancel_] {
    std::array<char, 256> error{};
    if (!cancel || PQcancel(cancel.get(), error.data(), static_cast<int>(error.size())) == 0) {
      spdlog::warn("postgres cancel request failed: {}", error.data());
    }
  });
}

void Connection::force_close() {
  broken_ = true;
  boost::system::error_code ec;
  socket_->sd.close(ec);
}

asio::awaitable<Result<void>> Connection::wait_ready() {
  using Wait = asio::posix::descriptor_base;
  for (;;) {
    if (!socket_->sd.is_open()) co_return broken_error("wait");
    int flushed = PQflush(conn_);
    if (flushed < 0) co_return broken_error("send");
    // A result already buffered needs no read: a segment's answer (its result, the NULL after
    // it, its sync) arrives in one packet, and reading again for each would cost a system call
    // that finds nothing.
    if (flushed == 0 && PQisBusy(conn_) == 0) co_return Result<void>{};
    if (PQconsumeInput(conn_) == 0) co_return broken_error("receive");
    if (flushed == 0 && PQisBusy(conn_) == 0) co_return Result<void>{};
    boost::system::error_code ec;
    if (flushed == 1) {
      // Output is pending: wait for either direction, since the server may be blocked writing to
      // us.
      auto r = co_await (socket_->sd.async_wait(Wait::wait_read, kUseTuple) ||
                         socket_->sd.async_wait(Wait::wait_write, kUseTuple));
      ec = r.index() == 0 ? std::get<0>(std::get<0>(r)) : std::get<0>(std::get<1>(r));
    } else {
      std::tie(ec) = co_await socket_->sd.async_wait(Wait::wait_read, kUseTuple);
    }
    if (ec == asio::error::operation_aborted && rewait_) {
      rewait_ = false;  // new output was queued while we waited only for input; wait again for both
      continue;
    }
    if (ec) co_return broken_error("wait");
  }
}

asio::awaitable<Result<pg_result*>> Connection::next_result() {
  auto ready = co_await wait_ready();
  if (!ready) co_return ready.error();
  co_return PQgetResult(conn_);
}

Error Connection::failure_of(const pg_result* result) const {
  auto error = error_from_result(result);
  if (error.code == Errc::timeout && timed_out_) error.detail = "query exceeded its deadline";
  return error;
}

// Reads the result of one statement: its PGresult, then the NULL that ends it.
asio::awaitable<Result<Rows>> Connection::read_statement_result() {
  auto first = co_await next_result();
  if (!first) co_return first.error();
  if (*first == nullptr) co_return make_error(Errc::internal, "protocol: missing statement result");
  Rows rows(*first);
  for (;;) {  // drain to the terminating NULL
    auto extra = co_await next_result();
    if (!extra) co_return extra.error();
    if (*extra == nullptr) break;
    PQclear(*extra);
  }
  switch (PQresultStatus(rows.native())) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
      co_return rows;
    case PGRES_PIPELINE_ABORTED:
      co_return make_error(Errc::internal,
                           "statement skipped: an earlier statement in its segment failed");
    default:
      co_return failure_of(rows.native());
  }
}

// Reads to the sync that ends a segment. An error reported there, after the statement's own
// result, fails the segment: a deferred constraint checked as the statement's implicit
// transaction commits rolls its write back (integration AnErrorAtTheSegmentsSyncFailsItsStatement).
asio::awaitable<Result<void>> Connection::read_sync() {
  std::optional<Error> failed;
  for (;;) {
    auto r = co_await next_result();
    if (!r) co_return r.error();
    if (*r == nullptr) continue;
    auto status = PQresultStatus(*r);
    if (status == PGRES_FATAL_ERROR && !failed) failed = failure_of(*r);
    PQclear(*r);
    if (status == PGRES_PIPELINE_SYNC) break;
  }
  if (failed) co_return *failed;
  co_return Result<void>{};
}

Result<bool> Connection::send_unnamed(const Statement& statement, const Params& params) {
  auto values = params.values();
  if (PQsendQueryParams(conn_, std::string(statement.sql).c_str(), params.size(), params.types(),
                        values.data(), params.lengths(), params.formats(),
                        /*resultFormat=binary*/ 1) != 1 ||
      PQpipelineSync(conn_) != 1) {
    return broken_error("send");
  }
  return false;
}

Result<bool> Connection::send_segment(const Statement& statement, const Params& params,
                                      std::unordered_set<std::string_view>& preparing) {
  if (unnamed_) return send_unnamed(statement, params);
  if (statement.generic_plan &&
      PQsendQueryPrepared(conn_, kGenericPlanName, 0, nullptr, nullptr, nullptr, 1) != 1) {
    return broken_error("send");
  }
  if (!statement.fixed) {
    constexpr std::size_t kMaxBuiltStatements = 256;
    auto values = params.values();
    auto built = built_.find(statement.sql);
    if (built == built_.end() && built_.size() < kMaxBuiltStatements) {
      // Prepared once; inserted now so later segments of this pipeline reuse it (a failed Parse
      // removes it again in read_segment).
      built =
          built_.emplace(std::string(statement.sql), "b" + std::to_string(++built_counter_)).first;
      if (PQsendPrepare(conn_, built->second.c_str(), built->first.c_str(), params.size(),
                        params.types()) != 1) {
        return broken_error("prepare");
      }
      if (PQsendQueryPrepared(conn_, built->second.c_str(), params.size(), values.data(),
                              params.lengths(), params.formats(), 1) != 1 ||
          PQpipelineSync(conn_) != 1) {
        return broken_error("send");
      }
      return true;
    }
    if (built == built_.end()) return send_unnamed(statement, params);
    if (PQsendQueryPrepared(conn_, built->second.c_str(), params.size(), values.data(),
                            params.lengths(), params.formats(), 1) != 1 ||
        PQpipelineSync(conn_) != 1) {
      return broken_error("send");
    }
    return false;
  }
  auto known = prepared_.find(statement.name);
  if (known != prepared_.end() && known->second.data() != statement.sql.data() &&
      known->second != statement.sql) {
    return make_error(Errc::internal, "two statements named " + std::string(statement.name));
  }
  std::string name(statement.name);
  bool prepare = known == prepared_.end() && !preparing.contains(statement.name);
  if (prepare) {
    std::string sql(statement.sql);
    if (PQsendPrepare(conn_, name.c_str(), sql.c_str(), params.size(), params.types()) != 1) {
      return broken_error("prepare");
    }
    preparing.insert(statement.name);
  }
  auto values = params.values();
  if (PQsendQueryPrepared(conn_, name.c_str(), params.size(), values.data(), params.lengths(),
                          params.formats(),
                          /*resultFormat=binary*/ 1) != 1 ||
      PQpipelineSync(conn_) != 1) {
    return broken_error("send");
  }
  return prepare;
}

asio::awaitable<Result<Rows>> Connection::read_segment(const Statement& statement,
                                                       bool prepared_here) {
  // No co_await inside a conditional expression: GCC 12 destroys its temporaries twice.
  std::optional<Error> prepare_error, setting_error;
  auto key = statement.fixed ? statement.name : statement.sql;  // as in failed_prepares_
  if (statement.generic_plan && !unnamed_) {
    auto set = co_await read_statement_result();
    if (!usable()) co_return set ? broken_error("execute") : set.error();
    if (!set) setting_error = set.error();  // the statement after it was skipped
  }
  if (prepared_here) {
    auto prepared = co_await read_statement_result();
    if (!statement.fixed) {
      if (auto it = built_.find(statement.sql); !prepared && it != built_.end()) built_.erase(it);
    } else if (prepared) {
      prepared_.emplace(statement.name, statement.sql);
    }
    if (prepared) {
      if (auto it = failed_prepares_.find(key); it != failed_prepares_.end())
        failed_prepares_.erase(it);
    } else {
      prepare_error = prepared.error();
      if (failed_prepares_.size() >= kMaxFailedPrepares) failed_prepares_.clear();
      failed_prepares_.insert_or_assign(std::string(key), prepared.error());
    }
    if (!usable()) co_return prepared ? broken_error("prepare") : prepared.error();
  }
  auto rows = co_await read_statement_result();
  if (!usable()) co_return rows ? broken_error("execute") : rows.error();
  if (!rows && !prepared_here) {
    // Sent behind a segment whose Parse then failed (a statement timeout, a cancel): the server
    // answers "prepared statement does not exist"; the caller gets the reason instead.
    auto failed = failed_prepares_.find(key);
    bool known = statement.fixed ? prepared_.contains(statement.name) : built_.contains(key);
    if (failed != failed_prepares_.end() && !known) rows = failed->second;
  }
  auto synced = co_await read_sync();
  if (!synced) co_return synced.error();
  if (setting_error) co_return *setting_error;
  if (prepare_error) co_return *prepare_error;
  co_return std::move(rows);
}

asio::awaitable<Result<Rows>> Connection::query(const Statement& statement, const Params& params,
                                                Deadline deadline) {
  if (!usable()) co_return make_error(Errc::unavailable, "connection to PostgreSQL is not usable");
  auto started = Clock::now();
  Watchdog watchdog(*this, deadline);
  std::unordered_set<std::string_view> preparing;
  auto prepare = send_segment(statement, params, preparing);
  if (!prepare) co_return prepare.error();
  auto rows = co_await read_segment(statement, *prepare);
  if (observer_) observer_->observed(statement, params, Clock::now() - started, rows.has_value());
  co_return rows;
}

asio::awaitable<std::vector<Result<Rows>>> Connection::pipeline(std::span<const Query> queries,
                                                                Deadline deadline) {
  std::vector<Result<Rows>> results;
  results.reserve(queries.size());
  auto fail_all = [&](const Error& e) {
    while (results.size() < queries.size()) results.emplace_back(e);
  };
  if (!usable()) {
    fail_all(make_error(Errc::unavailable, "connection to PostgreSQL is not usable"));
    co_return results;
  }
  auto started = Clock::now();
  Watchdog watchdog(*this, deadline);

  // Send every statement, each in its own sync segment, preparing first uses in the same segment.
  // A statement that cannot be sent (misnamed) fails alone; one the connection refuses fails them
  // all.
  std::vector<Result<bool>> sent;
  sent.reserve(queries.size());
  std::unordered_set<std::string_view> preparing;
  for (const auto& q : queries) {
    sent.push_back(send_segment(*q.statement, q.params, preparing));
    if (!usable()) {
      fail_all(sent.back() ? broken_error("send") : sent.back().error());
      co_return results;
    }
  }

  // Read the results in the order sent.
  for (std::size_t i = 0; i < queries.size(); ++i) {
    if (!sent[i]) {
      results.emplace_back(sent[i].error());
      continue;
    }
    auto rows = co_await read_segment(*queries[i].statement, *sent[i]);
    if (!usable()) {
      fail_all(rows ? broken_error("receive") : rows.error());
      co_return results;
    }
    results.push_back(std::move(rows));
  }
  if (observer_) {
    auto elapsed = Clock::now() - started;
    for (std::size_t i = 0; i < queries.size(); ++i) {
      observer_->observed(*queries[i].statement, queries[i].params, elapsed,
                          results[i].has_value());
    }
  }
  co_return results;
}

asio::awaitable<Result<std::vector<Notification>>> Connection::notifications(Deadline deadline) {
  std::vector<Notification> out;
  for (;;) {
    if (!usable())
      co_return make_error(Errc::unavailable, "connection to PostgreSQL is not usable");
    if (PQconsumeInput(conn_) == 0) co_return broken_error("listen");
    while (PGnotify* n = PQnotifies(conn_)) {
      out.push_back({n->relname ? n->relname : "", n->extra ? n->extra : ""});
      PQfreemem(n);
    }
    if (!out.empty() || Clock::now() >= deadline) co_return out;
    auto ec = co_await wait_fd(socket_->sd, asio::posix::descriptor_base::wait_read, deadline);
    if (ec == asio::error::timed_out) co_return out;
    if (ec) co_return broken_error("listen");
  }
}

asio::awaitable<Result<void>> Connection::execute_script(std::string_view sql, Deadline deadline) {
  if (!usable()) co_return make_error(Errc::unavailable, "connection to PostgreSQL is not usable");
  Watchdog watchdog(*this, deadline);
  if (PQexitPipelineMode(conn_) != 1) {
    co_return connection_error(Errc::internal, "cannot leave pipeline mode", pg_message(conn_));
  }
  std::optional<Error> first_error;
  if (PQsendQuery(conn_, std::string(sql).c_str()) != 1) {
    first_error = broken_error("send");
  } else {
    for (;;) {
      auto r = co_await next_result();
      if (!r) {
        first_error = r.error();
        break;
      }
      if (*r == nullptr) break;
      Rows rows(*r);
      auto status = PQresultStatus(*r);
      if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && !first_error) {
        first_error = error_from_result(*r);
        if (first_error->code == Errc::timeout && timed_out_)
          first_error->detail = "script exceeded its deadline";
      }
    }
  }
  if (usable() && PQenterPipelineMode(conn_) != 1) broken_ = true;
  if (first_error) co_return *first_error;
  co_return Result<void>{};
}

void Connection::interrupt_socket_wait() {
  boost::system::error_code ec;
  socket_->sd.cancel(ec);
}

}  // namespace liftoff::db
