#include "pg/PgConnection.hpp"

#include <libpq-fe.h>

#include <deque>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "metrics/Metrics.hpp"
#include "pg/ConnInfo.hpp"

namespace pgfanout::pg {

namespace asio = boost::asio;

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// The longest the notifications of one wake-up are handed on before the loop gets a turn.
constexpr std::chrono::milliseconds kNotifyTurn{5};

}  // namespace

struct PgConnection::Impl : std::enable_shared_from_this<PgConnection::Impl> {
  enum class State { Closed, Connecting, Open };

  struct Query {
    std::string sql;
    Params params;
    QueryDone done;
    bool copy_both = false;  // starts copy-both mode
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

  void connect(const std::string& dsn, const std::string& password,
               std::chrono::milliseconds timeout, std::function<void(const std::string&)> done,
               bool replication) {
    close();
    ++generation;
    state = State::Connecting;
    on_connected = std::move(done);
    ConnParams params(dsn, password, timeout, replication);
    conn = PQconnectStartParams(params.keywords(), params.values(), 1);
    if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) {
      connect_failed("error", conn != nullptr ? trim(PQerrorMessage(conn)) : "out of memory");
      return;
    }
    if (!assign_socket()) return;
    auto gen = generation;
    connect_timer.expires_after(timeout);
    connect_timer.async_wait(guarded([this, gen, timeout](boost::system::error_code ec) {
      if (ec || gen != generation || state != State::Connecting) return;
      connect_failed("connect_timeout", "connection attempt timed out after " +
                                            std::to_string(timeout.count()) + " ms");
    }));
    wait_connect(PGRES_POLLING_WRITING);
  }

  void connect_failed(const std::string& reason, const std::string& message) {
    auto done = std::move(on_connected);
    on_connected = nullptr;
    close();
    last_failure_reason = reason;
    if (done) done(message.empty() ? "connection failed" : message);
  }

  bool assign_socket() {
    int fd = PQsocket(conn);
    if (fd < 0) {
      connect_failed("error", "libpq has no socket: " + trim(PQerrorMessage(conn)));
      return false;
    }
    if (sock.is_open() && sock.native_handle() == fd) return true;
    if (sock.is_open()) {
      boost::system::error_code ignored;
      sock.cancel(ignored);
      sock.release();
    }
    boost::system::error_code ec;
    sock.assign(fd, ec);
    if (ec) {
      connect_failed("error", "cannot watch the libpq socket: " + ec.message());
      return false;
    }
    return true;
  }

  void wait_connect(PostgresPollingStatusType want) {
    auto gen = generation;
    auto dir = want == PGRES_POLLING_READING ? asio::posix::stream_descriptor::wait_read
                                             : asio::posix::stream_descriptor::wait_write;
    sock.async_wait(dir, guarded([this, gen](boost::system::error_code ec) {
                      if (gen != generation || state != State::Connecting) return;
                      if (ec) {
                        connect_failed("error", "socket error while connecting: " + ec.message());
                        return;
                      }
                      poll_connect();
                    }));
  }

  void poll_connect() {
    PostgresPollingStatusType st = PQconnectPoll(conn);
    switch (st) {
      case PGRES_POLLING_READING:
      case PGRES_POLLING_WRITING:
        if (!assign_socket()) return;
        wait_connect(st);
        return;
      case PGRES_POLLING_OK: {
        if (!assign_socket()) return;
        connect_timer.cancel();
        if (PQsetnonblocking(conn, 1) != 0) {
          connect_failed("error",
                         "cannot set the connection non-blocking: " + trim(PQerrorMessage(conn)));
          return;
        }
        state = State::Open;
        start_read();
        auto done = std::move(on_connected);
        on_connected = nullptr;
        if (done) done("");
        return;
      }
      default:
        connect_failed("error", trim(PQerrorMessage(conn)));
        return;
    }
  }

