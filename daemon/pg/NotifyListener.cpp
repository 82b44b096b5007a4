#include "pg/NotifyListener.hpp"

#include <libpq-fe.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <random>
#include <set>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "metrics/Metrics.hpp"
#include "pg/ConnInfo.hpp"

namespace pgfanout::pg {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

struct NotifyListener::Impl {
  enum class State { Idle, Connecting, Setup, Ready, Stopped };

  // One query on the listener's connection; commands run one at a time, in order.
  struct Command {
    std::string sql;
    std::vector<std::string> params;
    std::function<void(PGresult*)> on_row_result;  // called for each PGRES_TUPLES_OK result
    std::function<void()> on_done;                 // all results were OK
  };

  Impl(asio::io_context& io_, Metrics& m, config::PostgresConfig o, Callbacks c)
      : io(io_),
        metrics(m),
        opts(std::move(o)),
        cb(std::move(c)),
        sock(io_),
        reconnect_timer(io_),
        connect_timer(io_),
        heartbeat_timer(io_),
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

  ~Impl() { close(); }

  Counter& disconnects(const char* reason) {
    return metrics.counter("pgfanout_pg_disconnects_total",
                           "Listener connections lost or refused, by reason", {{"reason", reason}});
  }

  // ---- connection set-up
  void connect() {
    if (state == State::Stopped) return;
    state = State::Connecting;
    ++generation;
    ConnParams params(opts.dsn, opts.password, opts.connect_timeout);
    conn = PQconnectStartParams(params.keywords(), params.values(), 1);
    if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) {
      fail("error", conn != nullptr ? trim(PQerrorMessage(conn)) : "out of memory");
      return;
    }
    if (!assign_socket()) return;
    auto gen = generation;
    connect_timer.expires_after(opts.connect_timeout);
    connect_timer.async_wait([this, gen](boost::system::error_code ec) {
      if (ec || gen != generation || state != State::Connecting) return;
      fail("connect_timeout", "connection attempt timed out after " +
                                  std::to_string(opts.connect_timeout.count()) + " ms");
    });
    wait_connect(PGRES_POLLING_WRITING);
  }

  bool assign_socket() {
    int fd = PQsocket(conn);
    if (fd < 0) {
      fail("error", "libpq has no socket: " + trim(PQerrorMessage(conn)));
      return false;
    }
    if (sock.is_open() && sock.native_handle() == fd) return true;
    if (sock.is_open()) {
      boost::system::error_code ignored;
      sock.cancel(ignored);
      sock.release();
    }
    boost::system::error_code ec;
    sock.assign(fd, ec);
    if (ec) {
      fail("error", "cannot watch the libpq socket: " + ec.message());
      return false;
    }
    return true;
  }

  void wait_connect(PostgresPollingStatusType want) {
    auto gen = generation;
    auto dir = want == PGRES_POLLING_READING ? asio::posix::stream_descriptor::wait_read
                                             : asio::posix::stream_descriptor::wait_write;
    sock.async_wait(dir, [this, gen](boost::system::error_code ec) {
      if (gen != generation || state != State::Connecting) return;
      if (ec) {
        fail("error", "socket error while connecting: " + ec.message());
        return;
      }
      poll_connect();
    });
  }

  void poll_connect() {
    PostgresPollingStatusType st = PQconnectPoll(conn);
    switch (st) {
      case PGRES_POLLING_READING:
      case PGRES_POLLING_WRITING:
        // libpq may move to another socket (next host or address): watch the current one.
        if (!assign_socket()) return;
        wait_connect(st);
        return;
      case PGRES_POLLING_OK:
        if (!assign_socket()) return;
        connect_timer.cancel();
        on_socket_connected();
        return;
      default:
        fail("error", trim(PQerrorMessage(conn)));
        return;
    }
  }

  void on_socket_connected() {
    state = State::Setup;
    if (PQsetnonblocking(conn, 1) != 0) {
      fail("error", "cannot set the connection non-blocking: " + trim(PQerrorMessage(conn)));
      return;
    }
    start_read();
    auto gen = generation;
    enqueue(Command{"SELECT pg_is_in_recovery(), pg_backend_pid()",
                    {},
                    [this, gen](PGresult* r) {
                      if (gen != generation || PQntuples(r) != 1) return;
                      in_recovery = std::string(PQgetvalue(r, 0, 0)) == "t";
                      pid = std::atoi(PQgetvalue(r, 0, 1));
                    },
                    [this, gen] {
                      if (gen != generation) return;
                      if (in_recovery) {
                        std::string why =
                            "the server at " + describe(opts.dsn) +
                            " is a hot standby (pg_is_in_recovery() is true) and cannot LISTEN; "
                            "point postgres.dsn at the primary";
                        if (!ever_connected && cb.on_fatal) {
                          disconnects("standby").inc();
                          close();
                          state = State::Stopped;
                          cb.on_fatal(why);
                          return;
                        }
                        fail("standby", why);
                        return;
                      }
                      listen_all();
                    }});
  }

