// WalSource's state, shared by its two halves: the stream (START_REPLICATION, decoding,
// completions, the confirmed position and status updates: WalSource.cpp) and the monitor
// connection (catalog lookups, the slot's metrics, a lost slot re-created: WalSlotMonitor.cpp).
// Private to the pg area.
#pragma once

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <unordered_map>

#include "log/Log.hpp"
#include "metrics/Metrics.hpp"
#include "pg/PgSession.hpp"
#include "pg/ReplicationProtocol.hpp"
#include "pg/WalDecoder.hpp"
#include "pg/WalSource.hpp"
#include "pg/WalSpool.hpp"

namespace pgfanout::pg {

namespace asio = boost::asio;

struct WalSource::Impl : std::enable_shared_from_this<WalSource::Impl> {
  // One transaction between its Begin and the settling of its events' completions.
  struct Txn {
    std::uint64_t end = 0;  // the end of its commit record: what to confirm
    std::size_t outstanding = 0;
    bool committed = false;
    bool failed = false;
  };
  // A streamed transaction that committed, its staged events being delivered.
  struct Replay {
    std::shared_ptr<Txn> txn;
    std::unique_ptr<WalSpool> spool;
    std::string txid, at;
  };
  // The state of one stream connection; completions of an earlier one find it replaced.
  struct Run {
    struct Chunk {
      std::shared_ptr<EventCompletion> completion;
      std::shared_ptr<Txn> txn;
      std::shared_ptr<std::size_t> count;
    };
    Chunk chunk;  // events of the open transaction delivered under one completion
    // Transactions streamed before their commit (protocol 2), by top-level xid; their spools
    // (and the one being replayed) share one memory budget, wal.spool_memory.
    std::shared_ptr<WalSpool::Budget> spool_budget;
    std::unordered_map<std::uint32_t, std::unique_ptr<WalSpool>> staged;
    std::unique_ptr<Replay> replay;  // reading stays paused until it is all delivered
    bool in_replay = false;
    std::deque<std::shared_ptr<Txn>> txns;  // oldest first; the back may still be open
    std::shared_ptr<Txn> open;
    std::size_t pending = 0;  // events whose completion has not settled
    bool paused = false;      // on_data returned false
    bool waiting_types = false;
    bool failed = false;  // restarting after a failed action
  };

  Impl(asio::io_context& io_, Metrics& metrics_, PostgresConfig pg_, WalConfig wal_,
       std::vector<WatchSpec> watch_, EventSink& sink_, EventSource& self_)
      : io(io_),
        metrics(metrics_),
        pg(std::move(pg_)),
        wal(std::move(wal_)),
        watch(std::move(watch_)),
        sink(sink_),
        self(self_),
        status_timer(io_),
        monitor_timer(io_),
        retry_timer(io_),
        decoder(watch) {}

  void init() {
    std::weak_ptr<Impl> weak = weak_from_this();
    PgSession::Handlers mh;
    mh.on_ready = [weak](bool) {
      if (auto s = weak.lock()) s->monitor_ready();
    };
    mh.on_lost = [weak](const std::string&, const std::string& message, bool) {
      auto s = weak.lock();
      if (!s) return;
      s->state.last_error = message;
      // A re-creation cut short is tried again once the monitor is back (check_slot).
      s->recreating = false;
    };
    monitor = std::make_unique<PgSession>(io, pg, PgSession::Options{"WAL monitor"}, mh);

    PgSession::Handlers sh;
    sh.on_ready = [weak](bool) {
      if (auto s = weak.lock()) s->stream_ready();
    };
    sh.on_lost = [weak](const std::string& reason, const std::string& message, bool was_up) {
      if (auto s = weak.lock()) s->stream_lost(reason, message, was_up);
    };
    PgSession::Options so{"WAL stream"};
    so.confirm_on_connect = false;  // confirmed once START_REPLICATION works
    so.replication = true;
    stream = std::make_unique<PgSession>(io, pg, so, sh);
  }

  // ---- the monitor connection: catalog, slot, metrics

  void monitor_ready();

  // Runs a catalog query on the monitor: each row (NULL as "") goes to on_row, then `then` runs.
  // A failure closes the monitor connection; it reconnects and asks again.
  void catalog_rows(const char* sql, PgConnection::Params params, const std::string& what,
                    std::function<void(Impl&, const std::vector<std::string>&)> on_row,
                    std::function<void(Impl&)> then);
  void load_table_keys();

  // Reads the slot; a lost or missing slot is re-created, then the stream starts.
  void check_slot();

  void schedule_monitor();

  // The slot is lost or missing: the changes since its position are gone. The rules' on_gap
  // actions run, the slot is made again, and streaming goes on from the new slot's start.
  void slot_gone(const std::string& why);

  void update_status_gauges();

  // The decoder met types it does not know: reading stays paused until they are loaded.
  void need_types(const std::vector<std::uint32_t>& oids);

