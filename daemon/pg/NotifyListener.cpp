#include "pg/NotifyListener.hpp"

#include <unistd.h>

#include <random>
#include <set>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "metrics/Metrics.hpp"
#include "pg/Backoff.hpp"
#include "pg/ConnInfo.hpp"
#include "pg/PgConnection.hpp"

namespace pgfanout::pg {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct NotifyListener::Impl {
  enum class State { Idle, Connecting, Setup, Ready, Stopped };

  Impl(asio::io_context& io, Metrics& m, config::PostgresConfig o, Callbacks c)
      : metrics(m),
        opts(std::move(o)),
        cb(std::move(c)),
        conn(io,
             PgConnection::Handlers{[this](std::string ch, std::string payload, int sender) {
                                      on_notify(std::move(ch), std::move(payload), sender);
                                    },
                                    [this] {
                                      if (cb.on_batch_end) cb.on_batch_end();
                                    },
                                    [this](const std::string& reason, const std::string& message) {
                                      lost(reason, message);
                                    }},
             PgConnection::kDefaultMaxQueued,
             &m.counter(kQueriesRefusedMetric, kQueriesRefusedHelp, {{"connection", "listener"}})),
        reconnect_timer(io),
        heartbeat_timer(io),
        rng(std::random_device{}()),
        connected_gauge(m.gauge("pgfanout_pg_connected", "1 while the listener is connected")),
        reconnects(m.counter("pgfanout_pg_reconnects_total",
                             "Listener connections re-established after a loss")),
        listening_gauge(m.gauge("pgfanout_pg_listening_channels", "Channels LISTENed")),
        heartbeat_rtt(m.histogram("pgfanout_pg_heartbeat_seconds",
                                  "Round trip of the listener's own heartbeat NOTIFY")) {
    heartbeat_channel =
        "pgfanout.heartbeat." + std::to_string(::getpid()) + "." + std::to_string(rng() % 1000000);
  }

  Counter& disconnects(const std::string& reason) {
    return metrics.counter("pgfanout_pg_disconnects_total",
                           "Listener connections lost or refused, by reason", {{"reason", reason}});
  }

  void connect() {
    if (state == State::Stopped) return;
    state = State::Connecting;
    ++generation;
    auto gen = generation;
    conn.connect(opts.dsn, opts.password, opts.connect_timeout,
                 [this, gen](const std::string& err) {
                   if (gen != generation) return;
                   if (!err.empty()) {
                     retry(conn.last_failure_reason(), err);
                     return;
                   }
                   setup();
                 });
  }

  void setup() {
    state = State::Setup;
    auto gen = generation;
    conn.query("SELECT pg_is_in_recovery(), pg_backend_pid()", {}, [this, gen](PgResult&& r) {
      if (gen != generation) return;
      if (!r.ok || r.rows.size() != 1) {
        retry("error", "set-up query failed: " + r.error);
        return;
      }
      pid = std::atoi(r.at(0, 1).value_or("0").c_str());
      if (r.at(0, 0) == "t") {
        std::string why = "the server at " + describe(opts.dsn) +
                          " is a hot standby (pg_is_in_recovery() is true) and cannot LISTEN; "
                          "point postgres.dsn at the primary";
        if (!ever_connected && cb.on_fatal) {
          disconnects("standby").inc();
          stop();
          cb.on_fatal(why);
          return;
        }
        retry("standby", why);
        return;
      }
      listen_all();
    });
  }