  void listen_all() {
    std::vector<std::string> all = wanted;
    all.push_back(heartbeat_channel);
    std::string sql;
    for (const auto& c : all) sql += "LISTEN " + escape(c) + ";";
    auto gen = generation;
    enqueue(Command{sql, {}, nullptr, [this, gen, all] {
                      if (gen != generation) return;
                      listening = std::set<std::string>(all.begin(), all.end());
                      listening.erase(heartbeat_channel);
                      listening_gauge.set(static_cast<std::int64_t>(listening.size()));
                      on_ready();
                    }});
  }

  void on_ready() {
    state = State::Ready;
    bool first = !ever_connected;
    if (!first) reconnects.inc();
    ever_connected = true;
    attempts = 0;
    connected_gauge.set(1);
    heartbeat_outstanding = false;
    last_heartbeat = Clock::now();
    spdlog::info("listening on {} channel(s) at {} (backend pid {})", listening.size(),
                 describe(opts.dsn), pid);
    schedule_heartbeat();
    // Channels may have changed while the LISTENs were in flight.
    sync_channels();
    if (cb.on_connected) cb.on_connected(first);
  }

  std::string escape(const std::string& name) {
    char* e = PQescapeIdentifier(conn, name.c_str(), name.size());
    if (e == nullptr) return quote_ident(name);
    std::string out(e);
    PQfreemem(e);
    return out;
  }

  // ---- commands and I/O
  void enqueue(Command c) {
    commands.push_back(std::move(c));
    send_next();
  }

