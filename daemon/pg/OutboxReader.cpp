#include "pg/OutboxReader.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "metrics/Metrics.hpp"
#include "pg/ConnInfo.hpp"
#include "pg/PgSession.hpp"

namespace pgfanout::pg {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct OutboxReader::Impl {
  struct Event {
    std::string txid;
    std::int64_t id = 0;
  };

  Impl(OutboxReader& s, asio::io_context& io_, Metrics& m, PostgresConfig p, OutboxConfig o,
       std::string c, EventSink& k)
      : self(s),
        io(io_),
        pg(std::move(p)),
        opts(o),
        consumer(std::move(c)),
        sink(k),
        conn(io_, pg, session_options(m), session_handlers()),
        retry_timer(io_),
        poll_timer(io_),
        trim_timer(io_),
        delivered_ok(m.counter("pgfanout_outbox_events_total",
                               "Durable events read from the outbox, by outcome",
                               {{"result", "ok"}})),
        delivered_failed(m.counter("pgfanout_outbox_events_total",
                                   "Durable events read from the outbox, by outcome",
                                   {{"result", "failed"}})),
        errors(m.counter("pgfanout_outbox_errors_total",
                         "Failed outbox fetches, acknowledgements and connections")),
        trimmed(m.counter("pgfanout_outbox_trimmed_total", "Consumed outbox events deleted")),
        inflight(m.gauge("pgfanout_outbox_inflight", "Durable events delivered, not yet acked")),
        lag(m.gauge("pgfanout_outbox_lag_seconds",
                    "Age of the newest durable event acknowledged, when it was acknowledged")) {}

  static PgSession::Options session_options(Metrics& m) {
    PgSession::Options o;
    o.name = "outbox reader";
    o.refused = &m.counter(kQueriesRefusedMetric, kQueriesRefusedHelp, {{"connection", "outbox"}});
    return o;
  }

  PgSession::Handlers session_handlers() {
    PgSession::Handlers h;
    h.on_ready = [this](bool first) {
      schedule_poll();
      schedule_trim(std::chrono::seconds(5));
      // Nothing is missed while away: unacknowledged events are read again.
      sink.on_connected(self, first, /*missed_events=*/false);
      ring();
    };
    h.on_lost = [this](const std::string&, const std::string& message, bool was_up) {
      lost();
      if (was_up && !stopped) sink.on_disconnected(self, message);
    };
    return h;
  }

  void start(std::vector<std::string> ch) {
    stopped = false;
    channels = std::move(ch);
    if (!channels.empty()) conn.start();
  }

  void set_channels(std::vector<std::string> ch) {
    channels = std::move(ch);
    if (channels.empty() || stopped) return;
    if (!conn.started()) {
      conn.start();
    } else {
      ring();
    }
  }

  void lost() {
    if (stopped) return;
    errors.inc();
    poll_timer.cancel();
    trim_timer.cancel();
    // An interrupted batch is delivered again after the reconnect (at-least-once).
    batch_active = false;
    fetching = false;
    ++batch_generation;
    inflight.set(0);
  }

  void ring() {
    rung = true;
    fetch();
  }

  void schedule_poll() {
    poll_timer.expires_after(opts.poll_interval);
    poll_timer.async_wait([this](boost::system::error_code ec) {
      if (ec || stopped) return;
      ring();
      schedule_poll();
    });
  }

  void schedule_trim(std::chrono::milliseconds after) {
    trim_timer.expires_after(after);
    trim_timer.async_wait([this](boost::system::error_code ec) {
      if (ec || stopped || !conn.up()) return;
      conn.query_current(
          "SELECT pgfanout.outbox_trim($1::interval, $2, $3::interval)",
          {std::to_string(opts.max_age.count()) + " milliseconds", std::to_string(opts.trim_batch),
           std::to_string(opts.keep.count()) + " milliseconds"},
          [this](PgResult&& r) {
            if (!r.ok) {
              errors.inc();
              if (r.sqlstate == "42883" || r.sqlstate == "3F000") {
                spdlog::error(
                    "outbox: pgfanout.outbox_trim(max_age, batch, keep) is missing in the "
                    "database (SQL older than this daemon); run `pgfanout install`");
              } else {
                spdlog::warn("outbox trim failed: {}", r.error);
              }
            } else if (!r.rows.empty() && r.at(0, 0)) {
              auto n = std::stoll(*r.at(0, 0));
              trimmed.inc(static_cast<std::uint64_t>(n));
              // A full batch means more is waiting: continue soon.
              if (n >= opts.trim_batch) {
                schedule_trim(std::chrono::milliseconds(100));
                return;
              }
            }
            schedule_trim(opts.trim_interval);
          });
    });
  }

  void fetch() {
    if (stopped || fetching || batch_active || channels.empty() || !conn.up()) return;
    fetching = true;
    rung = false;
    conn.query_current(
        "SELECT id, channel, payload::text, txid::text, "
        "(extract(epoch FROM clock_timestamp() - created_at) * 1000)::bigint "
        "FROM pgfanout.outbox_fetch($1, $2::text[], $3)",
        {consumer, text_array(channels), std::to_string(opts.batch_size)}, [this](PgResult&& r) {
          fetching = false;
          if (stopped) return;
          if (!r.ok) {
            errors.inc();
            if (r.sqlstate == "42883" || r.sqlstate == "3F000") {
              spdlog::error(
                  "outbox: pgfanout.outbox_fetch is missing in the database; run `pgfanout "
                  "install` (durable rules wait until it exists)");
            } else {
              spdlog::warn("outbox fetch failed: {}", r.error);
            }
            retry_later();
            return;
          }
          if (r.rows.empty()) {
            if (rung) fetch();
            return;
          }
          deliver_batch(std::move(r));
        });
  }

