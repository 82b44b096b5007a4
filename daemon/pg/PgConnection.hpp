// PgConnection: one non-blocking libpq connection on the Asio loop.
//
// connect() runs PQconnectStartParams/PQconnectPoll with the socket in a posix::stream_descriptor
// (re-read after every poll step: libpq may move to another host or address), bounded by
// connect_timeout. query() queues a statement with text parameters; statements run one at a time,
// in order, and their rows are copied into a PgResult. Notifications that arrive are passed to
// on_notify. When the connection breaks, every queued query is failed with the error and on_lost
// is called once; the owner decides whether and when to connect again. The descriptor is released
// before PQfinish closes it. All calls and callbacks run on the io_context's thread; callbacks may
// close or destroy-and-recreate the connection (they are guarded by a generation counter).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
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

class PgConnection {
 public:
  using Params = std::vector<std::optional<std::string>>;
  using QueryDone = std::function<void(PgResult&&)>;

  struct Handlers {
    std::function<void(std::string channel, std::string payload, int backend_pid)> on_notify;
    std::function<void()> on_notify_batch_end;  // after one wake-up's notifications
    std::function<void(const std::string& reason, const std::string& message)> on_lost;
  };

  PgConnection(boost::asio::io_context& io, Handlers handlers);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Starts connecting; `done` gets "" on success or the error. `reason` of a failure passed to
  // on_lost is one of: error, connect_timeout.
  void connect(const std::string& dsn, const std::string& password,
               std::chrono::milliseconds connect_timeout,
               std::function<void(const std::string& error)> done);
  // Queues a statement (several statements when `params` is empty). Fails at once (through
  // `done`) when not connected.
  void query(std::string sql, Params params, QueryDone done);
  // Closes the connection (queued queries are dropped without callbacks). Safe to call twice.
  void close();
  // Closes the connection as broken: fails queued queries and calls on_lost(reason, message).
  void fail(const std::string& reason, const std::string& message);

  bool connected() const;
  // Why the last connection attempt failed: "error" or "connect_timeout".
  const std::string& last_failure_reason() const;
  int backend_pid() const;
  std::size_t queued() const;
  // Quotes an identifier with PQescapeIdentifier (double quotes when not connected).
  std::string escape_identifier(const std::string& name) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace pgfanout::pg
