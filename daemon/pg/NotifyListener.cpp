#include "pg/NotifyListener.hpp"

#include <unistd.h>

#include <random>
#include <set>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "metrics/Metrics.hpp"
#include "pg/ConnInfo.hpp"
#include "pg/PgSession.hpp"

namespace pgfanout::pg {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct NotifyListener::Impl {
  enum class State { Idle, Connecting, Setup, Ready, Stopped };

  Impl(NotifyListener& s, asio::io_context& io, Metrics& m, PostgresConfig o, EventSink& k)
      : self(s),
        metrics(m),
        opts(o),
        sink(k),
        session(io, std::move(o), session_options(m), session_handlers()),
        heartbeat_timer(io),
        connected_gauge(m.gauge("pgfanout_pg_connected", "1 while the listener is connected")),
        reconnects(m.counter("pgfanout_pg_reconnects_total",
                             "Listener connections re-established after a loss")),
        listening_gauge(m.gauge("pgfanout_pg_listening_channels", "Channels LISTENed")),
        heartbeat_rtt(m.histogram("pgfanout_pg_heartbeat_seconds",
                                  "Round trip of the listener's own heartbeat NOTIFY")) {
    std::mt19937_64 rng(std::random_device{}());
    heartbeat_channel =
        "pgfanout.heartbeat." + std::to_string(::getpid()) + "." + std::to_string(rng() % 1000000);
  }

  static PgSession::Options session_options(Metrics& m) {
    PgSession::Options o;
    o.name = "PostgreSQL listener";
    // The backoff starts again only once LISTEN worked: a server that takes connections but
    // cannot LISTEN (a standby) is retried at the growing delay.
    o.confirm_on_connect = false;
    o.refused =
        &m.counter(kQueriesRefusedMetric, kQueriesRefusedHelp, {{"connection", "listener"}});
    return o;
  }

  PgSession::Handlers session_handlers() {
    PgSession::Handlers h;
    h.on_ready = [this](bool) { setup(); };
    h.on_lost = [this](const std::string& reason, const std::string& message, bool) {
      lost(reason, message);
    };
    h.on_notify = [this](std::string ch, std::string payload, int sender) {
      on_notify(std::move(ch), std::move(payload), sender);
    };
    h.on_notify_batch_end = [this] { sink.on_batch_end(self); };
    return h;
  }

  Counter& disconnects(const std::string& reason) {
    return metrics.counter("pgfanout_pg_disconnects_total",
                           "Listener connections lost or refused, by reason", {{"reason", reason}});
  }

  void setup() {
    state = State::Setup;
    session.query_current("SELECT pg_is_in_recovery(), pg_backend_pid()", {}, [this](PgResult&& r) {
      if (!r.ok || r.rows.size() != 1) {
        session.fail("error", "set-up query failed: " + r.error);
        return;
      }
      pid = std::atoi(r.at(0, 1).value_or("0").c_str());
      if (r.at(0, 0) == "t") {
        std::string why = "the server at " + describe(opts.dsn) +
                          " is a hot standby (pg_is_in_recovery() is true) and cannot LISTEN; "
                          "point postgres.dsn at the primary";
        if (!ever_connected) {
          disconnects("standby").inc();
          stop();
          sink.on_fatal(self, why);
          return;
        }
        session.fail("standby", why);
        return;
      }
      listen_all();
    });
  }

  void listen_all() {
    std::set<std::string> want(wanted.begin(), wanted.end());
    const auto& conn = session.connection();
    std::string sql = "LISTEN " + conn.escape_identifier(heartbeat_channel) + ";";
    for (const auto& c : want) sql += "LISTEN " + conn.escape_identifier(c) + ";";
    session.query_current(sql, {}, [this, want](PgResult&& r) {
      if (!r.ok) {
        session.fail("error", "LISTEN failed: " + r.error);
        return;
      }
      listening = want;
      listening_gauge.set(static_cast<std::int64_t>(listening.size()));
      ready();
    });
  }

  void ready() {
    state = State::Ready;
    bool first = !ever_connected;
    if (!first) reconnects.inc();
    ever_connected = true;
    session.confirm();
    connected_gauge.set(1);
    heartbeat_outstanding = false;
    last_heartbeat = Clock::now();
    spdlog::info("listening on {} channel(s) at {} (backend pid {})", listening.size(),
                 describe(opts.dsn), pid);
    schedule_heartbeat();
    sync_channels();  // channels may have changed while the LISTENs were in flight
    // PostgreSQL keeps no notifications for absent listeners: whatever was sent while nobody
    // listened (before the first connection too) is gone.
    sink.on_connected(self, first, /*missed_events=*/true);
  }

