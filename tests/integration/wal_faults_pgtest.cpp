// WalSource when things go wrong, against the real PostgreSQL: a second source on a slot in use
// waits and takes over when the first goes away, a lost (invalidated) slot is reported, its
// on_gap runs and it is re-created, and neither a PostgreSQL restart nor a cut network loses an
// event.
#include <cstdlib>
#include <future>

#include <gtest/gtest.h>

#include "support/TcpProxy.hpp"
#include "support/WalFixture.hpp"

namespace pgfanout::pg {
namespace {

using namespace std::chrono_literals;
using test::run_until;

struct WalFaultsTest : test::WalFixture {
  // Ids of the items_changed events received, in order.
  std::vector<int> ids() const {
    std::vector<int> out;
    for (const auto& r : received) {
      auto p = r.payload.find("\"id\": ");
      if (r.channel == "items_changed" && p != std::string::npos) {
        out.push_back(std::atoi(r.payload.c_str() + p + 6));
      }
    }
    return out;
  }
  static std::vector<int> range(int from, int to) {
    std::vector<int> v;
    for (int i = from; i <= to; ++i) v.push_back(i);
    return v;
  }
  // Inserts ids from..to, one transaction each, while the source runs.
  void insert_each(int from, int to) {
    for (int i = from; i <= to; ++i) {
      exec("INSERT INTO items VALUES (" + std::to_string(i) + ", 'x', 0)");
      io.poll();
    }
  }
};

TEST_F(WalFaultsTest, ASecondSourceOnTheSlotWaitsAndTakesOver) {
  start();
  test::CallbackSink other_sink;
  std::vector<std::string> other;
  other_sink.event = [&](Notification&& n, auto) { other.push_back(n.payload); };
  WalSource second(io, metrics, pg, wal, watch, other_sink);
  second.start({});
  run_until(
      io, [] { return false; }, 1500ms);
  EXPECT_FALSE(second.connected()) << "a slot streams to one connection at a time";
  EXPECT_NE(second.status().last_error.find("in use"), std::string::npos)
      << second.status().last_error;
  insert_each(1, 3);
  ASSERT_TRUE(wait_received(3));
  source->send_status();
  io.poll();
  source.reset();  // the active instance goes away
  ASSERT_TRUE(run_until(
      io, [&] { return second.connected(); }, 10s))
      << second.status().last_error;
  insert_each(4, 5);
  ASSERT_TRUE(run_until(
      io, [&] { return other.size() >= 2; }, 10s));
  EXPECT_NE(other[0].find("\"id\": 4"), std::string::npos) << other[0];
  EXPECT_NE(other.back().find("\"id\": 5"), std::string::npos) << other.back();
}

TEST_F(WalFaultsTest, ALostSlotRunsOnGapAndIsRecreated) {
  // With the source stopped the slot falls behind past max_slot_wal_keep_size and is invalidated.
  test::BlockingPg admin(test::test_dsn());
  admin.exec("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
  admin.exec("SELECT pg_reload_conf()");
  struct Reset {
    ~Reset() {
      test::BlockingPg a(test::test_dsn());
      a.exec("ALTER SYSTEM RESET max_slot_wal_keep_size");
      a.exec("SELECT pg_reload_conf()");
    }
  } reset;
  for (int i = 0; i < 40 && sql("SELECT wal_status FROM pg_replication_slots WHERE slot_name = '" +
                                wal.slot + "'") != "lost";
       ++i) {
    exec(
        "CREATE TABLE IF NOT EXISTS filler (x text); "
        "INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000); "
        "SELECT pg_switch_wal(); CHECKPOINT");
  }
  ASSERT_EQ(sql("SELECT wal_status FROM pg_replication_slots WHERE slot_name = '" + wal.slot + "'"),
            "lost");
  source = make_source();
  source->start({});
  ASSERT_TRUE(run_until(
      io, [&] { return !lost.empty() && source->connected(); }, 15s))
      << source->status().last_error;
  EXPECT_NE(lost[0].find("invalidated"), std::string::npos) << lost[0];
  EXPECT_EQ(source->status().slot_losses, 1u);
  EXPECT_FALSE(source->status().slot_lost);
  insert_each(1, 1);
  ASSERT_TRUE(wait_received(1)) << "events flow again from the new slot";
  EXPECT_EQ(ids(), range(1, 1));
}

TEST_F(WalFaultsTest, APostgresRestartLosesNothing) {
  start();
  insert_each(1, 50);
  std::string pgctl = test::harness_env("PGFANOUT_TEST_PGCTL");
  // The shutdown waits for the walsender, which waits for this client's reply: keep the loop
  // running meanwhile, as the daemon's does.
  auto restarted = std::async(std::launch::async, [&] {
    return std::system((pgctl + " -m fast -w restart >/dev/null 2>&1").c_str());
  });
  ASSERT_TRUE(run_until(
      io, [&] { return restarted.wait_for(0s) == std::future_status::ready; }, 60s));
  ASSERT_EQ(restarted.get(), 0);
  insert_each(51, 100);
  ASSERT_TRUE(wait_received(100, 30s)) << received.size();
  run_until(
      io, [] { return false; }, 300ms);
  // Events after the last confirmed position come again after the reconnect: at least once,
  // in order, none missing.
  auto got = ids();
  std::vector<int> unique;
  for (int id : got) {
    if (unique.empty() || id > unique.back()) unique.push_back(id);
  }
  EXPECT_EQ(unique, range(1, 100));
  EXPECT_GE(connects, 2);
}

TEST_F(WalFaultsTest, ACutNetworkLosesNothing) {
  test::TcpProxy proxy(
      test::harness_env("PGFANOUT_TEST_PGHOST"),
      static_cast<std::uint16_t>(std::stoi(test::harness_env("PGFANOUT_TEST_PGPORT"))));
  pg.dsn = db.dsn() + " host=127.0.0.1 port=" + std::to_string(proxy.port());
  start();
  insert_each(1, 20);
  ASSERT_TRUE(wait_received(20));
  proxy.cut();
  insert_each(21, 40);  // written while the daemon cannot hear
  run_until(
      io, [] { return false; }, 500ms);
  EXPECT_FALSE(source->connected());
  proxy.restore();
  ASSERT_TRUE(run_until(
      io, [&] { return ids().size() >= 40 && ids().back() == 40; }, 20s))
      << received.size();
  auto got = ids();
  std::vector<int> unique;
  for (int id : got) {
    if (unique.empty() || id > unique.back()) unique.push_back(id);
  }
  EXPECT_EQ(unique, range(1, 40));
}

}  // namespace
}  // namespace pgfanout::pg
