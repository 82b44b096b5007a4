#include "pg/PgConnectionImpl.hpp"

namespace pgfanout::pg {

void PgConnection::Impl::query(std::string sql, Params params, QueryDone done) {
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

void PgConnection::Impl::send_next() {
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
    fail("error", "cannot send query: " + trim_message(PQerrorMessage(conn)));
    return;
  }
  in_flight = true;
  current = PgResult{};
  current.ok = true;
  flush_output();
}

void PgConnection::Impl::flush_output() {
  if (conn == nullptr) return;
  int r = PQflush(conn);
  if (r < 0) {
    fail("error", "cannot write to the server: " + trim_message(PQerrorMessage(conn)));
    return;
  }
  if (r == 1 && !writing) {
    await_socket(asio::posix::stream_descriptor::wait_write, writing, [this] { flush_output(); });
  }
}

void PgConnection::Impl::start_read() {
  if (reading) return;
  auto gen = generation;
  await_socket(asio::posix::stream_descriptor::wait_read, reading, [this, gen] {
    on_readable();
    if (gen == generation && !copy_paused) start_read();
  });
}

void PgConnection::Impl::collect(PGresult* r) {
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
    current.error = trim_message(PQresultErrorMessage(r));
    const char* state_code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state_code != nullptr) current.sqlstate = state_code;
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (primary != nullptr) current.message = primary;
  }
}

void PgConnection::Impl::on_readable() {
  if (PQconsumeInput(conn) == 0) {
    fail("error", trim_message(PQerrorMessage(conn)));
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

void PgConnection::Impl::drain_notifies() {
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

}  // namespace pgfanout::pg
