// WalFixture: a scratch database with a table watched `via: wal`, its publication and slot
// (installed as `pgfanout install` does), and a WalSource on it whose events are collected, for
// the WAL source's tests. Completions are kept until the test settles them (or settled at once
// with settle_at_once).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "metrics/Metrics.hpp"
#include "pg/Installer.hpp"
#include "pg/WalSource.hpp"
#include "support/CallbackSink.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::test {

struct WalFixture : ::testing::Test {
  struct Received {
    std::string channel;
    std::string payload;
    std::uint64_t lsn = 0;
  };

  void SetUp() override {
    pg.dsn = db.dsn();
    pg.reconnect_min = std::chrono::milliseconds(50);
    pg.reconnect_max = std::chrono::milliseconds(500);
    pg.connect_timeout = std::chrono::seconds(2);
    wal.enabled = true;
    wal.slot = "t_" + db.name();
    wal.status_interval = std::chrono::milliseconds(200);
    wal.retry_delay = std::chrono::milliseconds(100);
    wal.monitor_interval = std::chrono::milliseconds(200);
    BlockingPg(db.dsn()).exec("CREATE TABLE items (id int PRIMARY KEY, name text, n int)");
    pg::WatchSpec w;
    w.table = "public.items";
    w.ops = {"INSERT", "UPDATE", "DELETE"};
    w.via = "wal";
    watch = {w};
    auto r = pg::install(pg, watch, pg::WalPlan{&wal, {}});
    ASSERT_TRUE(r.ok) << r.error;
    sink.event = [this](pg::Notification&& n, std::shared_ptr<pg::EventCompletion> c) {
      received.push_back({n.channel, n.payload, n.lsn.value_or(0)});
      if (c && !settle_at_once) held.push_back(std::move(c));
    };
    sink.connected = [this](bool, bool) { ++connects; };
    sink.events_lost = [this](const std::string& why) { lost.push_back(why); };
  }

  std::unique_ptr<pg::WalSource> make_source() {
    return std::make_unique<pg::WalSource>(io, metrics, pg, wal, watch, sink);
  }

  void start() {
    source = make_source();
    source->start({});
    ASSERT_TRUE(run_until(
        io, [&] { return source->connected(); }, std::chrono::seconds(15)))
        << source->status().last_error;
  }

  bool wait_received(std::size_t n, std::chrono::milliseconds t = std::chrono::seconds(15)) {
    return run_until(
        io, [&] { return received.size() >= n; }, t);
  }

  std::string sql(const std::string& q) { return BlockingPg(db.dsn()).value(q).value_or(""); }
  void exec(const std::string& q) { BlockingPg(db.dsn()).exec(q); }

  // The slot's confirmed_flush_lsn as the server has it.
  std::string server_confirmed() {
    return sql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" +
               wal.slot + "'");
  }

  void settle_all() {
    held.clear();
    io.poll();
  }

  // The first `settled` held completions settle and the position is sent; then the source goes
  // away with the rest unsettled (as a killed daemon would), and a new one starts that settles
  // everything at once.
  void die_and_restart(std::size_t settled) {
    for (std::size_t i = 0; i < settled && !held.empty(); ++i) held.pop_front();
    io.poll();
    source->send_status();
    io.poll();
    source.reset();
    held.clear();
    received.clear();
    settle_at_once = true;
    start();
  }

  ScratchDatabase db{"wal"};
  pg::PostgresConfig pg;
  pg::WalConfig wal;
  std::vector<pg::WatchSpec> watch;
  boost::asio::io_context io;
  Metrics metrics;
  CallbackSink sink;
  std::unique_ptr<pg::WalSource> source;
  std::vector<Received> received;
  std::deque<std::shared_ptr<pg::EventCompletion>> held;
  std::vector<std::string> lost;
  int connects = 0;
  bool settle_at_once = true;
};

}  // namespace pgfanout::test