  void query(std::string sql, Params params, QueryDone done) {
    if (state != State::Open) {
      PgResult r;
      r.error = "not connected";
      if (done) done(std::move(r));
      return;
    }
    if (copying) {
      PgResult r;
      r.error = "the connection is streaming and takes no queries";
      if (done) done(std::move(r));
      return;
    }
    if (queries.size() >= max_queued) {
      if (refused != nullptr) refused->inc();
      PgResult r;
      r.error = "query queue full (" + std::to_string(max_queued) +
                " statements waiting for the server); statement refused";
      // Posted: a caller that queues from inside a callback must not recurse into itself. Like
      // queued statements, it is dropped without a call when the connection is closed first.
      if (done) {
        asio::post(io, [weak = weak_from_this(), gen = generation, d = std::move(done),
                        res = std::move(r)]() mutable {
          auto self = weak.lock();
          if (self && self->generation == gen) d(std::move(res));
        });
      }
      return;
    }
    queries.push_back(Query{std::move(sql), std::move(params), std::move(done)});
    send_next();
  }

  void send_next() {
    if (in_flight || queries.empty() || state != State::Open) return;
    const Query& q = queries.front();
    int ok;
    if (q.params.empty()) {
      ok = PQsendQuery(conn, q.sql.c_str());
    } else {
      std::vector<const char*> values;
      values.reserve(q.params.size());
      for (const auto& p : q.params) values.push_back(p ? p->c_str() : nullptr);
      ok = PQsendQueryParams(conn, q.sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
    }
    if (!ok) {
      fail("error", "cannot send query: " + trim(PQerrorMessage(conn)));
      return;
    }
    in_flight = true;
    current = PgResult{};
    current.ok = true;
    flush_output();
  }

  void flush_output() {
    if (conn == nullptr) return;
    int r = PQflush(conn);
    if (r < 0) {
      fail("error", "cannot write to the server: " + trim(PQerrorMessage(conn)));
      return;
    }
    if (r == 1 && !writing) {
      writing = true;
      auto gen = generation;
      sock.async_wait(asio::posix::stream_descriptor::wait_write,
                      guarded([this, gen](boost::system::error_code ec) {
                        if (gen != generation) return;
                        writing = false;
                        if (ec) {
                          fail("error", "socket error: " + ec.message());
                          return;
                        }
                        flush_output();
                      }));
    }
  }

  void start_read() {
    if (reading) return;
    reading = true;
    auto gen = generation;
    sock.async_wait(asio::posix::stream_descriptor::wait_read,
                    guarded([this, gen](boost::system::error_code ec) {
                      if (gen != generation) return;
                      reading = false;
                      if (ec) {
                        fail("error", "socket error: " + ec.message());
                        return;
                      }
                      on_readable();
                      if (gen == generation && !copy_paused) start_read();
                    }));
  }

  void collect(PGresult* r) {
    auto st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_SINGLE_TUPLE) {
      int n = PQntuples(r), m = PQnfields(r);
      current.columns.clear();
      current.column_types.clear();
      for (int c = 0; c < m; ++c) {
        current.columns.emplace_back(PQfname(r, c));
        current.column_types.push_back(PQftype(r, c));
      }
      current.rows.reserve(current.rows.size() + static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) {
        std::vector<std::optional<std::string>> row;
        row.reserve(static_cast<std::size_t>(m));
        for (int c = 0; c < m; ++c) {
          if (PQgetisnull(r, i, c)) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(std::string(PQgetvalue(r, i, c), PQgetlength(r, i, c)));
          }
        }
        current.rows.push_back(std::move(row));
      }
    } else if (st == PGRES_COMMAND_OK) {
      const char* t = PQcmdTuples(r);
      current.affected = (t != nullptr && *t != '\0') ? std::atoi(t) : 0;
    } else if (current.ok) {
      current.ok = false;
      current.error = trim(PQresultErrorMessage(r));
      const char* state_code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      if (state_code != nullptr) current.sqlstate = state_code;
      const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
      if (primary != nullptr) current.message = primary;
    }
  }

  void on_readable() {
    if (PQconsumeInput(conn) == 0) {
      fail("error", trim(PQerrorMessage(conn)));
      return;
    }
    if (copying) {
      drain_copy();
      return;
    }
    auto gen = generation;
    while (in_flight && PQisBusy(conn) == 0) {
      PGresult* r = PQgetResult(conn);
      if (r != nullptr && PQresultStatus(r) == PGRES_COPY_BOTH && queries.front().copy_both) {
        PQclear(r);
        enter_copy();
        return;
      }
      if (r == nullptr) {
        Query q = std::move(queries.front());
        queries.pop_front();
        in_flight = false;
        PgResult result = std::move(current);
        current = PgResult{};
        if (q.done) q.done(std::move(result));
        if (gen != generation) return;
        send_next();
        continue;
      }
      collect(r);
      PQclear(r);
    }
    drain_notifies();
  }

  // Hands on the notifications libpq has parsed for at most kNotifyTurn; what is left waits in
  // libpq's queue for a handler posted behind whatever became ready meanwhile. One notification
  // may be a broadcast to thousands of subscribers: a burst of them handed on in one handler would
  // hold the loop (timers, other sockets, the writes it queued) for all of it.
  void drain_notifies() {
    const auto gen = generation;
    const auto until = std::chrono::steady_clock::now() + kNotifyTurn;
    bool any = false;
    while (PGnotify* n = PQnotifies(conn)) {
      std::string channel = n->relname, payload = n->extra;
      int pid = n->be_pid;
      PQfreemem(n);
      any = true;
      if (handlers.on_notify) handlers.on_notify(std::move(channel), std::move(payload), pid);
      if (gen != generation) return;
      if (std::chrono::steady_clock::now() >= until) {
        asio::post(sock.get_executor(), [weak = weak_from_this(), gen] {
          auto self = weak.lock();
          if (self && self->generation == gen) self->drain_notifies();
        });
        break;
      }
    }
    if (any && handlers.on_notify_batch_end) handlers.on_notify_batch_end();
  }

  void start_copy_both(std::string command, CopyHandlers h, QueryDone started) {
    if (state != State::Open || copying) {
      PgResult r;
      r.error = state != State::Open ? "not connected" : "already streaming";
      if (started) started(std::move(r));
      return;
    }
    copy = std::move(h);
    queries.push_back(Query{std::move(command), {}, std::move(started), true});
    send_next();
  }

  void enter_copy() {
    Query q = std::move(queries.front());
    queries.pop_front();
    in_flight = false;
    copying = true;
    current = PgResult{};
    auto gen = generation;
    PgResult ok;
    ok.ok = true;
    if (q.done) q.done(std::move(ok));
    if (gen == generation) drain_copy();
  }

  // Hands on the CopyData messages libpq has, kNotifyTurn's worth per turn of the loop.
  void drain_copy() {
    const auto gen = generation;
    const auto until = std::chrono::steady_clock::now() + kNotifyTurn;
    bool any = false;
    while (!copy_paused) {
      char* buf = nullptr;
      int n = PQgetCopyData(conn, &buf, 1);
      if (n == 0) break;  // no complete message yet
      if (n < 0) {
        std::string message = trim(PQerrorMessage(conn));
        if (n == -1) {  // the server ended the stream: its reason is in the final result
          if (PGresult* r = PQgetResult(conn)) {
            if (PQresultStatus(r) == PGRES_FATAL_ERROR) message = trim(PQresultErrorMessage(r));
            PQclear(r);
          }
          if (message.empty()) message = "the server ended the replication stream";
        }
        fail("error", message);
        return;
      }
      any = true;
      bool more = copy.on_data(std::string_view(buf, static_cast<std::size_t>(n)));
      PQfreemem(buf);
      if (gen != generation) return;
      if (!more) copy_paused = true;
      if (!copy_paused && std::chrono::steady_clock::now() >= until) {
        asio::post(sock.get_executor(), [weak = weak_from_this(), gen] {
          auto self = weak.lock();
          if (self && self->generation == gen) self->drain_copy();
        });
        break;
      }
    }
    if (any && copy.on_batch_end) copy.on_batch_end();
  }

  bool put_copy_data(std::string_view data) {
    if (!copying || conn == nullptr) return false;
    int r = PQputCopyData(conn, data.data(), static_cast<int>(data.size()));
    if (r < 0) {
      fail("error", "cannot write to the server: " + trim(PQerrorMessage(conn)));
      return false;
    }
    if (r == 0) return false;
    flush_output();
    return true;
  }

  void resume_copy() {
    if (!copying || !copy_paused) return;
    copy_paused = false;
    asio::post(sock.get_executor(), [weak = weak_from_this(), gen = generation] {
      auto self = weak.lock();
      if (self && self->generation == gen) self->drain_copy();
    });
    start_read();
  }

  void fail(const std::string& reason, const std::string& message) {
    if (state == State::Closed) return;
    if (state == State::Connecting) {
      connect_failed(reason, message);
      return;
    }
    auto pending = std::move(queries);
    queries.clear();
    close();
    for (auto& q : pending) {
      PgResult r;
      r.error = message;
      if (q.done) q.done(std::move(r));
    }
    if (handlers.on_lost) handlers.on_lost(reason, message);
  }

  void close() {
    ++generation;
    state = State::Closed;
    connect_timer.cancel();
    if (sock.is_open()) {
      boost::system::error_code ignored;
      sock.cancel(ignored);
      sock.release();  // libpq owns the descriptor: release it before PQfinish closes it
    }
    if (conn != nullptr) {
      PQfinish(conn);
      conn = nullptr;
    }
    reading = writing = in_flight = copying = copy_paused = false;
    queries.clear();
  }

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