  void on_notify(std::string channel, std::string payload, int backend_pid) {
    if (channel == heartbeat_channel) {
      if (payload == std::to_string(heartbeat_seq)) {
        heartbeat_outstanding = false;
        last_heartbeat = Clock::now();
        std::chrono::duration<double> rtt = last_heartbeat - heartbeat_sent_at;
        heartbeat_rtt.observe(rtt.count());
      }
      return;
    }
    Notification n;
    n.channel = std::move(channel);
    n.payload = std::move(payload);
    n.backend_pid = backend_pid;
    n.received = Clock::now();
    sink.on_event(self, std::move(n), nullptr);
  }

  void schedule_heartbeat() {
    auto gen = session.generation();
    heartbeat_timer.expires_after(opts.heartbeat_interval);
    heartbeat_timer.async_wait([this, gen](boost::system::error_code ec) {
      if (ec || gen != session.generation() || state != State::Ready) return;
      auto now = Clock::now();
      if (heartbeat_outstanding && now - heartbeat_sent_at > opts.heartbeat_timeout) {
        session.fail("heartbeat", "heartbeat NOTIFY not received within " +
                                      std::to_string(opts.heartbeat_timeout.count()) +
                                      " ms; the connection is deaf");
        return;
      }
      if (!heartbeat_outstanding) {
        heartbeat_outstanding = true;
        heartbeat_sent_at = now;
        ++heartbeat_seq;
        session.query("SELECT pg_notify($1, $2)",
                      {heartbeat_channel, std::to_string(heartbeat_seq)}, nullptr);
      }
      schedule_heartbeat();
    });
  }

  void sync_channels() {
    if (state != State::Ready) return;
    std::set<std::string> want(wanted.begin(), wanted.end());
    const auto& conn = session.connection();
    std::string sql;
    for (const auto& c : want) {
      if (!listening.contains(c)) sql += "LISTEN " + conn.escape_identifier(c) + ";";
    }
    for (const auto& c : listening) {
      if (!want.contains(c)) sql += "UNLISTEN " + conn.escape_identifier(c) + ";";
    }
    if (sql.empty()) return;
    session.query_current(sql, {}, [this, want](PgResult&& r) {
      if (!r.ok) {
        session.fail("error", "LISTEN/UNLISTEN failed: " + r.error);
        return;
      }
      listening = want;
      listening_gauge.set(static_cast<std::int64_t>(listening.size()));
      spdlog::info("now listening on {} channel(s)", listening.size());
    });
  }

  // The connection (or an attempt) failed; the session reconnects.
  void lost(const std::string& reason, const std::string& message) {
    if (state == State::Stopped) return;
    bool was_ready = state == State::Ready;
    disconnects(reason).inc();
    heartbeat_timer.cancel();
    connected_gauge.set(0);
    listening.clear();
    pid = 0;
    state = State::Connecting;
    if (was_ready) sink.on_disconnected(self, message);
  }

  void start() {
    state = State::Connecting;
    session.start();
  }

  void stop() {
    state = State::Stopped;
    heartbeat_timer.cancel();
    session.stop();
    connected_gauge.set(0);
  }

  NotifyListener& self;
  Metrics& metrics;
  PostgresConfig opts;
  EventSink& sink;
  PgSession session;
  asio::steady_timer heartbeat_timer;
  Gauge& connected_gauge;
  Counter& reconnects;
  Gauge& listening_gauge;
  Histogram& heartbeat_rtt;

  State state = State::Idle;
  bool ever_connected = false;
  int pid = 0;
  std::vector<std::string> wanted;
  std::set<std::string> listening;
  std::string heartbeat_channel;
  std::uint64_t heartbeat_seq = 0;
  bool heartbeat_outstanding = false;
  Clock::time_point heartbeat_sent_at{}, last_heartbeat{};
};

NotifyListener::NotifyListener(asio::io_context& io, Metrics& metrics, PostgresConfig options,
                               EventSink& sink)
    : impl_(std::make_unique<Impl>(*this, io, metrics, std::move(options), sink)) {}

NotifyListener::~NotifyListener() = default;

void NotifyListener::start(std::vector<std::string> channels) {
  impl_->wanted = std::move(channels);
  impl_->start();
}

void NotifyListener::set_channels(std::vector<std::string> channels) {
  impl_->wanted = std::move(channels);
  impl_->sync_channels();
}

void NotifyListener::stop() {
  impl_->stop();
}

bool NotifyListener::connected() const {
  return impl_->state == Impl::State::Ready;
}

std::chrono::steady_clock::time_point NotifyListener::last_heartbeat() const {
  return impl_->last_heartbeat;
}

bool NotifyListener::healthy() const {
  return connected() && Clock::now() - impl_->last_heartbeat <= impl_->opts.heartbeat_timeout;
}

int NotifyListener::backend_pid() const {
  return impl_->pid;
}

const std::vector<std::string>& NotifyListener::channels() const {
  return impl_->wanted;
}

}  // namespace pgfanout::pg