  void deliver_batch(PgResult&& r) {
    batch_active = true;
    auto gen = ++batch_generation;
    batch.clear();
    batch_ok.assign(r.rows.size(), 1);
    pending = r.rows.size();
    inflight.set(static_cast<std::int64_t>(pending));
    newest_age_ms = 0;
    for (std::size_t i = 0; i < r.rows.size(); ++i) {
      auto& row = r.rows[i];
      batch.push_back(Event{row[3].value_or("0"), std::stoll(row[0].value_or("0"))});
      newest_age_ms = std::stoll(row[4].value_or("0"));
      Notification n;
      n.channel = row[1].value_or("");
      n.payload = row[2].value_or("");
      n.outbox_id = batch.back().id;
      n.outbox_txid = std::stoull(batch.back().txid);
      n.received = Clock::now();
      auto completion = std::make_shared<EventCompletion>([this, gen, i](bool ok) {
        if (gen != batch_generation) return;  // the batch was abandoned (connection lost)
        batch_ok[i] = ok ? 1 : 0;
        (ok ? delivered_ok : delivered_failed).inc();
        if (--pending == 0) {
          // Settling can happen inside on_event(): acknowledge from a fresh handler.
          asio::post(io, [this, gen] {
            if (gen == batch_generation) acknowledge();
          });
        }
      });
      sink.on_event(self, std::move(n), std::move(completion));
      if (gen != batch_generation) return;  // the sink stopped the reader
    }
    sink.on_batch_end(self);
  }

  void acknowledge() {
    inflight.set(0);
    std::size_t good = 0;
    while (good < batch.size() && batch_ok[good]) ++good;
    bool failed = good < batch.size();
    if (good == 0) {
      batch_active = false;
      retry_later();
      return;
    }
    const Event& last = batch[good - 1];
    auto gen = batch_generation;
    conn.query_current("SELECT pgfanout.outbox_ack($1, $2::xid8, $3)",
                       {consumer, last.txid, std::to_string(last.id)},
                       [this, gen, failed, good_count = good](PgResult&& r) {
                         if (gen != batch_generation) return;
                         batch_active = false;
                         if (!r.ok) {
                           errors.inc();
                           spdlog::warn("outbox ack failed: {}", r.error);
                           retry_later();
                           return;
                         }
                         lag.set(static_cast<double>(newest_age_ms) / 1000.0);
                         spdlog::debug("outbox: acknowledged up to event {}",
                                       batch[good_count - 1].id);
                         if (failed) {
                           spdlog::warn("outbox: an event's actions failed; retrying it in {} ms",
                                        opts.retry_delay.count());
                           retry_later();
                         } else {
                           fetch();  // more may be waiting
                         }
                       });
  }

  void retry_later() {
    retry_timer.expires_after(opts.retry_delay);
    retry_timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) ring();
    });
  }

  void stop() {
    stopped = true;
    ++batch_generation;
    retry_timer.cancel();
    poll_timer.cancel();
    trim_timer.cancel();
    conn.stop();
  }

  OutboxReader& self;
  asio::io_context& io;
  PostgresConfig pg;
  OutboxConfig opts;
  std::string consumer;
  EventSink& sink;
  PgSession conn;
  asio::steady_timer retry_timer, poll_timer, trim_timer;
  Counter& delivered_ok;
  Counter& delivered_failed;
  Counter& errors;
  Counter& trimmed;
  Gauge& inflight;
  Gauge& lag;

  std::vector<std::string> channels;
  bool stopped = true;
  bool fetching = false;
  bool rung = false;
  bool batch_active = false;
  std::uint64_t batch_generation = 0;
  std::vector<Event> batch;
  std::vector<char> batch_ok;
  std::size_t pending = 0;
  std::int64_t newest_age_ms = 0;
};

OutboxReader::OutboxReader(asio::io_context& io, Metrics& metrics, PostgresConfig pg,
                           OutboxConfig options, std::string consumer, EventSink& sink)
    : impl_(std::make_unique<Impl>(*this, io, metrics, std::move(pg), options, std::move(consumer),
                                   sink)) {}

OutboxReader::~OutboxReader() {
  impl_->stop();
}

void OutboxReader::start(std::vector<std::string> channels) {
  impl_->start(std::move(channels));
}
void OutboxReader::set_channels(std::vector<std::string> channels) {
  impl_->set_channels(std::move(channels));
}
void OutboxReader::ring() {
  impl_->ring();
}
void OutboxReader::stop() {
  impl_->stop();
}
bool OutboxReader::idle() const {
  return !impl_->batch_active && !impl_->fetching;
}
bool OutboxReader::connected() const {
  return impl_->conn.up();
}

}  // namespace pgfanout::pg
