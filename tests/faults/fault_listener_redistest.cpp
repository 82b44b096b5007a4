// Fault scenario 2, the listener loses PostgreSQL while a cache-aside load runs: its backend is
// terminated, the server restarts (fast and immediate), the network path is cut and restored.
// Either every write's eviction happens, or the rule's on_reconnect flush is observed (a marker
// key under the flushed pattern is gone); either way no cached value differs from the database.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>

#include <gtest/gtest.h>

#include "faults/FaultSupport.hpp"
#include "support/TcpProxy.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

constexpr int kRows = 20;

int pg_ctl(const std::string& args) {
  return std::system(
      (harness_env("PGFANOUT_TEST_PGCTL") + " " + args + " >/dev/null 2>&1").c_str());
}

// Runs the load, calls `fault` (which returns when the fault is over), and checks the end state.
void run_listener_fault(const std::string& name, const std::function<void(TcpProxy&)>& fault) {
  ScratchDatabase db("flisten");
  std::string prefix = "flisten:" + std::to_string(::getpid()) + ":" + name + ":";
  {
    BlockingPg s(db.dsn());
    s.exec(CacheLoad::table_sql(kRows));
  }
  TcpProxy proxy("127.0.0.1", static_cast<std::uint16_t>(
                                  std::atoi(harness_env("PGFANOUT_TEST_PGPORT").c_str())));
  std::string config = write_temp_file(
      "pgfanout.yaml",
      "postgres:\n  dsn: \"" + db.dsn() + " port=" + std::to_string(proxy.port()) +
          "\"\n  reconnect_min: 50ms\n  reconnect_max: 500ms\n  heartbeat_interval: 500ms\n"
          "  heartbeat_timeout: 1s\nhttp: {listen: 127.0.0.1:0}\nredis: {url: \"" +
          harness_env("PGFANOUT_TEST_REDIS_URL") +
          "\"}\nwatch:\n  - table: public.users\n    channel: users_changed\n"
          "rules:\n  - name: users\n    channel: users_changed\n    actions:\n"
          "      - evict: [\"" +
          prefix +
          "user:{id}\"]\n        again_after: 200ms\n    on_reconnect:\n"
          "      - evict_pattern: \"" +
          prefix + "user:*\"\n");
  auto running = install_and_run(config);
  ASSERT_GT(running.port, 0);
  DaemonProcess& daemon = *running.process;
  const int port = running.port;
  RedisTestClient redis(harness_redis_port());
  std::this_thread::sleep_for(300ms);  // an on_reconnect of the first connection is done
  redis.set(prefix + "user:marker");

  CacheLoad load(db.dsn(), harness_redis_port(), prefix, kRows);
  load.start(/*readers=*/3, /*writers=*/2);
  std::this_thread::sleep_for(long_tests() ? 10s : 1500ms);
  double reconnects = daemon_metric(port, "pgfanout_pg_reconnects_total");
  fault(proxy);
  auto fault_over = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_until(
      [&] {
        return daemon_metric(port, "pgfanout_pg_reconnects_total") > reconnects &&
               daemon_metric(port, "pgfanout_pg_connected") == 1;
      },
      30s))
      << daemon.output();
  auto recovered = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(long_tests() ? 10s : 1500ms);
  load.stop();

  Figures f;
  f.scenario = "listener_" + name;
  f.written = load.written();
  const std::string series = "pgfanout_actions_total{rule=\"users\",kind=\"evict\"}";
  // Idle: the evictions of what arrived are done, the second ones too, the queue is empty.
  wait_until([&] { return daemon_metric(port, series) >= f.written; }, 5s);
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(wait_until(
      [&] { return daemon_metric(port, "pgfanout_redis_queued{target=\"default\"}") == 0; }));
  f.acted = static_cast<long long>(daemon_metric(port, series));
  f.lost = std::max(0LL, f.written - f.acted);
  f.stale = load.stale();
  f.recover_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(recovered - fault_over).count();
  bool flushed = !redis.exists(prefix + "user:marker");
  f.extra["flushed"] = flushed ? 1 : 0;
  f.extra["reconnects"] =
      static_cast<long long>(daemon_metric(port, "pgfanout_pg_reconnects_total") - reconnects);
  f.report();
  EXPECT_TRUE(f.lost == 0 || flushed) << daemon.output();
  EXPECT_EQ(f.stale, 0);
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.output();
}

TEST(FaultListener, BackendTerminated) {
  run_listener_fault("terminate", [](TcpProxy&) {
    BlockingPg admin(test_dsn());
    admin.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'pgfanout' AND pid <> pg_backend_pid()");
  });
}

TEST(FaultListener, PostgresRestartedFast) {
  run_listener_fault("restart_fast", [](TcpProxy&) {
    int rc = pg_ctl("-m fast restart");
    if (rc != 0) pg_ctl("start");
    EXPECT_EQ(rc, 0);
  });
}

TEST(FaultListener, PostgresRestartedImmediate) {
  run_listener_fault("restart_immediate", [](TcpProxy&) {
    int rc = pg_ctl("-m immediate restart");
    if (rc != 0) pg_ctl("start");
    EXPECT_EQ(rc, 0);
  });
}

TEST(FaultListener, NetworkCutAndRestored) {
  run_listener_fault("network_cut", [](TcpProxy& proxy) {
    proxy.cut();
    std::this_thread::sleep_for(long_tests() ? 10s : 2s);
    proxy.restore();
  });
}

TEST(FaultListener, NetworkFrozenAndRestored) {
  run_listener_fault("network_freeze", [](TcpProxy& proxy) {
    proxy.freeze();
    std::this_thread::sleep_for(long_tests() ? 10s : 3s);
    proxy.restore();
  });
}

}  // namespace
}  // namespace pgfanout::test
