// WalSource: the logical-replication EventSource (docs/wal.md). Row changes of the tables watched
// `via: wal` and the app events of pgfanout.emit() come from a pgoutput slot instead of NOTIFY, so
// the writers' commits take no cluster-wide lock.
//
// Two connections, each a PgSession: the stream (replication=database) runs START_REPLICATION on
// wal.slot and wal.publication and hands each CopyData message to the WalDecoder; the monitor (an
// ordinary connection) answers what the decoder needs from the catalog (types, table keys, the
// current xid8), checks the slot every wal.monitor_interval (metrics: retained WAL, lag, status)
// and re-creates a lost slot.
//
// At least once, in order: every event of a transaction carries an EventCompletion; the position
// confirmed to the server (the standby status update's flush LSN) moves past a transaction only
// when the completions of all its events have settled, every earlier transaction's too, each with
// every action successful. A failed action makes the stream start again from the confirmed
// position after wal.retry_delay (the transaction is delivered again); a crash does the same on
// the next start. Reading pauses while wal.max_pending events wait for their actions, so a
// 100,000-row transaction flows through in bounded memory. Status updates go out on their own
// timer (every second when the position moved, at least every wal.status_interval, and when the
// server asks), which no action can delay: they are sent from the loop, not behind the actions.
//
// A slot is streamed by one connection at a time: a second instance on the same slot gets SQLSTATE
// 55006 and retries with backoff, taking over when the first one goes away. docs/wal.md explains
// the one-slot-per-instance layout that lets every instance see every event.
//
// All calls and callbacks on the io_context's thread; the object must outlive the io_context's
// run() (completions held by executors after that reach it through a weak reference).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pg/EventSource.hpp"
#include "pg/PgConfig.hpp"
#include "pg/WalConfig.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout {
class Metrics;
}

namespace pgfanout::pg {

class WalSource final : public EventSource {
 public:
  struct Status {
    bool streaming = false;
    bool slot_lost = false;  // seen lost (or missing) and not yet re-created
    std::uint64_t slot_losses = 0;
    std::string slot_status;  // pg_replication_slots.wal_status, "missing", or "" (not read yet)
    std::int64_t retained_bytes = -1;  // WAL kept for the slot (-1: not read yet)
    std::int64_t lag_bytes = -1;       // current WAL position minus the confirmed one
    std::uint64_t confirmed = 0;       // the position confirmed to the server
    std::string last_error;

    // For /healthz: streaming with the slot in place.
    bool healthy() const { return streaming && !slot_lost; }
    std::string detail() const;
  };

  WalSource(boost::asio::io_context& io, Metrics& metrics, PostgresConfig pg, WalConfig wal,
            std::vector<WatchSpec> watch, EventSink& sink);
  ~WalSource() override;
  WalSource(const WalSource&) = delete;
  WalSource& operator=(const WalSource&) = delete;

  std::string_view name() const override { return "wal"; }
  // Streams whatever the publication and pgfanout.emit() carry; `channels` are not needed (the
  // router drops events no rule wants).
  void start(std::vector<std::string> channels) override;
  void set_channels(std::vector<std::string> channels) override;
  void stop() override;
  bool connected() const override;

  Status status() const;
  // Sends the confirmed position to the server now (tests, shutdown).
  void send_status();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace pgfanout::pg
