// PgConnection in copy-both mode: the stream of a replication connection after START_REPLICATION
// (see PgConnection::start_copy_both). Reading pauses when the owner's on_data says so, which
// leaves the data in the server's send buffer: the walsender waits, memory stays bounded.
#include "pg/PgConnectionImpl.hpp"

namespace pgfanout::pg {

void PgConnection::Impl::start_copy_both(std::string command, CopyHandlers h, QueryDone started) {
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

void PgConnection::Impl::enter_copy() {
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

void PgConnection::Impl::drain_copy() {
  const auto gen = generation;
  const auto until = std::chrono::steady_clock::now() + kNotifyTurn;
  bool any = false;
  while (!copy_paused) {
    char* buf = nullptr;
    int n = PQgetCopyData(conn, &buf, 1);
    if (n == 0) break;  // no complete message yet
    if (n < 0) {
      std::string message = trim_message(PQerrorMessage(conn));
      if (n == -1) {  // the server ended the stream: its reason is in the final result
        if (PGresult* r = PQgetResult(conn)) {
          if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
            message = trim_message(PQresultErrorMessage(r));
          }
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

bool PgConnection::Impl::put_copy_data(std::string_view data) {
  if (!copying || conn == nullptr) return false;
  int r = PQputCopyData(conn, data.data(), static_cast<int>(data.size()));
  if (r < 0) {
    fail("error", "cannot write to the server: " + trim_message(PQerrorMessage(conn)));
    return false;
  }
  if (r == 0) return false;
  flush_output();
  return true;
}

void PgConnection::Impl::resume_copy() {
  if (!copying || !copy_paused) return;
  copy_paused = false;
  asio::post(sock.get_executor(), [weak = weak_from_this(), gen = generation] {
    auto self = weak.lock();
    if (self && self->generation == gen) self->drain_copy();
  });
  start_read();
}

}  // namespace pgfanout::pg
