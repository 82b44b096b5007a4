// NotifyListener: one libpq connection that LISTENs to the rules' channels, on the Asio loop.
//
// The connection is made with PQconnectStartParams/PQconnectPoll and then used in non-blocking
// mode; its socket sits in a posix::stream_descriptor and every wake-up drains PQconsumeInput and
// PQnotifies, so the loop never blocks on PostgreSQL. Channel names go through
// PQescapeIdentifier (they are case-sensitive, as pg_notify sends them).
//
// Liveness: every heartbeat_interval the listener NOTIFYs itself on a private channel; if that
// heartbeat is not back within heartbeat_timeout the connection is treated as broken (a "deaf"
// listener, e.g. behind a network path that silently drops packets). On any failure it closes the
// connection and reconnects with exponential backoff (reconnect_min doubling to reconnect_max,
// with jitter), LISTENs again and then calls on_connected so the rules' on_reconnect actions run:
// PostgreSQL drops notifications sent while nobody listened.
//
// It is the NOTIFY EventSource: notifications go to its EventSink without a completion (NOTIFY has
// no acknowledgement), and every (re)connection is reported with missed_events set. A server in
// recovery (hot standby) cannot LISTEN: on the first connection that is fatal (on_fatal), later it
// is treated as a failed attempt. The connection is a PgSession. All methods and callbacks run on
// the io_context's thread. The object must outlive the io_context's run().
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "pg/EventSource.hpp"
#include "pg/PgConfig.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout {
class Metrics;
}

namespace pgfanout::pg {

class NotifyListener final : public EventSource {
 public:
  NotifyListener(boost::asio::io_context& io, Metrics& metrics, PostgresConfig options,
                 EventSink& sink);
  ~NotifyListener() override;
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;

  std::string_view name() const override { return "notify"; }
  void start(std::vector<std::string> channels) override;
  // LISTENs / UNLISTENs only the difference to the current channels.
  void set_channels(std::vector<std::string> channels) override;
  void stop() override;

  // LISTEN is established.
  bool connected() const override;
  // When the last heartbeat came back (steady clock); epoch when none has yet.
  std::chrono::steady_clock::time_point last_heartbeat() const;
  // Whether the listener is connected and its heartbeat is no older than heartbeat_timeout.
  bool healthy() const;
  int backend_pid() const;
  const std::vector<std::string>& channels() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgfanout::pg
