// The WAL source in the daemon, under faults: kill -9 while evictions are in flight loses none of
// them (the slot was not confirmed past them, the next daemon streams them again), and two
// instances, one slot each, both push every event to their own subscribers; one is killed, the
// other goes on, and the killed one catches up on what it missed when it comes back.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "faults/FaultSupport.hpp"
#include "support/TcpProxy.hpp"
#include "support/WsClient.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

std::string wal_config(const ScratchDatabase& db, const std::string& slot,
                       const std::string& redis_url, const std::string& key_prefix) {
  return "postgres: {dsn: \"" + db.dsn() + "\"}\nhttp: {listen: 127.0.0.1:0}\nredis: {url: \"" +
         redis_url + "\"}\nwal: {slot: " + slot +
         ", status_interval: 200ms}\n"
         "watch:\n  - table: public.items\n    via: wal\n"
         "topics:\n  - pattern: items\n    allow: [subscribe]\n    anonymous: true\n"
         "rules:\n  - name: items\n    channel: items_changed\n    actions:\n"
         "      - evict: [\"" +
         key_prefix + "{id}\"]\n      - push: {topic: items}\n";
}

TEST(FaultWal, KillNineWhileEvictionsAreInFlightLosesNone) {
  ScratchDatabase db("fwal");
  BlockingPg(db.dsn()).exec(
      "CREATE TABLE items (id int PRIMARY KEY, v text);"
      "INSERT INTO items SELECT g, 'a' FROM generate_series(1, 200) g");
  const std::string prefix = "fwal:" + std::to_string(::getpid()) + ":item:";
  RedisTestClient redis(harness_redis_port());
  for (int i = 1; i <= 200; ++i) redis.cmd({"SET", prefix + std::to_string(i), "cached"});
  // Redis behind a proxy that can hold the daemon's commands.
  TcpProxy proxy("127.0.0.1", static_cast<std::uint16_t>(harness_redis_port()));
  const std::string slot = "fwal_" + std::to_string(::getpid());
  std::string config = write_temp_file(
      "pgfanout.yaml",
      wal_config(db, slot, "redis://127.0.0.1:" + std::to_string(proxy.port()) + "/0", prefix));
  auto first = install_and_run(config);
  ASSERT_GT(first.port, 0);
  ASSERT_TRUE(first.process->wait_for_output("WAL source: streaming")) << first.process->output();
  proxy.freeze();  // evictions are sent but never answered
  BlockingPg(db.dsn()).exec("UPDATE items SET v = 'b'");
  const std::string committed =
      BlockingPg(db.dsn()).value("SELECT pg_current_wal_insert_lsn()").value_or("");
  ASSERT_TRUE(wait_until([&] {
    return daemon_metric(first.port, "pgfanout_wal_events_total") >= 200;
  })) << first.process->output();
  std::this_thread::sleep_for(600ms);  // status updates go out meanwhile
  // Confirmed positions may move up to the transaction's commit, never past it.
  auto before_commit = [&] {
    return BlockingPg(db.dsn())
        .value("SELECT confirmed_flush_lsn < '" + committed +
               "' FROM pg_replication_slots "
               "WHERE slot_name = '" +
               slot + "'")
        .value_or("");
  };
  EXPECT_EQ(before_commit(), "t") << "the slot moved past evictions not yet done";
  first.process->signal(SIGKILL);
  EXPECT_EQ(first.process->wait(), 128 + SIGKILL);
  EXPECT_EQ(redis.cmd({"EXISTS", prefix + "1"}), "1") << "nothing was evicted yet";
  proxy.restore();

  DaemonProcess second({"run", "--config", config});
  ASSERT_TRUE(second.wait_for_output("WAL source: streaming")) << second.output();
  EXPECT_TRUE(wait_until(
      [&] {
        for (int i = 1; i <= 200; ++i) {
          if (redis.cmd({"EXISTS", prefix + std::to_string(i)}) != "0") return false;
        }
        return true;
      },
      20s))
      << "some keys were never evicted\n"
      << second.output();
  EXPECT_TRUE(wait_until([&] { return before_commit() == "f"; }))
      << "the slot never moved past the transaction once its evictions were done";
}

TEST(FaultWal, TwoInstancesEachPushEveryEventAndTheKilledOneCatchesUp) {
  ScratchDatabase db("fwal2");
  BlockingPg(db.dsn()).exec("CREATE TABLE items (id int PRIMARY KEY, v text)");
  const std::string tag = std::to_string(::getpid());
  const std::string redis_url = harness_env("PGFANOUT_TEST_REDIS_URL");
  std::string config_a =
      write_temp_file("a.yaml", wal_config(db, "fwal_a_" + tag, redis_url, "fwal2:" + tag + ":a:"));
  std::string config_b =
      write_temp_file("b.yaml", wal_config(db, "fwal_b_" + tag, redis_url, "fwal2:" + tag + ":b:"));
  auto a = install_and_run(config_a);
  auto b = install_and_run(config_b);
  ASSERT_GT(a.port, 0);
  ASSERT_GT(b.port, 0);
  ASSERT_TRUE(a.process->wait_for_output("WAL source: streaming")) << a.process->output();
  ASSERT_TRUE(b.process->wait_for_output("WAL source: streaming")) << b.process->output();
  WsClient ws_a(a.port), ws_b(b.port);
  ASSERT_TRUE(ws_a.open() && ws_b.open());
  ASSERT_TRUE(ws_a.request(R"({"type":"subscribe","topic":"items"})").has_value());
  ASSERT_TRUE(ws_b.request(R"({"type":"subscribe","topic":"items"})").has_value());

  for (int i = 1; i <= 20; ++i) {
    BlockingPg(db.dsn()).exec("INSERT INTO items VALUES (" + std::to_string(i) + ", 'x')");
  }
  for (auto* ws : {&ws_a, &ws_b}) {
    for (int i = 1; i <= 20; ++i) {
      ASSERT_TRUE(ws->receive_containing("\"id\":" + std::to_string(i) + "}", 10s))
          << "event " << i << " missing; got: " << (ws->skipped.empty() ? "" : ws->skipped.front());
    }
  }

  // A dies; B goes on alone; A's keys for what happens meanwhile wait for A.
  a.process->signal(SIGKILL);
  a.process->wait();
  RedisTestClient redis(harness_redis_port());
  const std::string a_key = "fwal2:" + tag + ":a:";
  for (int i = 21; i <= 40; ++i) redis.cmd({"SET", a_key + std::to_string(i), "cached"});
  for (int i = 21; i <= 40; ++i) {
    BlockingPg(db.dsn()).exec("INSERT INTO items VALUES (" + std::to_string(i) + ", 'x')");
  }
  for (int i = 21; i <= 40; ++i) {
    ASSERT_TRUE(ws_b.receive_containing("\"id\":" + std::to_string(i) + "}", 10s))
        << "B missed event " << i;
  }
  EXPECT_EQ(redis.cmd({"EXISTS", a_key + "21"}), "1");

  // A comes back and streams what it missed from its own slot.
  DaemonProcess again({"run", "--config", config_a});
  ASSERT_TRUE(again.wait_for_output("WAL source: streaming")) << again.output();
  EXPECT_TRUE(wait_until(
      [&] {
        for (int i = 21; i <= 40; ++i) {
          if (redis.cmd({"EXISTS", a_key + std::to_string(i)}) != "0") return false;
        }
        return true;
      },
      20s))
      << again.output();
}

}  // namespace
}  // namespace pgfanout::test
