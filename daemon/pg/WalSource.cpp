#include "pg/WalSource.hpp"

#include <algorithm>
#include <deque>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "metrics/Metrics.hpp"
#include "pg/ConnInfo.hpp"
#include "pg/PgSession.hpp"
#include "pg/ReplicationProtocol.hpp"
#include "pg/WalDecoder.hpp"

namespace pgfanout::pg {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// The slot's state, for the metrics and the decision to re-create it.
constexpr const char* kSlotSql =
    "SELECT coalesce(wal_status, ''), active::text, "
    "       coalesce(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)"
    "                ::bigint::text, '-1'), "
    "       coalesce(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), "
    "                confirmed_flush_lsn)::bigint::text, '-1'), "
    "       plugin "
    "  FROM pg_catalog.pg_replication_slots WHERE slot_name = $1";

// Status updates: checked this often, sent when the position moved or status_interval passed.
constexpr auto kStatusTick = 1s;

std::string quote_literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace

struct WalSource::Impl : std::enable_shared_from_this<WalSource::Impl> {
  // One transaction between its Begin and the settling of its events' completions.
  struct Txn {
    std::uint64_t end = 0;  // the end of its commit record: what to confirm
    std::size_t outstanding = 0;
    bool committed = false;
    bool failed = false;
  };
  // The state of one stream connection; completions of an earlier one find it replaced.
  struct Run {
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
      if (auto s = weak.lock()) s->state.last_error = message;
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

  void monitor_ready() {
    auto weak = weak_from_this();
    monitor->query_current("SELECT pg_catalog.pg_current_xact_id()::text", {},
                           [weak](PgResult&& r) {
                             auto s = weak.lock();
                             if (!s) return;
                             if (!r.ok || r.rows.empty() || !r.at(0, 0)) {
                               s->monitor->fail("error", "reading the current xid: " + r.error);
                               return;
                             }
                             s->decoder.set_reference_xid(std::stoull(*r.at(0, 0)));
                             s->load_table_keys();
                           });
  }

  void load_table_keys() {
    auto params = decoder.table_key_params();
    PgConnection::Params p(params.begin(), params.end());
    auto weak = weak_from_this();
    monitor->query_current(kTableKeySql, std::move(p), [weak](PgResult&& r) {
      auto s = weak.lock();
      if (!s) return;
      if (!r.ok) {
        s->monitor->fail("error", "reading the watched tables' keys: " + r.error);
        return;
      }
      for (const auto& row : r.rows) {
        std::vector<std::string> values;
        for (const auto& v : row) values.push_back(v.value_or(""));
        s->decoder.add_table_key_row(values);
      }
      s->monitor->confirm();
      s->check_slot();
      if (!s->pending_types.empty()) s->load_types();
    });
  }

  // Reads the slot; a lost or missing slot is re-created, then the stream starts.
  void check_slot() {
    auto weak = weak_from_this();
    monitor->query_current(kSlotSql, {wal.slot}, [weak](PgResult&& r) {
      auto s = weak.lock();
      if (!s || s->stopped) return;
      if (!r.ok) {
        s->monitor->fail("error", "reading the slot: " + r.error);
        return;
      }
      s->schedule_monitor();
      if (r.rows.empty()) {
        s->state.slot_status = "missing";
        s->slot_gone("the replication slot " + s->wal.slot + " does not exist");
        return;
      }
      const auto& row = r.rows[0];
      s->state.slot_status = row[0].value_or("");
      s->state.retained_bytes = std::stoll(row[2].value_or("-1"));
      s->state.lag_bytes = std::stoll(row[3].value_or("-1"));
      s->retained_gauge.set(static_cast<double>(s->state.retained_bytes));
      s->lag_gauge.set(static_cast<double>(s->state.lag_bytes));
      s->update_status_gauges();
      if (row[4].value_or("") != "pgoutput") {
        s->state.last_error = "the replication slot " + s->wal.slot + " uses the plugin " +
                              row[4].value_or("") + ", not pgoutput";
        spdlog::error("WAL source: {}; choose another wal.slot", s->state.last_error);
        return;
      }
      if (s->state.slot_status == "lost") {
        s->slot_gone("the replication slot " + s->wal.slot +
                     " was invalidated (wal_status lost: the WAL it needed was removed, see "
                     "max_slot_wal_keep_size)");
        return;
      }
      if (!s->stream->started() && !s->stopped) s->stream->start();
    });
  }

