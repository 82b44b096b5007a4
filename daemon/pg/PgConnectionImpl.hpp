// PgConnection's state, shared by its two halves: connecting and closing (PgConnection.cpp), and
// the query queue, reading results and handing on notifications (PgQueries.cpp). Private to the
// pg area.
#pragma once

#include <libpq-fe.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include "metrics/Metrics.hpp"
#include "pg/ConnInfo.hpp"

#include "pg/PgConnection.hpp"

namespace pgfanout::pg {

namespace asio = boost::asio;

// The longest the notifications (or CopyData messages) of one wake-up are handed on before the
// loop gets a turn.
inline constexpr std::chrono::milliseconds kNotifyTurn{5};

// libpq's messages end with a newline.
inline std::string trim_message(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

struct PgConnection::Impl : std::enable_shared_from_this<PgConnection::Impl> {
  enum class State { Closed, Connecting, Open };
  struct Query {
    std::string sql;
    Params params;
    QueryDone done;
    bool copy_both = false;  // starts copy-both mode (PgCopyBoth.cpp)
  };
  Impl(asio::io_context& io_, Handlers h, std::size_t max_queued_, Counter* refused_)
      : io(io_),
        handlers(std::move(h)),
        sock(io_),
        connect_timer(io_),
        max_queued(max_queued_),
        refused(refused_) {}
  ~Impl() { close(); }

  // Wraps a socket or timer handler: it runs only while the connection exists, and keeps it
  // alive until it returns (a callback it makes may destroy the PgConnection).
  template <class Handler>
  auto guarded(Handler handler) {
    return [weak = weak_from_this(),
            handler = std::move(handler)](boost::system::error_code ec) mutable {
      if (auto self = weak.lock()) handler(ec);
    };
  }

  // Waits until the socket is ready for `what`, with `waiting` set meanwhile, then runs `then` —
  // unless the connection was closed or re-opened meanwhile; a socket error fails the connection.
  template <class Then>
  void await_socket(asio::posix::stream_descriptor::wait_type what, bool& waiting, Then then) {
    waiting = true;
    auto gen = generation;
    sock.async_wait(what, guarded([this, gen, &waiting,
                                   then = std::move(then)](boost::system::error_code ec) mutable {
                      if (gen != generation) return;
                      waiting = false;
                      if (ec) {
                        fail("error", "socket error: " + ec.message());
                        return;
                      }
                      then();
                    }));
  }

  void connect(const std::string& dsn, const std::string& password,
               std::chrono::milliseconds timeout, std::function<void(const std::string&)> done,
               bool replication);
  void connect_failed(const std::string& reason, const std::string& message);
  bool assign_socket();
  void wait_connect(PostgresPollingStatusType want);
  void poll_connect();
  void query(std::string sql, Params params, QueryDone done);
  void send_next();
  void flush_output();
  void start_read();
  void collect(PGresult* r);
  void on_readable();

  // Hands on the notifications libpq has parsed for at most kNotifyTurn; what is left waits in
  // libpq's queue for a handler posted behind whatever became ready meanwhile. One notification
  // may be a broadcast to thousands of subscribers: a burst of them handed on in one handler would
  // hold the loop (timers, other sockets, the writes it queued) for all of it.
  void drain_notifies();
  // Copy-both mode (PgCopyBoth.cpp): a replication connection's stream.
  void start_copy_both(std::string command, CopyHandlers h, QueryDone started);
  void enter_copy();
  // Hands on the CopyData messages libpq has, kNotifyTurn's worth per turn of the loop.
  void drain_copy();
  bool put_copy_data(std::string_view data);
  void resume_copy();

  void fail(const std::string& reason, const std::string& message);
  void close();
  asio::io_context& io;
  Handlers handlers;
  asio::posix::stream_descriptor sock;
  asio::steady_timer connect_timer;
  PGconn* conn = nullptr;
  State state = State::Closed;
  std::uint64_t generation = 0;
  bool reading = false, writing = false, in_flight = false;
  bool copying = false, copy_paused = false;
  CopyHandlers copy;
  std::deque<Query> queries;
  PgResult current;
  std::function<void(const std::string&)> on_connected;
  std::string last_failure_reason;
  std::size_t max_queued;
  Counter* refused;
};

}  // namespace pgfanout::pg
