// Fault scenario 1, cache correctness under a randomized cache-aside load: readers fill
// `user:{id}` from the database on a miss, writers update rows, the daemon evicts. Once the load
// stops and the daemon is idle, no cached value may differ from the database. Run without and
// with `again_after`: the first may leave stale keys (the race docs/cache-invalidation.md
// describes; reported, not failed), the second must leave none. The load is random with the seed
// PGFANOUT_SEED (1 when unset); the seed is printed and reported as the figure `seed`.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "faults/FaultSupport.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

Figures run_cache_load(const std::string& name, const std::string& again_after) {
  constexpr int kRows = 20;
  ScratchDatabase db("fcache");
  std::string prefix = "fcache:" + std::to_string(::getpid()) + ":" + name + ":";
  {
    BlockingPg s(db.dsn());
    s.exec(CacheLoad::table_sql(kRows));
  }
  std::string config = write_temp_file(
      "pgfanout.yaml",
      "postgres: {dsn: \"" + db.dsn() + "\"}\nhttp: {listen: 127.0.0.1:0}\nredis: {url: \"" +
          harness_env("PGFANOUT_TEST_REDIS_URL") +
          "\"}\nwatch:\n  - table: public.users\n    channel: users_changed\n"
          "rules:\n  - name: users\n    channel: users_changed\n    actions:\n"
          "      - evict: [\"" +
          prefix + "user:{id}\"]\n" +
          (again_after.empty() ? "" : "        again_after: " + again_after + "\n"));
  auto running = install_and_run(config);
  EXPECT_GT(running.port, 0);
  if (running.port == 0) return {};  // the failures are reported
  DaemonProcess& daemon = *running.process;
  const int port = running.port;

  CacheLoad load(db.dsn(), harness_redis_port(), prefix, kRows);
  load.start(/*readers=*/4, /*writers=*/2);
  std::this_thread::sleep_for(long_tests() ? 60s : 4s);
  load.stop();
  auto stopped = std::chrono::steady_clock::now();

  Figures f;
  f.scenario = "cache_" + name;
  f.written = load.written();
  const std::string series = "pgfanout_actions_total{rule=\"users\",kind=\"evict\"}";
  bool idle = wait_until([&] { return daemon_metric(port, series) >= f.written; }, 30s);
  EXPECT_TRUE(idle) << daemon.output();
  // The second eviction of the last writes, then an empty queue.
  if (!again_after.empty()) std::this_thread::sleep_for(1s);
  EXPECT_TRUE(wait_until(
      [&] { return daemon_metric(port, "pgfanout_redis_queued{target=\"default\"}") == 0; }));
  f.recover_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - stopped)
                     .count();
  f.acted = static_cast<long long>(daemon_metric(port, series));
  f.lost = f.written - f.acted;
  f.stale = load.stale();
  f.extra["cache_fills"] = load.fills();
  f.extra["cache_hits"] = load.hits();
  f.extra["seed"] = load.seed();
  f.report();
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.output();
  return f;
}

TEST(FaultCache, WithoutAgainAfterStaleKeysAreReported) {
  auto f = run_cache_load("plain", "");
  EXPECT_EQ(f.lost, 0);
  // The race may leave stale keys here: reported, not failed.
}

TEST(FaultCache, WithAgainAfterNoCachedValueDiffersFromTheDatabase) {
  auto f = run_cache_load("again_after", "200ms");
  EXPECT_EQ(f.lost, 0);
  EXPECT_EQ(f.stale, 0);
}

}  // namespace
}  // namespace pgfanout::test