  void schedule_monitor() {
    auto weak = weak_from_this();
    monitor_timer.expires_after(wal.monitor_interval);
    monitor_timer.async_wait([weak](boost::system::error_code ec) {
      auto s = weak.lock();
      if (ec || !s || s->stopped || !s->monitor->up()) return;
      s->check_slot();
    });
  }

  // The slot is lost or missing: the changes since its position are gone. The rules' on_gap
  // actions run, the slot is made again, and streaming goes on from the new slot's start.
  void slot_gone(const std::string& why) {
    if (recreating) return;
    recreating = true;
    state.slot_lost = true;
    ++state.slot_losses;
    slot_lost_total.inc();
    update_status_gauges();
    spdlog::error(
        "WAL source: {}; changes since its position are lost: running the rules' "
        "on_gap actions and re-creating the slot",
        why);
    stream->stop();
    streaming = false;
    run.reset();
    auto weak = weak_from_this();
    monitor->query_current(
        "SELECT pg_catalog.pg_drop_replication_slot(slot_name) "
        "  FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND NOT active",
        {wal.slot}, [weak, why](PgResult&&) {
          auto s = weak.lock();
          if (!s) return;
          s->monitor->query_current(
              "SELECT pg_catalog.pg_create_logical_replication_slot($1::name, 'pgoutput')",
              {s->wal.slot}, [weak, why](PgResult&& r) {
                auto me = weak.lock();
                if (!me) return;
                me->recreating = false;
                if (!r.ok) {
                  me->state.last_error = "re-creating the slot: " + r.error;
                  spdlog::error("WAL source: {}", me->state.last_error);
                  return;  // the next monitor round tries again
                }
                spdlog::warn("WAL source: re-created the replication slot {}", me->wal.slot);
                me->state.slot_lost = false;
                me->state.slot_status = "reserved";
                me->confirmed = 0;
                me->update_status_gauges();
                me->sink.on_events_lost(me->self, why);
                if (!me->stopped) me->stream->start();
              });
        });
  }

  void update_status_gauges() {
    for (const char* st : {"reserved", "extended", "unreserved", "lost", "missing"}) {
      metrics
          .gauge("pgfanout_wal_slot_status",
                 "The replication slot's wal_status (1 for the current one; missing: no slot)",
                 {{"status", st}})
          .set(state.slot_status == st ? 1 : 0);
    }
  }

  // The decoder met types it does not know: reading stays paused until they are loaded.
  void need_types(const std::vector<std::uint32_t>& oids) {
    pending_types.insert(pending_types.end(), oids.begin(), oids.end());
    if (run) run->waiting_types = true;
    if (monitor->up()) load_types();
  }

  void load_types() {
    std::string list = "{";
    for (std::size_t i = 0; i < pending_types.size(); ++i) {
      list += (i ? "," : "") + std::to_string(pending_types[i]);
    }
    list += "}";
    auto weak = weak_from_this();
    monitor->query_current(kTypeCatalogSql, {list}, [weak](PgResult&& r) {
      auto s = weak.lock();
      if (!s) return;
      if (!r.ok) {
        s->monitor->fail("error", "reading types: " + r.error);
        return;
      }
      for (const auto& row : r.rows) {
        std::vector<std::string> values;
        for (const auto& v : row) values.push_back(v.value_or(""));
        s->decoder.types().add_row(values);
      }
      s->pending_types.clear();
      if (s->run) {
        s->run->waiting_types = false;
        s->maybe_resume();
      }
    });
  }

  // ---- the stream connection

