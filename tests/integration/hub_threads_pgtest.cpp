// The hub on several event loops (hub.threads: 4): sessions are spread over the loops, and
// everything that spans them holds — every client of every loop gets every event of its topics
// once and in order, a message for one user reaches that user only, commands answer from the
// daemon's loop on the caller's, the connection limit counts every loop, a reload rechecks the
// connections of every loop, and a shutdown closes them all.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "support/TestSupport.hpp"
#include "support/WsClient.hpp"

namespace pgfanout {
namespace {

using namespace std::chrono_literals;
using test::BlockingPg;
using test::DaemonProcess;
using test::WsClient;

constexpr int kLoops = 4;
constexpr int kClients = 16;  // 4 per loop

std::string config_text(const std::string& dsn, bool staff, int max_connections = 1000) {
  std::string t = "postgres:\n  dsn: \"" + dsn +
                  "\"\n"
                  "http:\n  listen: 127.0.0.1:0\n"
                  "topics:\n"
                  "  - pattern: \"news\"\n    anonymous: true\n"
                  "  - pattern: \"u:*\"\n    anonymous: true\n";
  if (staff) t += "  - pattern: \"staff\"\n    anonymous: true\n";
  t += "commands:\n  hello:\n    sql: \"SELECT $1::text AS greeting\"\n"
       "    params: [name]\n    anonymous: true\n"
       "hub:\n  threads: " +
       std::to_string(kLoops) + "\n  max_connections: " + std::to_string(max_connections) +
       "\n  sse_heartbeat: 300ms\n"
       "rules:\n"
       "  - name: fan\n    channel: fan\n    actions:\n"
       "      - push: {topic: \"{topic}\", event: e}\n";
  return t;
}

double sample(int port, const std::string& series) {
  return test::metric_sample(port, series);
}

std::string event(const std::string& topic, int n) {
  return R"({"topic":")" + topic + R"(","n":)" + std::to_string(n) + "}";
}

// The `n` values of the events of `topic` a client received, in the order it got them, until
// the one numbered `last` or a 5 s silence.
std::vector<int> received(WsClient& c, const std::string& topic, int last) {
  std::vector<int> out;
  const std::string needle = R"("data":{"topic":")" + topic + R"(","n":)";
  for (;;) {
    auto m = c.receive(5s);
    if (!m) break;
    auto at = m->find(needle);
    if (at == std::string::npos) continue;
    out.push_back(std::stoi(m->substr(at + needle.size())));
    if (out.back() == last) break;
  }
  return out;
}

std::vector<int> one_to(int n) {
  std::vector<int> v;
  for (int i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

class HubThreads : public ::testing::Test {
 protected:
  void SetUp() override { db = std::make_unique<test::ScratchDatabase>("hubthreads"); }
  void start(bool staff, int max_connections = 1000) {
    path =
        test::write_temp_file("hub-threads.yaml", config_text(db->dsn(), staff, max_connections));
    daemon = std::make_unique<DaemonProcess>(std::vector<std::string>{"run", "--config", path});
    ASSERT_TRUE(daemon->wait_for_output("ready")) << daemon->output();
    port = daemon->http_port();
  }

  std::unique_ptr<test::ScratchDatabase> db;
  std::string path;
  std::unique_ptr<DaemonProcess> daemon;
  int port = 0;
};

TEST_F(HubThreads, EveryClientOfEveryLoopGetsEveryEventOnceInOrder) {
  ASSERT_NO_FATAL_FAILURE(start(true));
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<WsClient>(port));
    ASSERT_TRUE(clients.back()->open());
    ASSERT_EQ(*clients.back()->request(R"({"type":"subscribe","topic":"news"})"),
              R"({"type":"ack","ref":1})");
    auto own =
        clients.back()->request(R"({"type":"subscribe","topic":"u:)" + std::to_string(i) + "\"}");
    ASSERT_TRUE(own && own->find("ack") != std::string::npos) << own.value_or("");
  }
  // The daemon runs its own loop and three hub threads; each loop took a quarter of the clients.
  for (int loop = 0; loop < kLoops; ++loop) {
    EXPECT_EQ(
        sample(port, R"(pgfanout_hub_loop_connections{loop=")" + std::to_string(loop) + "\"}"),
        kClients / kLoops)
        << loop;
  }
  EXPECT_EQ(sample(port, R"(pgfanout_hub_loop_connections{loop="4"})"), -1);
  int hub_threads = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(daemon->pid()) + "/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name.starts_with("pgfanout-hub")) ++hub_threads;
  }
  EXPECT_EQ(hub_threads, kLoops - 1);

  // An SSE stream on whatever loop comes next.
  test::HttpStream sse(port, "GET /events?topic=news HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(sse.wait_for("retry: 2000\n\n")) << sse.text();

  constexpr int kEvents = 200;
  BlockingPg s(db->dsn());
  for (int n = 1; n <= kEvents; ++n) {
    // One user's message among them, for one client in turn.
    if (n % 10 == 0) s.notify("fan", event("u:" + std::to_string(n / 10 % kClients), n));
    s.notify("fan", event("news", n));
  }
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(received(*clients[i], "news", kEvents), one_to(kEvents)) << "client " << i;
  }
  ASSERT_TRUE(sse.wait_for(event("news", kEvents))) << sse.text();
  for (int n = 1; n <= kEvents; ++n) {
    EXPECT_NE(sse.text().find(event("news", n) + "}"), std::string::npos) << n;
  }
  // The user messages were read among the news above (skipped by received()): each client got
  // exactly its own.
  for (int i = 0; i < kClients; ++i) {
    s.notify("fan", event("u:" + std::to_string(i), 1000 + i));
    auto mine = received(*clients[i], "u:" + std::to_string(i), 1000 + i);
    EXPECT_EQ(mine, std::vector<int>{1000 + i}) << "client " << i;
  }

  // A command from a client of each loop runs on the daemon's loop and answers on the client's.
  for (int i = 0; i < kClients; ++i) {
    auto r = clients[i]->request(R"({"type":"call","command":"hello","args":{"name":"c)" +
                                 std::to_string(i) + "\"}}");
    ASSERT_TRUE(r) << i;
    EXPECT_NE(r->find(R"("greeting":"c)" + std::to_string(i) + "\""), std::string::npos) << *r;
  }
  EXPECT_EQ(sample(port, "pgfanout_hub_messages_delivered_total"),
            (kClients + 1) * kEvents + kEvents / 10 + kClients);
}