  void send_next() {
    if (command_in_flight || commands.empty() || conn == nullptr) return;
    const Command& c = commands.front();
    int ok;
    if (c.params.empty()) {
      ok = PQsendQuery(conn, c.sql.c_str());
    } else {
      std::vector<const char*> values;
      for (const auto& p : c.params) values.push_back(p.c_str());
      ok = PQsendQueryParams(conn, c.sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
    }
    if (!ok) {
      fail("error", "cannot send query: " + trim(PQerrorMessage(conn)));
      return;
    }
    command_in_flight = true;
    command_failed.clear();
    flush_output();
  }

  void flush_output() {
    if (conn == nullptr) return;
    int r = PQflush(conn);
    if (r < 0) {
      fail("error", "cannot write to the server: " + trim(PQerrorMessage(conn)));
      return;
    }
    if (r == 1 && !writing) {
      writing = true;
      auto gen = generation;
      sock.async_wait(asio::posix::stream_descriptor::wait_write,
                      [this, gen](boost::system::error_code ec) {
                        if (gen != generation) return;
                        writing = false;
                        if (ec) {
                          fail("error", "socket error: " + ec.message());
                          return;
                        }
                        flush_output();
                      });
    }
  }

  void start_read() {
    if (reading) return;
    reading = true;
    auto gen = generation;
    sock.async_wait(asio::posix::stream_descriptor::wait_read,
                    [this, gen](boost::system::error_code ec) {
                      if (gen != generation) return;
                      reading = false;
                      if (ec) {
                        fail("error", "socket error: " + ec.message());
                        return;
                      }
                      on_readable();
                      if (gen == generation) start_read();
                    });
  }

  void on_readable() {
    if (PQconsumeInput(conn) == 0) {
      fail("error", trim(PQerrorMessage(conn)));
      return;
    }
    auto gen = generation;
    while (command_in_flight && PQisBusy(conn) == 0) {
      PGresult* r = PQgetResult(conn);
      if (r == nullptr) {
        Command done = std::move(commands.front());
        commands.pop_front();
        command_in_flight = false;
        if (!command_failed.empty()) {
          fail("error", "query failed: " + command_failed);
          return;
        }
        if (done.on_done) done.on_done();
        if (gen != generation) return;
        send_next();
        continue;
      }
      auto st = PQresultStatus(r);
      if (st == PGRES_TUPLES_OK) {
        if (commands.front().on_row_result) commands.front().on_row_result(r);
      } else if (st != PGRES_COMMAND_OK) {
        command_failed = trim(PQresultErrorMessage(r));
      }
      PQclear(r);
      if (gen != generation) return;
    }
    drain_notifications();
  }

  void drain_notifications() {
    auto gen = generation;
    bool any = false;
    while (PGnotify* n = PQnotifies(conn)) {
      if (heartbeat_channel == n->relname) {
        on_heartbeat(n->extra);
      } else if (cb.on_notification) {
        rules::Notification note;
        note.channel = n->relname;
        note.payload = n->extra;
        note.backend_pid = n->be_pid;
        note.received = Clock::now();
        any = true;
        cb.on_notification(std::move(note));
      }
      PQfreemem(n);
      if (gen != generation) return;
    }
    if (any && cb.on_batch_end) cb.on_batch_end();
  }

  // ---- heartbeat
  void schedule_heartbeat() {
    auto gen = generation;
    heartbeat_timer.expires_after(opts.heartbeat_interval);
    heartbeat_timer.async_wait([this, gen](boost::system::error_code ec) {
      if (ec || gen != generation || state != State::Ready) return;
      auto now = Clock::now();
      if (heartbeat_outstanding && now - heartbeat_sent_at > opts.heartbeat_timeout) {
        fail("heartbeat", "heartbeat NOTIFY not received within " +
                              std::to_string(opts.heartbeat_timeout.count()) +
                              " ms; the connection is deaf");
        return;
      }
      if (!heartbeat_outstanding) {
        heartbeat_outstanding = true;
        heartbeat_sent_at = now;
        ++heartbeat_seq;
        enqueue(Command{"SELECT pg_notify($1, $2)",
                        {heartbeat_channel, std::to_string(heartbeat_seq)},
                        nullptr,
                        nullptr});
      }
      schedule_heartbeat();
    });
  }

  void on_heartbeat(const char* payload) {
    if (std::to_string(heartbeat_seq) != payload) return;
    heartbeat_outstanding = false;
    last_heartbeat = Clock::now();
    std::chrono::duration<double> rtt = last_heartbeat - heartbeat_sent_at;
    heartbeat_rtt.observe(rtt.count());
  }

  // ---- channels
  void sync_channels() {
    if (state != State::Ready) return;
    std::set<std::string> want(wanted.begin(), wanted.end());
    std::string sql;
    for (const auto& c : want) {
      if (!listening.contains(c)) sql += "LISTEN " + escape(c) + ";";
    }
    for (const auto& c : listening) {
      if (!want.contains(c)) sql += "UNLISTEN " + escape(c) + ";";
    }
    if (sql.empty()) return;
    auto gen = generation;
    enqueue(Command{sql, {}, nullptr, [this, gen, want] {
                      if (gen != generation) return;
                      listening = want;
                      listening_gauge.set(static_cast<std::int64_t>(listening.size()));
                      spdlog::info("now listening on {} channel(s)", listening.size());
                    }});
  }

  // ---- failure and reconnect
  void fail(const char* reason, const std::string& why) {
    if (state == State::Stopped) return;
    bool was_ready = state == State::Ready;
    disconnects(reason).inc();
    spdlog::warn("PostgreSQL listener ({}): {}; reconnecting", describe(opts.dsn), why);
    close();
    state = State::Idle;
    if (was_ready && cb.on_disconnected) cb.on_disconnected(why);
    schedule_reconnect();
  }

  void schedule_reconnect() {
    if (state == State::Stopped) return;
    double base =
        static_cast<double>(opts.reconnect_min.count()) * std::pow(2.0, std::min(attempts, 30));
    base = std::min(base, static_cast<double>(opts.reconnect_max.count()));
    // Equal jitter: half fixed, half random, so many daemons do not reconnect in lockstep.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    auto delay = std::chrono::milliseconds(static_cast<long long>(base * jitter(rng)));
    ++attempts;
    auto gen = generation;
    reconnect_timer.expires_after(delay);
    reconnect_timer.async_wait([this, gen](boost::system::error_code ec) {
      if (ec || gen != generation || state == State::Stopped) return;
      connect();
    });
  }

  void close() {
    ++generation;
    connected_gauge.set(0);
    connect_timer.cancel();
    heartbeat_timer.cancel();
    if (sock.is_open()) {
      boost::system::error_code ignored;
      sock.cancel(ignored);
      sock.release();  // libpq owns the descriptor: release it before PQfinish closes it
    }
    if (conn != nullptr) {
      PQfinish(conn);
      conn = nullptr;
    }
    reading = writing = false;
    commands.clear();
    command_in_flight = false;
    listening.clear();
    pid = 0;
    in_recovery = false;
  }

  asio::io_context& io;
  Metrics& metrics;
  config::PostgresConfig opts;
  Callbacks cb;
  asio::posix::stream_descriptor sock;
  asio::steady_timer reconnect_timer, connect_timer, heartbeat_timer;
  std::mt19937_64 rng;
  Gauge& connected_gauge;
  Counter& reconnects;
  Gauge& listening_gauge;
  Histogram& heartbeat_rtt;

  PGconn* conn = nullptr;
  State state = State::Idle;
  std::uint64_t generation = 0;
  int attempts = 0;
  bool ever_connected = false;
  bool reading = false, writing = false;
  bool in_recovery = false;
  int pid = 0;
  std::deque<Command> commands;
  bool command_in_flight = false;
  std::string command_failed;
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
  impl_->state = Impl::State::Stopped;
  impl_->reconnect_timer.cancel();
  impl_->close();
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