PgConnection::PgConnection(asio::io_context& io, Handlers handlers, std::size_t queue_limit,
                           Counter* refused)
    : impl_(std::make_shared<Impl>(io, std::move(handlers), queue_limit, refused)) {}

PgConnection::~PgConnection() {
  // Closed now even when a handler of this connection is running (and holds its state until it
  // returns): nothing more is sent or called back.
  impl_->close();
}

void PgConnection::connect(const std::string& dsn, const std::string& password,
                           std::chrono::milliseconds connect_timeout,
                           std::function<void(const std::string&)> done, bool replication) {
  impl_->connect(dsn, password, connect_timeout, std::move(done), replication);
}

void PgConnection::query(std::string sql, Params params, QueryDone done) {
  impl_->query(std::move(sql), std::move(params), std::move(done));
}

void PgConnection::start_copy_both(std::string command, CopyHandlers handlers, QueryDone started) {
  impl_->start_copy_both(std::move(command), std::move(handlers), std::move(started));
}

bool PgConnection::put_copy_data(std::string_view data) {
  return impl_->put_copy_data(data);
}

void PgConnection::resume_copy() {
  impl_->resume_copy();
}

bool PgConnection::copying() const {
  return impl_->copying;
}

void PgConnection::close() {
  impl_->close();
}

void PgConnection::fail(const std::string& reason, const std::string& message) {
  impl_->fail(reason, message);
}

bool PgConnection::connected() const {
  return impl_->state == Impl::State::Open;
}

const std::string& PgConnection::last_failure_reason() const {
  return impl_->last_failure_reason;
}

int PgConnection::backend_pid() const {
  return impl_->conn != nullptr ? PQbackendPID(impl_->conn) : 0;
}

std::size_t PgConnection::queued() const {
  return impl_->queries.size();
}

std::size_t PgConnection::max_queued() const {
  return impl_->max_queued;
}

std::string PgConnection::escape_identifier(const std::string& name) const {
  if (impl_->conn == nullptr) return quote_ident(name);
  char* e = PQescapeIdentifier(impl_->conn, name.c_str(), name.size());
  if (e == nullptr) return quote_ident(name);
  std::string out(e);
  PQfreemem(e);
  return out;
}

}  // namespace pgfanout::pg