  void stream_ready() {
    run = std::make_shared<Run>();
    decoder.reset();
    // Values are decoded from their text output: the walsender's session must print them as
    // the decoder reads them (and as to_jsonb prints them).
    stream->query(
        "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
        "SET extra_float_digits = 1; SET bytea_output = 'hex'",
        {}, [](PgResult&&) {});
    std::string publication = "\"";
    for (char c : wal.publication)
      publication += c == '"' ? std::string("\"\"") : std::string(1, c);
    publication += "\"";
    std::string command = "START_REPLICATION SLOT " + wal.slot + " LOGICAL " +
                          format_lsn(confirmed) + " (proto_version '1', publication_names " +
                          quote_literal(publication) + ", messages 'true')";
    auto weak = weak_from_this();
    PgConnection::CopyHandlers copy;
    copy.on_data = [weak](std::string_view data) {
      auto s = weak.lock();
      return s ? s->on_data(data) : false;
    };
    copy.on_batch_end = [weak] {
      if (auto s = weak.lock()) s->sink.on_batch_end(s->self);
    };
    stream->start_copy_both(command, std::move(copy), [weak](PgResult&& r) {
      auto s = weak.lock();
      if (!s) return;
      if (!r.ok) {
        s->start_failed(r);
        return;
      }
      s->stream->confirm();
      s->streaming = true;
      s->state.last_error.clear();
      bool first = !s->ever_streamed;
      s->ever_streamed = true;
      spdlog::info("WAL source: streaming from slot {} at {}", s->wal.slot,
                   format_lsn(s->confirmed));
      s->arm_status_timer();
      s->sink.on_connected(s->self, first, false);
    });
  }

  void start_failed(const PgResult& r) {
    state.last_error = r.error;
    if (r.sqlstate == "55006") {
      // Another connection streams from this slot: wait for it to go away (standby).
      stream->fail("slot_in_use",
                   "the replication slot " + wal.slot +
                       " is in use by another connection (another pgfanout instance with the same "
                       "wal.slot?); waiting to take over");
      return;
    }
    if (r.sqlstate == "42704" || r.sqlstate == "55000") {
      // Missing, or invalidated: the monitor decides (and re-creates it).
      stream->stop();
      check_slot();
      return;
    }
    stream->fail("error", "START_REPLICATION failed: " + r.error);
  }

  void stream_lost(const std::string& reason, const std::string& message, bool was_up) {
    state.last_error = message;
    bool was_streaming = streaming;
    streaming = false;
    run.reset();  // unsettled transactions are streamed again from the confirmed position
    status_timer.cancel();
    restarts.inc();
    (void)reason;
    if (was_streaming || was_up) sink.on_disconnected(self, message);
  }

  // One CopyData message. False pauses reading.
  bool on_data(std::string_view data) {
    if (!run) return false;
    auto msg = parse_replication_message(data);
    if (auto* k = std::get_if<PrimaryKeepalive>(&msg)) {
      received = std::max(received, k->wal_end);
      // Everything up to wal_end has been sent; with nothing pending it is all done.
      if (run->txns.empty()) advance_to(k->wal_end);
      if (k->reply_requested) send_status();
      return true;
    }
    if (auto* e = std::get_if<ReplicationError>(&msg)) {
      stream->fail("protocol", "bad replication message: " + e->message);
      return false;
    }
    const auto& x = std::get<XLogData>(msg);
    received = std::max(received, x.wal_start);
    events.clear();
    auto result = decoder.feed(x.payload, x.wal_start, events);
    auto keep = run;
    switch (result.kind) {
      case WalDecoder::Result::Begin:
        run->open = std::make_shared<Txn>();
        run->txns.push_back(run->open);
        break;
      case WalDecoder::Result::Commit:
        if (run->open) {
          run->open->end = result.commit_lsn;
          run->open->committed = true;
          run->open.reset();
        }
        break;
      case WalDecoder::Result::NeedTypes:
        need_types(result.types);
        break;
      case WalDecoder::Result::Error:
        decode_errors.inc();
        stream->fail("protocol", "cannot decode the replication stream: " + result.error);
        return false;
      case WalDecoder::Result::Ok:
        break;
    }
    for (auto& ev : events) {
      deliver(std::move(ev));
      if (run != keep) return false;  // the sink stopped or failed the stream
    }
    if (result.kind == WalDecoder::Result::Commit) advance();
    if (run != keep) return false;
    run->paused = run->waiting_types || run->pending >= wal.max_pending;
    return !run->paused;
  }

