// PgSession: one PostgreSQL connection that keeps itself connected, for every PostgreSQL client
// of the daemon (the NOTIFY listener, the outbox reader, the webhook delivery worker, the hub's
// SQL connections).
//
// start() connects. Whenever the connection fails — a connect error or connect_timeout, the server
// going away, or the owner calling fail() because the connection misbehaves — the session closes
// it, logs "<name> (<server>): <message>; reconnecting", calls on_lost, and connects again after a
// delay from reconnect_min doubling to reconnect_max with jitter (pg::Backoff), until stop().
// on_ready(first) runs each time a connection is up. The delay starts again from reconnect_min
// once the owner calls confirm() (or at once when Options::confirm_on_connect is set): an owner
// with a set-up step (LISTEN) confirms only when that step worked, so a server that accepts
// connections but fails the set-up is not hammered at the shortest delay.
//
// Each connection has a generation number. query() has PgConnection's contract (the callback
// always runs: with the result, or with the error when the connection breaks first).
// query_current() drops the callback instead when the connection it was sent on has been lost or
// replaced by the time the answer comes: owners whose state belongs to one connection (a batch
// being acknowledged, LISTENs in flight) never see a stale answer, and learn of the loss once,
// through on_lost.
//
// Ownership rule, for every long-lived component and its connections: a component (listener,
// reader, worker, gateway) is created before the io_context runs and destroyed after run()
// returns, so its own handlers capture `this` plainly. A PgSession, like a PgConnection, may be
// destroyed while the loop runs (a gateway slot, a source that is replaced on reload): its
// handlers reach its state only through a weak reference, and destroying it closes the
// connection at once and guarantees that no callback given to it runs afterwards. All calls and
// callbacks on the io_context's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "pg/PgConfig.hpp"
#include "pg/PgConnection.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout::pg {

class PgSession {
 public:
  struct Handlers {
    // A connection is up (first: the session's first one since start()).
    std::function<void(bool first)> on_ready;
    // A connection was lost or an attempt failed; the next attempt is scheduled. `reason`:
    // error, connect_timeout, or what the owner passed to fail(). `was_up`: the connection had
    // been ready (on_ready ran for it).
    std::function<void(const std::string& reason, const std::string& message, bool was_up)> on_lost;
    // NOTIFYs received on the connection, and the end of one wake-up's worth of them.
    std::function<void(std::string channel, std::string payload, int backend_pid)> on_notify;
    std::function<void()> on_notify_batch_end;
  };

  struct Options {
    std::string name;  // for the log: "PostgreSQL listener", "outbox reader", ...
    bool confirm_on_connect = true;
    std::size_t queue_limit = PgConnection::kDefaultMaxQueued;
    Counter* refused = nullptr;  // counts statements refused by a full queue
    bool replication = false;    // a logical replication connection (for start_copy_both)
  };

  PgSession(boost::asio::io_context& io, PostgresConfig pg, Options options, Handlers handlers);
  ~PgSession();
  PgSession(const PgSession&) = delete;
  PgSession& operator=(const PgSession&) = delete;

  // Connects (again, after stop()). Does nothing when already started.
  void start();
  // Closes the connection and cancels the next attempt; queued statements are dropped without
  // callbacks, and no handler runs until start().
  void stop();
  // Treats the current connection (or attempt) as broken: it is closed and re-made.
  void fail(const std::string& reason, const std::string& message);
  // The connection is usable: the next loss waits reconnect_min again.
  void confirm();

  void query(std::string sql, PgConnection::Params params, PgConnection::QueryDone done);
  void query_current(std::string sql, PgConnection::Params params, PgConnection::QueryDone done);

  // Streaming on a replication session: PgConnection's calls, on the current connection.
  void start_copy_both(std::string command, PgConnection::CopyHandlers handlers,
                       PgConnection::QueryDone started);
  bool put_copy_data(std::string_view data);
  void resume_copy();

  bool started() const;
  bool up() const;  // connected (on_ready has run for the current connection)
  std::uint64_t generation() const;
  const PgConnection& connection() const;
  const PostgresConfig& config() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace pgfanout::pg
