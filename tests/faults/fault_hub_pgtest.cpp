// Fault scenario 5, many WebSocket clients of one anonymous topic, 10% of them never reading:
// every reading client receives every pushed message, and the clients that never read are
// closed as slow (1013) once they are further behind than the send queue (64 KiB here). The
// never-reading clients have small socket buffers and announce small TCP segments: on loopback
// the server's send buffer otherwise grows to megabytes and absorbs what they do not read.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "faults/FaultSupport.hpp"
#include "support/WsClient.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

TEST(FaultHub, ThousandClientsTenPercentNeverReading) {
  const int clients = long_tests() ? 2000 : 1000;
  const int messages = 200;
  constexpr int kPerRound = 20;
  // The clients and the daemon (a child, it inherits the limit) need a descriptor each.
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  lim.rlim_cur = lim.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  ASSERT_GE(lim.rlim_cur, static_cast<rlim_t>(2 * clients + 100)) << "RLIMIT_NOFILE too low";

  ScratchDatabase db("fhub");
  std::string config = write_temp_file(
      "pgfanout.yaml", "postgres: {dsn: \"" + db.dsn() +
                           "\"}\nhttp: {listen: 127.0.0.1:0}\n"
                           "hub: {send_queue_size: 64KiB}\n"
                           "topics:\n  - pattern: fanout\n    allow: [subscribe]\n"
                           "    anonymous: true\n"
                           "rules:\n  - name: fanout\n    channel: fanout_feed\n    actions:\n"
                           "      - push: {topic: fanout, event: m}\n");
  DaemonProcess daemon({"run", "--config", config});
  ASSERT_TRUE(daemon.wait_for_output("ready")) << daemon.output();
  int port = daemon.http_port();
  ASSERT_GT(port, 0);

  std::vector<std::unique_ptr<WsClient>> readers, idle;
  for (int i = 0; i < clients; ++i) {
    bool never_reads = i % 10 == 9;
    auto c = std::make_unique<WsClient>(port, "/ws", WsClient::Headers{}, never_reads ? 2048 : 0,
                                        never_reads ? 536 : 0);
    ASSERT_TRUE(c->open()) << "client " << i << " status " << c->http_status();
    auto ack = c->request(R"({"type":"subscribe","topic":"fanout"})");
    ASSERT_TRUE(ack && ack->find("ack") != std::string::npos) << i;
    (never_reads ? idle : readers).push_back(std::move(c));
  }

  // Pushed in rounds that the reading clients drain before the next: only the clients that
  // never read fall behind, by far more than their send queue.
  auto begin = std::chrono::steady_clock::now();
  std::vector<int> got(readers.size(), 0);
  {
    BlockingPg s(db.dsn());
    std::string pad(2000, 'p');
    for (int round = 0; round < messages / kPerRound; ++round) {
      for (int i = 0; i < kPerRound; ++i) {
        s.notify("fanout_feed",
                 R"({"i":)" + std::to_string(round * kPerRound + i) + R"(,"pad":")" + pad + "\"}");
      }
      for (std::size_t r = 0; r < readers.size(); ++r) {
        while (got[r] < (round + 1) * kPerRound) {
          auto m = readers[r]->receive(10s);
          if (!m) break;
          if (m->find("\"pad\"") != std::string::npos) ++got[r];
        }
      }
    }
  }
  long long received = 0, incomplete = 0;
  for (int g : got) {
    received += g;
    if (g < messages) ++incomplete;
  }
  Figures f;
  f.scenario = "hub_" + std::to_string(clients) + "_clients_10pct_idle";
  f.written = static_cast<long long>(messages) * static_cast<long long>(readers.size());
  f.acted = received;
  f.lost = f.written - received;
  f.recover_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - begin)
                     .count();
  const std::string slow = R"(pgfanout_subscribers_dropped_total{reason="slow"})";
  double dropped = 0;
  wait_until(
      [&] {
        dropped = daemon_metric(port, slow);
        return dropped >= static_cast<double>(idle.size());
      },
      10s);
  f.extra["idle_clients"] = static_cast<long long>(idle.size());
  f.extra["dropped_slow"] = static_cast<long long>(dropped < 0 ? 0 : dropped);
  f.extra["incomplete_readers"] = incomplete;
  EXPECT_EQ(f.lost, 0);
  // Every client that never read was dropped as slow, and no reading client was.
  EXPECT_EQ(f.extra["dropped_slow"], static_cast<long long>(idle.size()));
  // One of them, reading now: what the kernel held, then the end of the connection (a close
  // 1013, or the socket cut when the write in flight did not finish within 2 s of the drop).
  auto& late = *idle.front();
  int late_got = 0;
  while (late.receive(5s)) ++late_got;
  EXPECT_TRUE(late.closed());
  EXPECT_LT(late_got, messages);
  f.extra["late_reader_got"] = late_got;
  f.report();
  EXPECT_EQ(http_get(port, "/healthz").status, 200);
  readers.clear();
  idle.clear();
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.output();
}

}  // namespace
}  // namespace pgfanout::test
