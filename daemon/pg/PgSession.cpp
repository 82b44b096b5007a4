#include "pg/PgSession.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pg/Backoff.hpp"
#include "pg/ConnInfo.hpp"

namespace pgfanout::pg {

namespace asio = boost::asio;

struct PgSession::Impl : std::enable_shared_from_this<PgSession::Impl> {
  Impl(asio::io_context& io, PostgresConfig p, Options o, Handlers h)
      : pg(std::move(p)),
        opts(std::move(o)),
        handlers(std::move(h)),
        conn(io, connection_handlers(), opts.queue_limit, opts.refused),
        retry_timer(io),
        backoff(pg.reconnect_min, pg.reconnect_max) {}

  // The connection's handlers reach the session through `this`: the connection is a member, and
  // a destroyed PgConnection calls nothing. Each keeps the session alive while the owner's
  // callback runs, since the owner may destroy the PgSession from it.
  PgConnection::Handlers connection_handlers() {
    PgConnection::Handlers h;
    h.on_notify = [this](std::string channel, std::string payload, int pid) {
      auto keep = shared_from_this();
      if (handlers.on_notify) handlers.on_notify(std::move(channel), std::move(payload), pid);
    };
    h.on_notify_batch_end = [this] {
      auto keep = shared_from_this();
      if (handlers.on_notify_batch_end) handlers.on_notify_batch_end();
    };
    h.on_lost = [this](const std::string& reason, const std::string& message) {
      lost(reason, message);
    };
    return h;
  }

  void connect() {
    if (!started) return;
    ++generation;
    up = false;
    auto gen = generation;
    std::weak_ptr<Impl> weak = weak_from_this();
    conn.connect(
        pg.dsn, pg.password, pg.connect_timeout,
        [weak, gen](const std::string& error) {
          auto self = weak.lock();
          if (!self || gen != self->generation || !self->started) return;
          if (!error.empty()) {
            self->lost(self->conn.last_failure_reason(), error);
            return;
          }
          self->up = true;
          bool first = !self->ever_up;
          self->ever_up = true;
          if (self->opts.confirm_on_connect) self->backoff.reset();
          if (self->handlers.on_ready) self->handlers.on_ready(first);
        },
        opts.replication);
  }

  // Closes, tells the owner, and schedules the next attempt.
  void lost(const std::string& reason, const std::string& message) {
    if (!started) return;
    auto keep = shared_from_this();
    bool was_up = up;
    up = false;
    ++generation;
    conn.close();
    spdlog::warn("{} ({}): {}; reconnecting", opts.name, describe(pg.dsn), message);
    schedule_reconnect();
    // Last: the owner may stop() or fail() from here.
    if (handlers.on_lost) handlers.on_lost(reason, message, was_up);
  }

  void schedule_reconnect() {
    auto gen = generation;
    std::weak_ptr<Impl> weak = weak_from_this();
    retry_timer.expires_after(backoff.next());
    retry_timer.async_wait([weak, gen](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || gen != self->generation || !self->started) return;
      self->connect();
    });
  }

  void stop() {
    started = false;
    up = false;
    ++generation;
    retry_timer.cancel();
    conn.close();
  }

  PostgresConfig pg;
  Options opts;
  Handlers handlers;
  PgConnection conn;
  asio::steady_timer retry_timer;
  Backoff backoff;
  std::uint64_t generation = 0;
  bool started = false;
  bool up = false;
  bool ever_up = false;
};

PgSession::PgSession(asio::io_context& io, PostgresConfig pg, Options options, Handlers handlers)
    : impl_(std::make_shared<Impl>(io, std::move(pg), std::move(options), std::move(handlers))) {}

PgSession::~PgSession() {
  impl_->stop();
}

void PgSession::start() {
  if (impl_->started) return;
  impl_->started = true;
  impl_->ever_up = false;
  impl_->backoff.reset();
  impl_->connect();
}

void PgSession::stop() {
  impl_->stop();
}

void PgSession::fail(const std::string& reason, const std::string& message) {
  if (!impl_->started) return;
  // Through the connection when it is open, so that its queued statements fail with the reason;
  // it then calls lost() itself.
  if (impl_->conn.connected()) {
    impl_->conn.fail(reason, message);
  } else {
    impl_->lost(reason, message);
  }
}

void PgSession::confirm() {
  impl_->backoff.reset();
}

void PgSession::query(std::string sql, PgConnection::Params params, PgConnection::QueryDone done) {
  impl_->conn.query(std::move(sql), std::move(params), std::move(done));
}

void PgSession::query_current(std::string sql, PgConnection::Params params,
                              PgConnection::QueryDone done) {
  std::weak_ptr<Impl> weak = impl_;
  auto gen = impl_->generation;
  impl_->conn.query(std::move(sql), std::move(params),
                    [weak, gen, done = std::move(done)](PgResult&& r) {
                      auto self = weak.lock();
                      if (!self || gen != self->generation || !self->conn.connected()) return;
                      if (done) done(std::move(r));
                    });
}

void PgSession::start_copy_both(std::string command, PgConnection::CopyHandlers handlers,
                                PgConnection::QueryDone started) {
  impl_->conn.start_copy_both(std::move(command), std::move(handlers), std::move(started));
}

bool PgSession::put_copy_data(std::string_view data) {
  return impl_->conn.put_copy_data(data);
}

void PgSession::resume_copy() {
  impl_->conn.resume_copy();
}

bool PgSession::started() const {
  return impl_->started;
}

bool PgSession::up() const {
  return impl_->up && impl_->conn.connected();
}

std::uint64_t PgSession::generation() const {
  return impl_->generation;
}

const PgConnection& PgSession::connection() const {
  return impl_->conn;
}

const PostgresConfig& PgSession::config() const {
  return impl_->pg;
}

}  // namespace pgfanout::pg
