#include "pg/PgConnection.hpp"

#include "pg/PgConnectionImpl.hpp"

namespace pgfanout::pg {

void PgConnection::Impl::connect(const std::string& dsn, const std::string& password,
                                 std::chrono::milliseconds timeout,
                                 std::function<void(const std::string&)> done, bool replication) {
  close();
  ++generation;
  state = State::Connecting;
  on_connected = std::move(done);
  ConnParams params(dsn, password, timeout, replication);
  conn = PQconnectStartParams(params.keywords(), params.values(), 1);
  if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) {
    connect_failed("error", conn != nullptr ? trim_message(PQerrorMessage(conn)) : "out of memory");
    return;
  }
  if (!assign_socket()) return;
  auto gen = generation;
  connect_timer.expires_after(timeout);
  connect_timer.async_wait(guarded([this, gen, timeout](boost::system::error_code ec) {
    if (ec || gen != generation || state != State::Connecting) return;
    connect_failed("connect_timeout",
                   "connection attempt timed out after " + std::to_string(timeout.count()) + " ms");
  }));
  wait_connect(PGRES_POLLING_WRITING);
}

void PgConnection::Impl::connect_failed(const std::string& reason, const std::string& message) {
  auto done = std::move(on_connected);
  on_connected = nullptr;
  close();
  last_failure_reason = reason;
  if (done) done(message.empty() ? "connection failed" : message);
}

bool PgConnection::Impl::assign_socket() {
  int fd = PQsocket(conn);
  if (fd < 0) {
    connect_failed("error", "libpq has no socket: " + trim_message(PQerrorMessage(conn)));
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

void PgConnection::Impl::wait_connect(PostgresPollingStatusType want) {
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

void PgConnection::Impl::poll_connect() {
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
        connect_failed("error", "cannot set the connection non-blocking: " +
                                    trim_message(PQerrorMessage(conn)));
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
      connect_failed("error", trim_message(PQerrorMessage(conn)));
      return;
  }
}

void PgConnection::Impl::fail(const std::string& reason, const std::string& message) {
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

void PgConnection::Impl::close() {
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
