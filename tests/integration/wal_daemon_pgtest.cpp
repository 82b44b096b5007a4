// The daemon with a `via: wal` table and pgfanout.emit: pushed events carry their WAL position as
// id; SSE `Last-Event-ID` and WebSocket `subscribe` with `after` resume from the hub's history,
// and an id older than it gets `resync`; /healthz and /metrics report the WAL source.
#include <regex>

#include <gtest/gtest.h>

#include "faults/FaultSupport.hpp"
#include "support/WsClient.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

struct WalDaemon : ::testing::Test {
  void SetUp() override {
    BlockingPg(db.dsn()).exec("CREATE TABLE items (id int PRIMARY KEY, v text)");
    config = write_temp_file(
        "pgfanout.yaml",
        "postgres: {dsn: \"" + db.dsn() +
            "\"}\nhttp: {listen: 127.0.0.1:0}\n"
            "wal: {slot: wd_" +
            db.name() +
            ", status_interval: 200ms, monitor_interval: 200ms}\n"
            "hub: {history_size: 3}\n"
            "watch:\n  - table: public.items\n    via: wal\n"
            "topics:\n  - pattern: items\n    allow: [subscribe]\n    anonymous: true\n"
            "  - pattern: news\n    allow: [subscribe]\n    anonymous: true\n"
            "rules:\n  - name: items\n    channel: items_changed\n    actions:\n"
            "      - push: {topic: items}\n"
            "  - name: news\n    channel: news\n    actions:\n      - push: {topic: news, data: "
            "\"{payload}\"}\n");
    auto [code, out] = run_pgfanout({"install", "--config", config});
    ASSERT_EQ(code, 0) << out;
    daemon = std::make_unique<DaemonProcess>(std::vector<std::string>{"run", "--config", config});
    ASSERT_TRUE(daemon->wait_for_output("WAL source: streaming")) << daemon->output();
    port = daemon->http_port();
    ASSERT_GT(port, 0);
  }
  void insert(int id) {
    BlockingPg(db.dsn()).exec("INSERT INTO items VALUES (" + std::to_string(id) + ", 'x')");
  }
  HttpStream sse(const std::string& last_id = "") {
    return HttpStream(port, "GET /events?topic=items HTTP/1.1\r\nHost: x\r\n" +
                                (last_id.empty() ? "" : "Last-Event-ID: " + last_id + "\r\n") +
                                "\r\n");
  }

  ScratchDatabase db{"wald"};
  std::string config;
  std::unique_ptr<DaemonProcess> daemon;
  int port = 0;
};

TEST_F(WalDaemon, EventsCarryTheirPositionAndResumeFromTheHistory) {
  auto live = sse();
  ASSERT_TRUE(live.wait_for("retry: 2000"));
  insert(1);
  ASSERT_TRUE(live.wait_for(R"("id":1})")) << live.text() << daemon->output();
  std::smatch m;
  std::string text = live.text();
  ASSERT_TRUE(std::regex_search(text, m, std::regex(R"(id: ([0-9A-F]+/[0-9A-F]+)\ndata: )")))
      << text;
  const std::string first = m[1];
  EXPECT_NE(text.find(R"("id":")" + first + "\""), std::string::npos) << "the frame has the id";
  insert(2);
  insert(3);
  ASSERT_TRUE(live.wait_for(R"("id":3})"));

  auto resumed = sse(first);
  ASSERT_TRUE(resumed.wait_for(R"("id":3})")) << resumed.text();
  EXPECT_NE(resumed.text().find(R"("id":2})"), std::string::npos);
  EXPECT_EQ(resumed.text().find(R"("id":1})"), std::string::npos);
  EXPECT_EQ(resumed.text().find("resync"), std::string::npos);

  WsClient ws(port);
  ASSERT_TRUE(ws.open());
  auto ack = ws.request(R"({"type":"subscribe","topic":"items","after":")" + first + "\"}");
  ASSERT_TRUE(ack) << "no ack";
  EXPECT_NE(ack->find("\"ack\""), std::string::npos) << *ack;
  ASSERT_TRUE(ws.receive_containing(R"("id":2})"));
  ASSERT_TRUE(ws.receive_containing(R"("id":3})"));

  // Three kept (hub.history_size): after two more, the first id is too old.
  insert(4);
  insert(5);
  ASSERT_TRUE(live.wait_for(R"("id":5})"));
  auto too_old = sse(first);
  ASSERT_TRUE(too_old.wait_for(R"({"type":"resync","topic":"items"})")) << too_old.text();
  EXPECT_EQ(too_old.text().find(R"("id":5})"), std::string::npos) << "no partial replay";
  auto bad = sse("1/zz");
  ASSERT_TRUE(bad.wait_for("resync")) << bad.text();
}

TEST_F(WalDaemon, EmittedEventsAreRoutedAndReportedInHealthAndMetrics) {
  WsClient ws(port);
  ASSERT_TRUE(ws.open());
  ASSERT_TRUE(ws.request(R"({"type":"subscribe","topic":"news"})"));
  BlockingPg(db.dsn()).exec("SELECT pgfanout.emit('news', 'hello')");
  BlockingPg(db.dsn()).exec("BEGIN; SELECT pgfanout.emit('news', 'rolled back'); ROLLBACK");
  BlockingPg(db.dsn()).exec("SELECT pgfanout.emit('news', 'again')");
  ASSERT_TRUE(ws.receive_containing("\"hello\""));
  auto next = ws.receive_containing("\"again\"");
  ASSERT_TRUE(next);
  for (const auto& s : ws.skipped) EXPECT_EQ(s.find("rolled back"), std::string::npos) << s;
  auto health = http_get(port, "/healthz");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_NE(health.body.find(R"("wal":{"ok":true,"detail":"streaming)"), std::string::npos)
      << health.body;
  EXPECT_TRUE(wait_until([&] { return daemon_metric(port, "pgfanout_wal_events_total") >= 2; }));
  EXPECT_TRUE(
      wait_until([&] { return daemon_metric(port, "pgfanout_wal_status_updates_total") >= 1; }));
  EXPECT_EQ(daemon_metric(port, "pgfanout_wal_slot_status{status=\"reserved\"}"), 1);
}

}  // namespace
}  // namespace pgfanout::test
