// PgConnection: one non-blocking libpq connection on the Asio loop.
//
// connect() runs PQconnectStartParams/PQconnectPoll with the socket in a posix::stream_descriptor
// (re-read after every poll step: libpq may move to another host or address), bounded by
// connect_timeout. query() queues a statement with text parameters; statements run one at a time,
// in order, and their rows are copied into a PgResult. The queue holds at most `queue_limit`
// statements (the one running included): a query() beyond it fails with "query queue full",
// through its callback posted to the io_context (never called inline), and counts in `refused`
// when given, so a caller that outpaces the server cannot grow memory without bound. Notifications
// that arrive are passed to on_notify, 5 ms' worth per turn of the event loop (the rest in a
// handler posted behind what became ready meanwhile), each run followed by on_notify_batch_end.
// When the connection breaks, every queued query is failed with the error and on_lost is called
// once; the owner decides whether and when to connect again. The descriptor is released before
// PQfinish closes it. All calls and callbacks run on the io_context's thread; callbacks may close
// or destroy-and-recreate the connection (they are guarded by a generation counter).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace pgfanout {
class Counter;
}

namespace pgfanout::pg {

struct PgResult {
  bool ok = false;
  std::string error;     // when !ok
  std::string sqlstate;  // when the server sent one
  std::string message;   // the server's primary message alone (no context, no detail)
  std::vector<std::string> columns;
  std::vector<unsigned> column_types;  // the columns' type OIDs
  std::vector<std::vector<std::optional<std::string>>> rows;
  int affected = 0;  // PQcmdTuples of the last statement

  const std::optional<std::string>& at(std::size_t row, std::size_t col) const {
    return rows[row][col];
  }
};

// The counter owners pass as `refused`, labelled with connection=<which connection>.
inline constexpr std::string_view kQueriesRefusedMetric = "pgfanout_pg_queries_refused_total";
inline constexpr std::string_view kQueriesRefusedHelp =
    "Statements refused because a PostgreSQL connection's query queue was full, by connection";

class PgConnection {
 public:
  using Params = std::vector<std::optional<std::string>>;
  using QueryDone = std::function<void(PgResult&&)>;

  // Copy-both mode (a replication connection's stream). on_data gets each CopyData message and
  // returns false to pause: no more is read from the socket until resume_copy() (the server's
  // walsender then waits, which bounds memory). on_batch_end follows each run of messages.
  struct CopyHandlers {
    std::function<bool(std::string_view data)> on_data;
    std::function<void()> on_batch_end;
  };

  struct Handlers {
    std::function<void(std::string channel, std::string payload, int backend_pid)> on_notify;
    std::function<void()> on_notify_batch_end;  // after each run of notifications
    std::function<void(const std::string& reason, const std::string& message)> on_lost;
  };

  // Statements queued (the running one included) beyond which query() refuses.
  static constexpr std::size_t kDefaultMaxQueued = 10'000;

  // `refused`, when not null, counts the statements refused because the queue was full.
  PgConnection(boost::asio::io_context& io, Handlers handlers,
               std::size_t queue_limit = kDefaultMaxQueued, Counter* refused = nullptr);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Starts connecting; `done` gets "" on success or the error. `reason` of a failure passed to
  // on_lost is one of: error, connect_timeout.
  // `replication`: a logical replication connection (see start_copy_both).
  void connect(const std::string& dsn, const std::string& password,
               std::chrono::milliseconds connect_timeout,
               std::function<void(const std::string& error)> done, bool replication = false);
  // Queues a statement (several statements when `params` is empty). Fails at once (through
  // `done`) when not connected, and, with `done` posted rather than called, when queue_limit
  // statements are already queued.
  void query(std::string sql, Params params, QueryDone done);
  // Queues a command that starts copy-both mode (START_REPLICATION on a connection made with
  // replication=database). `started` gets an ok result once the stream runs, or the error (with
  // its SQLSTATE: 55006 when another connection streams from the slot). Afterwards the
  // connection takes no more queries; the stream ends with the connection (on_lost).
  void start_copy_both(std::string command, CopyHandlers handlers, QueryDone started);
  // Sends one CopyData message to the server (a standby status update). False when not
  // streaming or libpq's buffer is full (try again later).
  bool put_copy_data(std::string_view data);
  // Reads again after on_data returned false.
  void resume_copy();
  bool copying() const;
  // Closes the connection (queued queries are dropped without callbacks). Safe to call twice.
  void close();
  // Closes the connection as broken: fails queued queries and calls on_lost(reason, message).
  void fail(const std::string& reason, const std::string& message);

  bool connected() const;
  // Why the last connection attempt failed: "error" or "connect_timeout".
  const std::string& last_failure_reason() const;
  int backend_pid() const;
  std::size_t queued() const;
  std::size_t max_queued() const;
  // Quotes an identifier with PQescapeIdentifier (double quotes when not connected).
  std::string escape_identifier(const std::string& name) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace pgfanout::pg
