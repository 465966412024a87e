#pragma once
// One PostgreSQL connection driven by libpq in non-blocking mode on the owning io_context: no
// thread ever blocks on the database. The connection stays in libpq pipeline mode; each statement
// is sent as [Parse] Bind Execute Sync, so a statement needs one round trip (the first use on a
// connection prepares it in the same round trip), and a pipeline of N independent statements also
// needs one.
//
// Thread-safety: none; use a connection only from the executor it was created on, by one coroutine
// at a time (the pool's lease guarantees that).
// Deadlines: every operation takes one. At the deadline a cancel request goes to the server (from a
// helper thread, since PQcancel blocks); if the server has not answered one second later, the
// connection is closed. Either way the operation fails with Errc::timeout.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "liftoff/core/error.hpp"
#include "liftoff/db/scope.hpp"
#include "liftoff/db/statement.hpp"
#include "liftoff/db/value.hpp"

struct pg_conn;
struct pg_cancel;

namespace liftoff::core {
class Registry;
}

namespace liftoff::db {

struct ConnectOptions {
  std::string conninfo;                            // libpq URI or key=value string
  std::chrono::milliseconds statement_timeout{0};  // server-side backstop; 0: none
  std::string application_name = "liftoff";
  // The role the session acts as (SET ROLE at connection start); empty: the connecting user. The
  // server uses a role that may only append to the audit log (migrations/control/0003).
  std::string role;
  // Multiplexed use (submit()): a connection whose server sends nothing for this long while
  // statements wait is closed and its statements fail with unavailable, so a half-open connection
  // (a failover, a dead peer, a cut network) is replaced at once instead of answering every
  // statement with a timeout until TCP gives up. 0: statement_timeout + 2 s (no statement can
  // legitimately run longer); with neither, no watchdog.
  std::chrono::milliseconds silence_limit{0};
  // Through a transaction-mode pooler (PgBouncer), whose server connections change between
  // transactions: every statement is sent unnamed (Parse, Bind, Execute: planned each time), and
  // no startup options are sent (the pooler would refuse them; the role and settings are the
  // pooler's or the database role's: docs/operations.md).
  bool pooled = false;
};

// Observes statement latencies (the pool wires this to the metrics registry).
class QueryObserver {
 public:
  virtual ~QueryObserver() = default;
  // Each statement the connection ran, how long it took (from its sending, or its submission to a
  // shared connection, to its last result) and whether it succeeded; called before its caller
  // resumes, so `statement` and `params` are still the caller's.
  virtual void observed(const Statement& statement, const Params& params, Clock::duration elapsed,
                        bool ok) = 0;
};

enum class TransactionState { idle, active, in_transaction, failed, unknown };

// An asynchronous notification (NOTIFY channel, 'payload').
struct Notification {
  std::string channel;
  std::string payload;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  [[nodiscard]] static boost::asio::awaitable<Result<std::unique_ptr<Connection>>> connect(
      boost::asio::any_io_executor executor, const ConnectOptions& options, Deadline deadline);

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement.
  [[nodiscard]] boost::asio::awaitable<Result<Rows>> query(const Statement& statement,
                                                           const Params& params, Deadline deadline);

  // Runs independent statements in one round trip. Each has its own result: a failing statement
  // does not abort the others (each is its own sync segment). Inside a transaction, a failure
  // aborts the transaction as usual.
  [[nodiscard]] boost::asio::awaitable<std::vector<Result<Rows>>> pipeline(
      std::span<const Query> queries, Deadline deadline);

  // For a connection that ran LISTEN: the notifications that arrive before the deadline (empty when
  // none did). Errc::unavailable when the connection is lost. Not for pooled or shared connections.
  [[nodiscard]] boost::asio::awaitable<Result<std::vector<Notification>>> notifications(
      Deadline deadline);

  // Runs a script of one or more statements with the simple protocol (migrations, admin). No
  // params.
  [[nodiscard]] boost::asio::awaitable<Result<void>> execute_script(std::string_view sql,
                                                                    Deadline deadline);

  // Multiplexed use: any number of coroutines on this connection's executor may call submit()
  // concurrently. Statements submitted in the same turn of the event loop go out in one write, each
  // in its own sync segment (autocommit, failures isolated), and their results are read back in
  // order by one reader coroutine. The connection must be owned by a std::shared_ptr (the reader
  // keeps it alive). Only for connections that are never leased (Database's shared set) and never
  // in a transaction. At the deadline the caller gets Errc::timeout; the statement itself is left
  // to the server-side statement_timeout (a cancel would hit whichever statement runs then). A
  // server silent for ConnectOptions::silence_limit closes the connection (Errc::unavailable).
  [[nodiscard]] boost::asio::awaitable<Result<Rows>> submit(const Statement& statement,
                                                            const Params& params,
                                                            Deadline deadline);
  // submit() of statements that go out together, in order, each in its own segment (a statement
  // that needs the effect of the one before, committed: its outcome is in the results).
  [[nodiscard]] boost::asio::awaitable<std::vector<Result<Rows>>> submit(
      std::span<const Query> queries, Deadline deadline);
  // Statements submitted and not yet answered.
  [[nodiscard]] std::size_t in_flight() const { return unsent_.size() + sent_.size(); }
  // When the oldest unanswered statement was submitted (now when there is none).
  [[nodiscard]] Clock::time_point oldest_submitted() const;

