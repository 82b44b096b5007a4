#include "hub/SqlGateway.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pg/Backoff.hpp"
#include "pg/ConnInfo.hpp"

namespace pgfanout::hub {

namespace asio = boost::asio;

namespace {
// Each run() queues three statements (BEGIN + SET LOCAL, the statement, COMMIT): 1000 runs.
constexpr std::size_t kMaxQueuedPerConnection = 3 * 1000;
// Below the connection's own bound, so all three statements of a run are always accepted.
static_assert(kMaxQueuedPerConnection + 3 <= pg::PgConnection::kDefaultMaxQueued);

// What one run() has gathered so far: the first failure, else the statement's result.
struct Pending {
  pg::PgResult result;
  bool settled = false;  // result holds the statement's outcome or an earlier failure
  pg::PgConnection::QueryDone done;
};
}  // namespace

struct SqlGateway::Impl : std::enable_shared_from_this<Impl> {
  struct Slot {
    std::unique_ptr<pg::PgConnection> conn;
    std::unique_ptr<asio::steady_timer> retry;
    pg::Backoff backoff;
    bool connecting = false;
    bool up = false;
  };

  Impl(asio::io_context& i, config::PostgresConfig p, int n) : io(i), pg(std::move(p)) {
    for (int k = 0; k < n; ++k) {
      slots.push_back(
          std::make_unique<Slot>(Slot{nullptr, std::make_unique<asio::steady_timer>(io),
                                      pg::Backoff(pg.reconnect_min, pg.reconnect_max)}));
    }
  }

  void connect(Slot& s) {
    if (stopped || s.connecting) return;
    s.connecting = true;
    s.up = false;
    std::weak_ptr<Impl> weak = shared_from_this();
    Slot* slot = &s;
    s.conn = std::make_unique<pg::PgConnection>(
        io, pg::PgConnection::Handlers{
                nullptr, nullptr, [weak, slot](const std::string&, const std::string& message) {
                  if (auto self = weak.lock()) self->lost(*slot, message);
                }});
    s.conn->connect(pg.dsn, pg.password, pg.connect_timeout,
                    [weak, slot](const std::string& error) {
                      auto self = weak.lock();
                      if (!self) return;
                      slot->connecting = false;
                      if (self->stopped) return;
                      if (!error.empty()) {
                        self->lost(*slot, error);
                        return;
                      }
                      slot->up = true;
                      slot->backoff.reset();
                    });
  }

  void lost(Slot& s, const std::string& message) {
    s.up = false;
    s.connecting = false;
    if (stopped) return;
    spdlog::warn("hub SQL connection ({}): {}; reconnecting", pg::describe(pg.dsn), message);
    std::weak_ptr<Impl> weak = shared_from_this();
    Slot* slot = &s;
    s.retry->expires_after(s.backoff.next());
    s.retry->async_wait([weak, slot](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!ec && self) self->connect(*slot);
    });
  }

  asio::io_context& io;
  config::PostgresConfig pg;
  std::vector<std::unique_ptr<Slot>> slots;
  bool stopped = false;
};

SqlGateway::SqlGateway(asio::io_context& io, config::PostgresConfig pg, int connections)
    : impl_(std::make_shared<Impl>(io, std::move(pg), connections)) {}

SqlGateway::~SqlGateway() {
  stop();
}

void SqlGateway::start() {
  impl_->stopped = false;
  for (auto& s : impl_->slots) impl_->connect(*s);
}

void SqlGateway::stop() {
  impl_->stopped = true;
  for (auto& s : impl_->slots) {
    s->retry->cancel();
    if (s->conn) s->conn->close();
    s->up = false;
  }
}

bool SqlGateway::available() const {
  for (const auto& s : impl_->slots) {
    if (s->up) return true;
  }
  return false;
}

void SqlGateway::run(std::string sql, pg::PgConnection::Params params,
                     std::chrono::milliseconds timeout, pg::PgConnection::QueryDone done) {
  Impl::Slot* best = nullptr;
  for (auto& s : impl_->slots) {
    if (!s->up) continue;
    if (best == nullptr || s->conn->queued() < best->conn->queued()) best = s.get();
  }
  if (best == nullptr || best->conn->queued() >= kMaxQueuedPerConnection) {
    pg::PgResult r;
    r.error = best == nullptr ? "database unavailable" : "database busy";
    r.sqlstate = "08006";
    done(std::move(r));
    return;
  }
  // One transaction per statement, its timeout set with SET LOCAL: the setting ends with the
  // transaction, so a pooled connection never carries one statement's timeout into the next. The
  // three are queued together, so nothing else runs on this connection in between. After a
  // failure COMMIT rolls back (PostgreSQL answers COMMIT in an aborted transaction with ROLLBACK),
  // and the result is handed over only once the transaction has ended.
  auto pending = std::make_shared<Pending>();
  pending->done = std::move(done);
  best->conn->query("BEGIN; SET LOCAL statement_timeout = " + std::to_string(timeout.count()), {},
                    [pending](pg::PgResult&& r) {
                      if (r.ok) return;
                      pending->result = std::move(r);
                      pending->settled = true;
                    });
  best->conn->query(std::move(sql), std::move(params), [pending](pg::PgResult&& r) {
    if (pending->settled) return;  // the setup failed: keep its error, not "transaction aborted"
    pending->result = std::move(r);
    pending->settled = true;
  });
  best->conn->query("COMMIT", {}, [pending](pg::PgResult&& r) {
    // A statement that worked but whose transaction did not commit (a deferred constraint, the
    // connection lost) failed.
    if (!r.ok && pending->result.ok) pending->result = std::move(r);
    auto finish = std::move(pending->done);
    finish(std::move(pending->result));
  });
}

}  // namespace pgfanout::hub
