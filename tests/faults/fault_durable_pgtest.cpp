// Fault scenario 4, durable events: the daemon is killed with SIGKILL while a writer streams
// inserts into a table watched with `durable: true`, then started again. Every event must be
// acted on (0 lost); events acted on before the kill but not acknowledged come again and are
// counted as duplicates.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "faults/FaultSupport.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

// The item ids the daemon's log action printed, with how often each was printed.
std::map<long long, int> acted_ids(const std::string& output) {
  std::map<long long, int> ids;
  static const std::regex line(R"(\[items\] durable-ev (\d+))");
  for (std::sregex_iterator it(output.begin(), output.end(), line), end; it != end; ++it) {
    ++ids[std::stoll((*it)[1])];
  }
  return ids;
}

TEST(FaultDurable, SigkillMidStreamLosesNoDurableEvent) {
  ScratchDatabase db("fdurable");
  std::string config = write_temp_file(
      "pgfanout.yaml",
      "postgres:\n  dsn: \"" + db.dsn() +
          "\"\n  reconnect_min: 50ms\n  reconnect_max: 500ms\n"
          "http:\n  listen: 127.0.0.1:0\nconsumer: fault-instance\noutbox:\n  poll_interval: "
          "200ms\n  retry_delay: 100ms\n"
          "watch:\n  - table: public.items\n    channel: items_changed\n    durable: true\n"
          "rules:\n  - name: items\n    channel: items_changed\n    durable: true\n"
          "    actions:\n      - log: \"durable-ev {id}\"\n");
  {
    BlockingPg s(db.dsn());
    s.exec("CREATE TABLE public.items (id bigint PRIMARY KEY, v text)");
  }
  auto [code, out] = run_pgfanout({"install", "--config", config});
  ASSERT_EQ(code, 0) << out;
  auto start = [&] {
    auto p = std::make_unique<DaemonProcess>(std::vector<std::string>{"run", "--config", config});
    EXPECT_TRUE(p->wait_for_output("ready")) << p->output();
    return p;
  };

  auto first = start();
  std::atomic<bool> writing{true};
  std::atomic<long long> next{0};
  std::thread writer([&] {
    LoadConn w(db.dsn());
    while (writing) {
      long long from = next + 1;
      if (w.run("INSERT INTO public.items SELECT g, 'x' FROM generate_series($1::bigint, "
                "$1::bigint + 9) g",
                {std::to_string(from)})) {
        next += 10;
      }
      std::this_thread::sleep_for(2ms);
    }
  });
  auto run_for = long_tests() ? 20s : 2s;
  std::this_thread::sleep_for(run_for);
  first->signal(SIGKILL);
  EXPECT_EQ(first->wait(), 128 + SIGKILL);
  auto before = acted_ids(first->output());
  // Written while the daemon is down.
  std::this_thread::sleep_for(long_tests() ? 5s : 1s);
  auto restarted = std::chrono::steady_clock::now();
  auto second = start();
  std::this_thread::sleep_for(run_for / 2);
  writing = false;
  writer.join();

  Figures f;
  f.scenario = "durable_sigkill";
  f.written = next;
  std::set<long long> all;
  auto merge = [&] {
    all.clear();
    for (auto& [id, _] : before) all.insert(id);
    for (auto& [id, _] : acted_ids(second->output())) all.insert(id);
    return static_cast<long long>(all.size());
  };
  EXPECT_TRUE(wait_until([&] { return merge() >= f.written; }, 60s))
      << "acted on " << all.size() << " of " << f.written;
  f.recover_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - restarted)
                     .count();
  auto after = acted_ids(second->output());
  f.acted = merge();
  f.duplicates = 0;
  f.lost = f.written - f.acted;
  for (auto& [id, n] : after) f.duplicates += (before.contains(id) ? 1 : 0) + (n - 1);
  for (auto& [id, n] : before) f.duplicates += n - 1;
  f.extra["acted_before_kill"] = static_cast<long long>(before.size());
  f.report();
  EXPECT_EQ(f.lost, 0);
  for (long long id = 1; id <= f.written; ++id) {
    if (!all.contains(id)) {
      ADD_FAILURE() << "event " << id << " never acted on";
      break;
    }
  }
  second->signal(SIGTERM);
  EXPECT_EQ(second->wait(), 0) << second->output();
}

}  // namespace
}  // namespace pgfanout::test