  // False once the connection has failed; a broken connection is never reused.
  [[nodiscard]] bool usable() const;
  [[nodiscard]] TransactionState transaction_state() const;
  // Reads whatever the server sent while idle without blocking; false if the server went away.
  [[nodiscard]] bool check_alive();
  [[nodiscard]] std::size_t prepared_statements() const { return prepared_.size(); }
  [[nodiscard]] int backend_pid() const;

  void set_observer(QueryObserver* observer) { observer_ = observer; }

 private:
  static void on_notice(void* self, const pg_result* notice);
  struct Watchdog;
  Connection(boost::asio::any_io_executor executor, pg_conn* conn);
  [[nodiscard]] boost::asio::awaitable<Result<void>> wait_ready();
  [[nodiscard]] boost::asio::awaitable<Result<pg_result*>> next_result();
  [[nodiscard]] boost::asio::awaitable<Result<Rows>> read_statement_result();
  // One statement as its own sync segment (Bind/Execute/Sync), preceded by Parse unless the
  // statement is prepared or being prepared (`preparing`). Returns whether it sent a Parse.
  [[nodiscard]] Result<bool> send_segment(const Statement& statement, const Params& params,
                                          std::unordered_set<std::string_view>& preparing);
  // The same, unnamed (Parse, Bind, Execute, Sync: planned for these values, kept by nobody).
  [[nodiscard]] Result<bool> send_unnamed(const Statement& statement, const Params& params);
  // Reads what send_segment's segment produced; when it returns with !usable() the connection is
  // lost.
  [[nodiscard]] boost::asio::awaitable<Result<Rows>> read_segment(const Statement& statement,
                                                                  bool prepared_here);
  [[nodiscard]] boost::asio::awaitable<Result<void>> read_sync();
  // The error a failed result reports (a cancel at our deadline reads as the deadline).
  [[nodiscard]] Error failure_of(const pg_result* result) const;
  [[nodiscard]] Error broken_error(std::string_view what);
  void request_cancel();
  void force_close();
  // Wakes a coroutine waiting on the socket (it waits again, for what it then needs).
  void interrupt_socket_wait();

  struct Submission;
  std::shared_ptr<Submission> enqueue(const Statement& statement, const Params& params,
                                      Deadline deadline);
  static boost::asio::awaitable<Result<Rows>> answer_of(std::shared_ptr<Submission> submission);
  void flush_submissions();
  boost::asio::awaitable<void> read_submissions();
  boost::asio::awaitable<void> sweep_deadlines();
  void fail_submissions(const Error& error);

  struct Descriptor;
  boost::asio::any_io_executor executor_;
  pg_conn* conn_;
  std::unique_ptr<Descriptor> socket_;
  std::shared_ptr<pg_cancel> cancel_;
  std::unordered_map<std::string_view, std::string_view> prepared_;  // name -> sql
  // Built statements (Statement::fixed == false) are prepared too, under generated names, keyed
  // by their SQL text: the same query shape with other values reuses its plan. Bounded: beyond
  // kMaxBuiltStatements new shapes run unnamed.
  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::string, TextHash, std::equal_to<>> built_;  // sql -> name
  // Why the last Parse of a statement (by name; built ones by text) failed, until one succeeds:
  // segments pipelined behind it answer with this instead of "does not exist". Bounded.
  static constexpr std::size_t kMaxFailedPrepares = 256;
  std::unordered_map<std::string, Error, TextHash, std::equal_to<>> failed_prepares_;
  std::size_t built_counter_ = 0;
  QueryObserver* observer_ = nullptr;
  bool broken_ = false;
  bool timed_out_ = false;
  bool unnamed_ = false;                            // ConnectOptions::pooled
  std::deque<std::shared_ptr<Submission>> unsent_;  // submitted, not yet written to libpq
  std::deque<std::shared_ptr<Submission>> sent_;    // written, awaiting results (in order)
  bool flush_posted_ = false;
  std::chrono::milliseconds silence_limit_{0};  // 0: no watchdog (see ConnectOptions)
  Clock::time_point answered_at_;  // when the server last answered a submission (or, with none
                                   // waiting, when the next was sent)
  bool reader_running_ = false;
  bool sweeper_running_ = false;
  bool rewait_ = false;  // the reader's wait was cancelled to make it also wait for writability
};

}  // namespace liftoff::db
