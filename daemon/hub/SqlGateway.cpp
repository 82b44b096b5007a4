#include "hub/SqlGateway.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pg/PgSession.hpp"

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

struct SqlGateway::Impl {
  Impl(asio::io_context& io, const pg::PostgresConfig& pg, int n) {
    for (int k = 0; k < n; ++k) {
      pg::PgSession::Options o;
      o.name = "hub SQL connection";
      slots.push_back(std::make_unique<pg::PgSession>(io, pg, o, pg::PgSession::Handlers{}));
    }
  }

  std::vector<std::unique_ptr<pg::PgSession>> slots;
};

SqlGateway::SqlGateway(asio::io_context& io, pg::PostgresConfig pg, int connections)
    : impl_(std::make_unique<Impl>(io, pg, connections)) {}

SqlGateway::~SqlGateway() {
  stop();
}

void SqlGateway::start() {
  for (auto& s : impl_->slots) s->start();
}

void SqlGateway::stop() {
  for (auto& s : impl_->slots) s->stop();
}

bool SqlGateway::available() const {
  for (const auto& s : impl_->slots) {
    if (s->up()) return true;
  }
  return false;
}

void SqlGateway::run(std::string sql, pg::PgConnection::Params params,
                     std::chrono::milliseconds timeout, pg::PgConnection::QueryDone done) {
  pg::PgSession* best = nullptr;
  for (auto& s : impl_->slots) {
    if (!s->up()) continue;
    if (best == nullptr || s->connection().queued() < best->connection().queued()) best = s.get();
  }
  if (best == nullptr || best->connection().queued() >= kMaxQueuedPerConnection) {
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
  best->query("BEGIN; SET LOCAL statement_timeout = " + std::to_string(timeout.count()), {},
              [pending](pg::PgResult&& r) {
                if (r.ok) return;
                pending->result = std::move(r);
                pending->settled = true;
              });
  best->query(std::move(sql), std::move(params), [pending](pg::PgResult&& r) {
    if (pending->settled) return;  // the setup failed: keep its error, not "transaction aborted"
    pending->result = std::move(r);
    pending->settled = true;
  });
  best->query("COMMIT", {}, [pending](pg::PgResult&& r) {
    // A statement that worked but whose transaction did not commit (a deferred constraint, the
    // connection lost) failed.
    if (!r.ok && pending->result.ok) pending->result = std::move(r);
    auto finish = std::move(pending->done);
    finish(std::move(pending->result));
  });
}

}  // namespace pgfanout::hub