  void load_types();

  // ---- the stream connection

  void stream_ready();

  void start_failed(const PgResult& r);

  void stream_lost(const std::string& reason, const std::string& message, bool was_up);

  // One CopyData message. False pauses reading.
  bool on_data(std::string_view data);

  void deliver(WalEvent&& ev, std::shared_ptr<EventCompletion> completion);
  // One acknowledgement for *count events of txn (counted in run->pending by the caller):
  // settled when all their actions are, then they leave pending.
  std::shared_ptr<EventCompletion> completion_for(const std::shared_ptr<Txn>& txn,
                                                  std::shared_ptr<const std::size_t> count);
  // Delivers an event of the open transaction under the current chunk's completion.
  void deliver_in_chunk(WalEvent&& ev);
  // Lets go of the current chunk's completion, so it settles when its actions are done.
  void close_chunk();

  // ---- transactions streamed before their commit (WalStreamed.cpp)

  // Keeps an event of an open streamed transaction. False when it could not (the stream
  // restarts from the confirmed position).
  bool stage(WalEvent&& ev);
  void stream_commit(const WalDecoder::Result& r);
  void stream_abort(const WalDecoder::Result& r);
  // Delivers the committed streamed transaction's events while fewer than max_pending wait.
  // True when all were delivered.
  bool replay_some();
  // Whether this server streams large transactions (wal.streaming, PostgreSQL 14+).
  bool streams() const;
  // The START_REPLICATION options for this server.
  std::string stream_options() const;

  // Confirms the settled transactions at the front; a failed one restarts the stream.
  void advance();

  void advance_to(std::uint64_t lsn);

  void maybe_resume();

  void restart_after_failure();

  // ---- standby status updates

  void arm_status_timer();

  void send_status();

  void stop();

  asio::io_context& io;
  Metrics& metrics;
  PostgresConfig pg;
  WalConfig wal;
  std::vector<WatchSpec> watch;
  EventSink& sink;
  EventSource& self;
  asio::steady_timer status_timer, monitor_timer, retry_timer;
  WalDecoder decoder;
  std::unique_ptr<PgSession> monitor, stream;
  std::shared_ptr<Run> run;
  std::vector<WalEvent> events;  // reused buffer
  std::vector<std::uint32_t> pending_types;
  std::uint64_t confirmed = 0, received = 0, sent = 0;
  int server_version = 0;  // server_version_num, read by the monitor
  std::chrono::steady_clock::time_point sent_at{};
  bool streaming = false, ever_streamed = false, stopped = false, recreating = false;
  Status state;

  Counter& events_total =
      metrics.counter("pgfanout_wal_events_total", "Events decoded from the replication stream");
  Counter& restarts = metrics.counter("pgfanout_wal_stream_restarts_total",
                                      "Replication stream connections lost or restarted");
  Counter& action_failures =
      metrics.counter("pgfanout_wal_action_failures_total",
                      "Transactions streamed again because one of their actions failed");
  Counter& decode_errors = metrics.counter("pgfanout_wal_decode_errors_total",
                                           "Replication messages that could not be decoded");
  RateLimitedLog skipped_log;  // skipped app messages: one line per burst, not per message
  Counter& streamed_total =
      metrics.counter("pgfanout_wal_streamed_transactions_total",
                      "Transactions received while still running (protocol 2 streaming)",
                      {{"result", "committed"}});
  Counter& streamed_aborted = metrics.counter(
      "pgfanout_wal_streamed_transactions_total",
      "Transactions received while still running (protocol 2 streaming)", {{"result", "aborted"}});
  Counter& spilled_total =
      metrics.counter("pgfanout_wal_spilled_bytes_total",
                      "Bytes of streamed transactions' events written to spool files");
  Counter& spool_errors =
      metrics.counter("pgfanout_wal_spool_errors_total",
                      "Streamed transactions that could not be staged or read back (the stream "
                      "restarted from the confirmed position)");
  Gauge& staged_gauge =
      metrics.gauge("pgfanout_wal_staged_events",
                    "Events of open streamed transactions waiting for their commit");
  Counter& slot_lost_total =
      metrics.counter("pgfanout_wal_slot_lost_total",
                      "Times the replication slot was lost or missing and re-created");
  Counter& status_updates =
      metrics.counter("pgfanout_wal_status_updates_total", "Standby status updates sent");
  Gauge& confirmed_gauge = metrics.gauge("pgfanout_wal_confirmed_lsn",
                                         "The WAL position confirmed to the server (as a number)");
  Gauge& retained_gauge =
      metrics.gauge("pgfanout_wal_retained_bytes",
                    "WAL the server keeps for the slot (current position - restart_lsn)");
  Gauge& lag_gauge = metrics.gauge(
      "pgfanout_wal_lag_bytes", "WAL not yet confirmed (current position - confirmed_flush_lsn)");
};

}  // namespace pgfanout::pg