TEST_F(HubThreads, TheConnectionLimitCountsEveryLoop) {
  ASSERT_NO_FATAL_FAILURE(start(true, 6));
  std::vector<std::unique_ptr<WsClient>> clients;
  int open = 0;
  for (int i = 0; i < 10; ++i) {
    clients.push_back(std::make_unique<WsClient>(port));
    if (clients.back()->open()) ++open;
  }
  EXPECT_EQ(open, 6);
  EXPECT_EQ(sample(port, R"(pgfanout_hub_connections_rejected_total{reason="limit"})"), 4);
  EXPECT_EQ(sample(port, "pgfanout_subscribers"), 6);
  // Closed ones free their place, whichever loop they were on.
  clients.clear();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (sample(port, "pgfanout_subscribers") != 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(20ms);
  }
  WsClient again(port);
  EXPECT_TRUE(again.open());
}

TEST_F(HubThreads, AReloadRechecksAndAShutdownClosesEveryLoop) {
  ASSERT_NO_FATAL_FAILURE(start(true));
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<WsClient>(port));
    ASSERT_TRUE(clients.back()->open());
    ASSERT_TRUE(clients.back()->request(R"({"type":"subscribe","topic":"staff"})"));
    ASSERT_TRUE(clients.back()->request(R"({"type":"subscribe","topic":"news"})"));
  }
  ASSERT_TRUE(test::reload_config(*daemon, port, path, config_text(db->dsn(), /*staff=*/false)))
      << daemon->output();
  for (int i = 0; i < kClients; ++i) {
    auto revoked = clients[i]->receive_containing(R"("code":"forbidden")");
    ASSERT_TRUE(revoked) << i;
    EXPECT_NE(revoked->find(R"("topic":"staff")"), std::string::npos) << *revoked;
  }
  EXPECT_TRUE(daemon->output_contains("checked on " + std::to_string(kClients) +
                                      " connection(s): 0 closed (token key no longer trusted), " +
                                      std::to_string(kClients) + " subscription(s) withdrawn"))
      << daemon->output();
  EXPECT_EQ(sample(port, R"(pgfanout_hub_access_revoked_total{what="subscription"})"), kClients);

  // Still subscribed to news on every loop.
  BlockingPg s(db->dsn());
  s.notify("fan", event("news", 1));
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(received(*clients[i], "news", 1), one_to(1)) << i;

  daemon->signal(SIGTERM);
  for (int i = 0; i < kClients; ++i) {
    while (clients[i]->receive(5s)) {
    }
    EXPECT_TRUE(clients[i]->closed()) << i;
    EXPECT_EQ(clients[i]->close_code(), 1001) << i;
  }
  EXPECT_EQ(daemon->wait(), 0) << daemon->output();
}

}  // namespace
}  // namespace pgfanout