  void listen_all() {
    std::set<std::string> want(wanted.begin(), wanted.end());
    std::string sql = "LISTEN " + conn.escape_identifier(heartbeat_channel) + ";";
    for (const auto& c : want) sql += "LISTEN " + conn.escape_identifier(c) + ";";
    auto gen = generation;
    conn.query(sql, {}, [this, gen, want](PgResult&& r) {
      if (gen != generation) return;
      if (!r.ok) {
        retry("error", "LISTEN failed: " + r.error);
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
    backoff.reset();
    connected_gauge.set(1);
    heartbeat_outstanding = false;
    last_heartbeat = Clock::now();
    spdlog::info("listening on {} channel(s) at {} (backend pid {})", listening.size(),
                 describe(opts.dsn), pid);
    schedule_heartbeat();
    sync_channels();  // channels may have changed while the LISTENs were in flight
    if (cb.on_connected) cb.on_connected(first);
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
    if (!cb.on_notification) return;
    rules::Notification n;
    n.channel = std::move(channel);
    n.payload = std::move(payload);
    n.backend_pid = backend_pid;
    n.received = Clock::now();
    cb.on_notification(std::move(n));
  }

  void schedule_heartbeat() {
    auto gen = generation;
    heartbeat_timer.expires_after(opts.heartbeat_interval);
    heartbeat_timer.async_wait([this, gen](boost::system::error_code ec) {
      if (ec || gen != generation || state != State::Ready) return;
      auto now = Clock::now();
      if (heartbeat_outstanding && now - heartbeat_sent_at > opts.heartbeat_timeout) {
        conn.fail("heartbeat", "heartbeat NOTIFY not received within " +
                                   std::to_string(opts.heartbeat_timeout.count()) +
                                   " ms; the connection is deaf");
        return;
      }
      if (!heartbeat_outstanding) {
        heartbeat_outstanding = true;
        heartbeat_sent_at = now;
        ++heartbeat_seq;
        conn.query("SELECT pg_notify($1, $2)", {heartbeat_channel, std::to_string(heartbeat_seq)},
                   nullptr);
      }
      schedule_heartbeat();
    });
  }

  void sync_channels() {
    if (state != State::Ready) return;
    std::set<std::string> want(wanted.begin(), wanted.end());
    std::string sql;
    for (const auto& c : want) {
      if (!listening.contains(c)) sql += "LISTEN " + conn.escape_identifier(c) + ";";
    }
    for (const auto& c : listening) {
      if (!want.contains(c)) sql += "UNLISTEN " + conn.escape_identifier(c) + ";";
    }
    if (sql.empty()) return;
    auto gen = generation;
    conn.query(sql, {}, [this, gen, want](PgResult&& r) {
      if (gen != generation) return;
      if (!r.ok) {
        conn.fail("error", "LISTEN/UNLISTEN failed: " + r.error);
        return;
      }
      listening = want;
      listening_gauge.set(static_cast<std::int64_t>(listening.size()));
      spdlog::info("now listening on {} channel(s)", listening.size());
    });
  }

  // The open connection broke (on_lost from PgConnection).
  void lost(const std::string& reason, const std::string& message) {
    if (state == State::Stopped) return;
    bool was_ready = state == State::Ready;
    retry(reason, message);
    if (was_ready && cb.on_disconnected) cb.on_disconnected(message);
  }

  // Counts the failure, closes, and schedules the next attempt with backoff and jitter.
  void retry(const std::string& reason, const std::string& message) {
    if (state == State::Stopped) return;
    disconnects(reason).inc();
    spdlog::warn("PostgreSQL listener ({}): {}; reconnecting", describe(opts.dsn), message);
    ++generation;
    conn.close();
    heartbeat_timer.cancel();
    connected_gauge.set(0);
    listening.clear();
    pid = 0;
    state = State::Idle;
    auto delay = backoff.next();
    auto gen = generation;
    reconnect_timer.expires_after(delay);
    reconnect_timer.async_wait([this, gen](boost::system::error_code ec) {
      if (ec || gen != generation || state == State::Stopped) return;
      connect();
    });
  }

  void stop() {
    state = State::Stopped;
    ++generation;
    reconnect_timer.cancel();
    heartbeat_timer.cancel();
    conn.close();
    connected_gauge.set(0);
  }

  Metrics& metrics;
  config::PostgresConfig opts;
  Callbacks cb;
  PgConnection conn;
  asio::steady_timer reconnect_timer, heartbeat_timer;
  std::mt19937_64 rng;
  Gauge& connected_gauge;
  Counter& reconnects;
  Gauge& listening_gauge;
  Histogram& heartbeat_rtt;

  State state = State::Idle;
  std::uint64_t generation = 0;
  Backoff backoff{opts.reconnect_min, opts.reconnect_max};
  bool ever_connected = false;
  int pid = 0;
  std::vector<std::string> wanted;
  std::set<std::string> listening;
  std::string heartbeat_channel;
  std::uint64_t heartbeat_seq = 0;
  bool heartbeat_outstanding = false;
  Clock::time_point heartbeat_sent_at{}, last_heartbeat{};
};

NotifyListener::NotifyListener(asio::io_context& io, Metrics& metrics,
                               config::PostgresConfig options, Callbacks callbacks)
    : impl_(std::make_unique<Impl>(io, metrics, std::move(options), std::move(callbacks))) {}

NotifyListener::~NotifyListener() = default;

void NotifyListener::start(std::vector<std::string> channels) {
  impl_->wanted = std::move(channels);
  impl_->state = Impl::State::Idle;
  impl_->connect();
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