  void deliver(WalEvent&& ev) {
    Notification n;
    n.channel = std::move(ev.channel);
    n.payload = std::move(ev.payload);
    n.lsn = ev.lsn;
    std::shared_ptr<EventCompletion> completion;
    if (auto txn = run->open) {  // a change or a transactional message
      ++txn->outstanding;
      ++run->pending;
      std::weak_ptr<Impl> weak = weak_from_this();
      std::weak_ptr<Run> weak_run = run;
      completion = std::make_shared<EventCompletion>([weak, weak_run, txn](bool ok) {
        auto s = weak.lock();
        auto r = weak_run.lock();
        if (!s || !r || r != s->run) return;  // from a stream that is gone
        --txn->outstanding;
        --r->pending;
        if (!ok) txn->failed = true;
        s->advance();
        s->maybe_resume();
      });
    }
    events_total.inc();
    sink.on_event(self, std::move(n), std::move(completion));
  }

  // Confirms the settled transactions at the front; a failed one restarts the stream.
  void advance() {
    if (!run) return;
    while (!run->txns.empty()) {
      auto& t = run->txns.front();
      if (!t->committed || t->outstanding > 0) break;
      if (t->failed) {
        restart_after_failure();
        return;
      }
      advance_to(t->end);
      run->txns.pop_front();
    }
  }

  void advance_to(std::uint64_t lsn) {
    if (lsn <= confirmed) return;
    confirmed = lsn;
    confirmed_gauge.set(static_cast<double>(confirmed));
  }

  void maybe_resume() {
    if (!run || !run->paused || run->waiting_types || run->pending > wal.max_pending / 2) return;
    run->paused = false;
    stream->resume_copy();
  }

  void restart_after_failure() {
    if (run->failed) return;
    run->failed = true;
    action_failures.inc();
    send_status();
    spdlog::warn("WAL source: an action failed; streaming again from {} in {} ms",
                 format_lsn(confirmed), wal.retry_delay.count());
    stream->stop();
    streaming = false;
    run.reset();
    auto weak = weak_from_this();
    retry_timer.expires_after(wal.retry_delay);
    retry_timer.async_wait([weak](boost::system::error_code ec) {
      auto s = weak.lock();
      if (!ec && s && !s->stopped) s->stream->start();
    });
  }

  // ---- standby status updates

  void arm_status_timer() {
    auto weak = weak_from_this();
    status_timer.expires_after(kStatusTick);
    status_timer.async_wait([weak](boost::system::error_code ec) {
      auto s = weak.lock();
      if (ec || !s || !s->streaming) return;
      auto now = std::chrono::steady_clock::now();
      if (s->confirmed != s->sent || now - s->sent_at >= s->wal.status_interval) s->send_status();
      s->arm_status_timer();
    });
  }

  void send_status() {
    if (!streaming) return;
    StandbyStatus st;
    st.written = std::max(received, confirmed);
    st.flushed = confirmed;
    st.applied = confirmed;
    st.client_time = pg_now();
    if (stream->put_copy_data(build_standby_status(st))) {
      sent = confirmed;
      sent_at = std::chrono::steady_clock::now();
      status_updates.inc();
    }
  }

  void stop() {
    stopped = true;
    if (streaming) send_status();
    streaming = false;
    run.reset();
    status_timer.cancel();
    monitor_timer.cancel();
    retry_timer.cancel();
    if (stream) stream->stop();
    if (monitor) monitor->stop();
  }

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

WalSource::WalSource(asio::io_context& io, Metrics& metrics, PostgresConfig pg, WalConfig wal,
                     std::vector<WatchSpec> watch, EventSink& sink)
    : impl_(std::make_shared<Impl>(io, metrics, std::move(pg), std::move(wal), std::move(watch),
                                   sink, *this)) {
  impl_->init();
}

WalSource::~WalSource() {
  impl_->stop();
}

void WalSource::start(std::vector<std::string>) {
  impl_->stopped = false;
  spdlog::info("WAL source: slot {}, publication {}, PostgreSQL at {}", impl_->wal.slot,
               impl_->wal.publication, describe(impl_->pg.dsn));
  impl_->monitor->start();
}

void WalSource::set_channels(std::vector<std::string>) {}

void WalSource::stop() {
  impl_->stop();
}

bool WalSource::connected() const {
  return impl_->streaming;
}

WalSource::Status WalSource::status() const {
  Status s = impl_->state;
  s.streaming = impl_->streaming;
  s.confirmed = impl_->confirmed;
  return s;
}

void WalSource::send_status() {
  impl_->send_status();
}

}  // namespace pgfanout::pg
