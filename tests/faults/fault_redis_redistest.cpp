// Fault scenario 3, Redis misbehaves while a cache-aside load runs: it is stopped for a while and
// restarted, it answers slowly (its path frozen for less than command_timeout), it is killed
// with evictions queued. No eviction may be lost, or the rule's on_gap must have run (a marker
// key under the flushed pattern is gone); no cached value may differ from the database.
#include <signal.h>
#include <unistd.h>

#include <functional>

#include <gtest/gtest.h>

#include "faults/FaultSupport.hpp"
#include "support/TcpProxy.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

constexpr int kRows = 20;

// The daemon reaches the own Redis through `proxy`; the readers go to it directly.
// The fault sets the marker key (fault_marker) once Redis holds data that should survive it.
std::string fault_marker(const std::string& name) {
  return "fredis:" + name + ":user:marker";
}

void set_marker(OwnRedisServer& own, const std::string& name) {
  RedisTestClient(own.port()).set(fault_marker(name));
}

void run_redis_fault(const std::string& name,
                     const std::function<void(OwnRedisServer&, TcpProxy&)>& fault,
                     int queue_limit = 100000) {
  ScratchDatabase db("fredis");
  OwnRedisServer own;
  TcpProxy proxy("127.0.0.1", static_cast<std::uint16_t>(own.port()));
  std::string prefix = "fredis:" + name + ":";
  {
    BlockingPg s(db.dsn());
    s.exec(CacheLoad::table_sql(kRows));
  }
  std::string config = write_temp_file(
      "pgfanout.yaml",
      "postgres: {dsn: \"" + db.dsn() +
          "\"}\nhttp: {listen: 127.0.0.1:0}\nredis:\n  url: redis://127.0.0.1:" +
          std::to_string(proxy.port()) +
          "/0\n  reconnect_min: 20ms\n  reconnect_max: 200ms\n  command_timeout: 3s\n"
          "  queue_limit: " +
          std::to_string(queue_limit) +
          "\n"
          "watch:\n  - table: public.users\n    channel: users_changed\n"
          "rules:\n  - name: users\n    channel: users_changed\n    actions:\n"
          "      - evict: [\"" +
          prefix +
          "user:{id}\"]\n        again_after: 200ms\n    on_gap:\n"
          "      - evict_pattern: \"" +
          prefix + "user:*\"\n");
  auto running = install_and_run(config);
  ASSERT_GT(running.port, 0);
  DaemonProcess& daemon = *running.process;
  const int port = running.port;

  CacheLoad load(db.dsn(), own.port(), prefix, kRows);
  load.start(/*readers=*/3, /*writers=*/2);
  std::this_thread::sleep_for(long_tests() ? 10s : 1500ms);
  set_marker(own, name);  // on_gap deletes it; a fault that empties Redis sets it again
  fault(own, proxy);
  auto fault_over = std::chrono::steady_clock::now();
  RedisTestClient redis(own.port());
  EXPECT_TRUE(wait_until(
      [&] { return daemon_metric(port, "pgfanout_redis_connected{target=\"default\"}") == 1; },
      30s))
      << daemon.output();
  auto recovered = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(long_tests() ? 10s : 1500ms);
  load.stop();

  Figures f;
  f.scenario = "redis_" + name;
  f.written = load.written();
  const std::string series = "pgfanout_actions_total{rule=\"users\",kind=\"evict\"}";
  // Every write's eviction completed or failed (dropped from a full queue).
  const std::string failed = "pgfanout_actions_failed_total{rule=\"users\",kind=\"evict\"}";
  wait_until(
      [&] {
        return daemon_metric(port, series) + std::max(0.0, daemon_metric(port, failed)) >=
               static_cast<double>(f.written);
      },
      20s);
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(wait_until(
      [&] { return daemon_metric(port, "pgfanout_redis_queued{target=\"default\"}") == 0; }));
  f.acted = static_cast<long long>(daemon_metric(port, series));
  f.lost = std::max(0LL, f.written - f.acted);
  f.stale = load.stale();
  f.recover_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(recovered - fault_over).count();
  double gaps = daemon_metric(port, "pgfanout_redis_gaps_total{rule=\"users\"}");
  f.extra["gaps"] = static_cast<long long>(gaps < 0 ? 0 : gaps);
  f.extra["failed"] = static_cast<long long>(std::max(0.0, daemon_metric(port, failed)));
  f.extra["on_gap_flushed"] = redis.exists(fault_marker(name)) ? 0 : 1;
  f.report();
  EXPECT_TRUE(f.lost == 0 || (f.extra["gaps"] > 0 && f.extra["on_gap_flushed"] == 1))
      << daemon.output();
  EXPECT_EQ(f.stale, 0);
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.output();
}

TEST(FaultRedis, StoppedForAWhileAndRestarted) {
  run_redis_fault("stopped", [](OwnRedisServer& own, TcpProxy& proxy) {
    proxy.cut();
    own.stop();
    std::this_thread::sleep_for(long_tests() ? 10s : 3s);
    own.start();
    set_marker(own, "stopped");
    proxy.restore();
  });
}

TEST(FaultRedis, AnsweringSlowly) {
  run_redis_fault("slow", [](OwnRedisServer&, TcpProxy& proxy) {
    for (int i = 0; i < (long_tests() ? 10 : 3); ++i) {
      proxy.freeze();
      std::this_thread::sleep_for(1500ms);  // below command_timeout (3s)
      proxy.restore();
      std::this_thread::sleep_for(300ms);
    }
  });
}

TEST(FaultRedis, KilledWithEvictionsQueued) {
  run_redis_fault("killed_with_queue", [](OwnRedisServer& own, TcpProxy& proxy) {
    proxy.freeze();  // evictions pile up in flight and queued
    std::this_thread::sleep_for(1s);
    own.stop();
    proxy.cut();
    own.start();  // empty, and readers fill it again before the daemon reconnects
    set_marker(own, "killed_with_queue");
    std::this_thread::sleep_for(500ms);
    proxy.restore();
  });
}

// A queue too small for the outage: evictions are dropped, and on_gap must flush.
TEST(FaultRedis, KilledWithAFullQueueRunsOnGap) {
  run_redis_fault(
      "queue_overflow",
      [](OwnRedisServer& own, TcpProxy& proxy) {
        proxy.freeze();
        std::this_thread::sleep_for(500ms);
        own.stop();
        proxy.cut();
        std::this_thread::sleep_for(long_tests() ? 10s : 2s);
        own.start();
        set_marker(own, "queue_overflow");
        proxy.restore();
      },
      /*queue_limit=*/64);
}

}  // namespace
}  // namespace pgfanout::test
