// Live reload of the hub's access rules (auth:, topics:, commands:) with clients connected: SIGHUP
// applies them without dropping connections. Subscriptions the new rules no longer allow get
// `error forbidden` naming the topic and stop; connections whose token was verified with a key
// that is no longer configured are closed with a reason; everything else keeps flowing, with
// every event before and after the reload delivered exactly once.
#include <signal.h>

#include <fstream>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "auth/Jwt.hpp"
#include "support/TestSupport.hpp"
#include "support/WsClient.hpp"

namespace pgfanout {
namespace {

using namespace std::chrono_literals;
using test::BlockingPg;
using test::DaemonProcess;
using test::WsClient;

const std::string kOldSecret = "reload-test-secret-one-0123456789abcdef";
const std::string kNewSecret = "reload-test-secret-two-0123456789abcdef";

std::string token(const std::string& secret, const std::string& sub) {
  auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count() +
             3600;
  return auth::jwt_sign(auth::JwtAlgorithm::HS256,
                        R"({"sub":")" + sub + R"(","exp":)" + std::to_string(exp) + "}", secret);
}

// `staff`: whether the topic `staff` is allowed; `hello` / `hi`: the anonymous command's name.
std::string config_text(const std::string& dsn, const std::string& secret, bool staff,
                        const std::string& command) {
  std::string t = "postgres:\n  dsn: \"" + dsn +
                  "\"\n"
                  "http:\n  listen: 127.0.0.1:0\n"
                  "auth:\n  jwt:\n    secret: \"" +
                  secret +
                  "\"\n"
                  "topics:\n"
                  "  - pattern: \"news\"\n    anonymous: true\n"
                  "  - pattern: \"room:*\"\n";
  if (staff) t += "  - pattern: \"staff\"\n";
  t += "commands:\n  " + command +
       ":\n    sql: \"SELECT 'hello'::text AS greeting\"\n    anonymous: true\n"
       "hub:\n  sse_heartbeat: 300ms\n"
       "rules:\n"
       "  - name: fan\n    channel: fan\n    actions:\n"
       "      - push: {topic: \"{topic}\", event: e}\n";
  return t;
}

double sample(int port, const std::string& series) {
  return test::metric_sample(port, series);
}

// Rewrites the config file, sends SIGHUP and waits until the reload has been applied.
void reload(DaemonProcess& d, int port, const std::string& path, const std::string& text) {
  ASSERT_TRUE(test::reload_config(d, port, path, text)) << d.output();
}

// Sends events n = from..to on `topic`.
void fan(BlockingPg& s, const std::string& topic, int from, int to) {
  for (int n = from; n <= to; ++n) {
    s.notify("fan", R"({"topic":")" + topic + R"(","n":)" + std::to_string(n) + "}");
  }
}

// How many times the event `n` of `topic` occurs in `text`.
int occurrences(const std::string& text, const std::string& topic, int n) {
  std::string needle =
      R"("topic":")" + topic + R"(","event":"e","data":{"topic":")" + topic + R"(","n":)";
  needle += std::to_string(n) + "}";
  int count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// Everything a WebSocket client receives until the event `last` of `topic` (included).
std::string receive_until(WsClient& c, const std::string& topic, int last) {
  std::string all;
  for (;;) {
    auto m = c.receive(5s);
    if (!m) break;
    all += *m + "\n";
    if (occurrences(*m, topic, last) > 0) break;
  }
  return all;
}

class HubReload : public ::testing::Test {
 protected:
  void SetUp() override {
    db = std::make_unique<test::ScratchDatabase>("hubreload");
    path = test::write_temp_file("hub-reload.yaml",
                                 config_text(db->dsn(), kOldSecret, /*staff=*/true, "hello"));
    daemon = std::make_unique<DaemonProcess>(std::vector<std::string>{"run", "--config", path});
    ASSERT_TRUE(daemon->wait_for_output("ready")) << daemon->output();
    port = daemon->http_port();
  }

  std::unique_ptr<test::ScratchDatabase> db;
  std::string path;
  std::unique_ptr<DaemonProcess> daemon;
  int port = 0;
};

TEST_F(HubReload, WithdrawnTopicsStopOthersFlowExactlyOnce) {
  WsClient anon(port);
  WsClient user(port, "/ws", {{"Authorization", "Bearer " + token(kOldSecret, "u1")}});
  ASSERT_TRUE(anon.open() && user.open());
  ASSERT_EQ(*anon.request(R"({"type":"subscribe","topic":"news"})"), R"({"type":"ack","ref":1})");
  for (const char* t : {"news", "room:1", "staff"}) {
    auto ack = user.request(std::string(R"({"type":"subscribe","topic":")") + t + "\"}");
    ASSERT_TRUE(ack && ack->find("ack") != std::string::npos) << t << ": " << ack.value_or("");
  }
  test::HttpStream sse(port,
                       "GET /events?topic=room:1&topic=staff HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer " +
                           token(kOldSecret, "u2") + "\r\n\r\n");
  ASSERT_TRUE(sse.wait_for("retry: 2000\n\n")) << sse.text();
  ASSERT_EQ(sse.status(), 200);
  // Web::Hippie clients of the channel `staff`: a WebSocket pipe and a multipart stream.
  WsClient pipe(port, "/_hippie/ws/staff",
                {{"Authorization", "Bearer " + token(kOldSecret, "u3")}});
  ASSERT_TRUE(pipe.open()) << pipe.http_status();
  test::HttpStream mxhr(port,
                        "GET /_hippie/mxhr/staff HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                            token(kOldSecret, "u4") + "\r\n\r\n");
  ASSERT_TRUE(mxhr.wait_for("set_client_id")) << mxhr.text();
  auto hello = anon.request(R"({"type":"call","command":"hello"})");
  ASSERT_TRUE(hello && hello->find("greeting") != std::string::npos) << hello.value_or("");

  BlockingPg s(db->dsn());
  fan(s, "news", 1, 20);
  fan(s, "room:1", 1, 20);
  fan(s, "staff", 1, 20);
  std::string before_user = receive_until(user, "staff", 20);
  std::string before_anon = receive_until(anon, "news", 20);
  ASSERT_TRUE(sse.wait_for(R"("topic":"staff","n":20})")) << sse.text();

  // The same secret; `staff` is gone and the anonymous command is renamed.
  reload(*daemon, port, path, config_text(db->dsn(), kOldSecret, /*staff=*/false, "hi"));
  auto revoked = user.receive_containing(R"("code":"forbidden")");
  ASSERT_TRUE(revoked) << daemon->output();
  EXPECT_NE(revoked->find(R"("topic":"staff")"), std::string::npos) << *revoked;
  ASSERT_TRUE(sse.wait_for(R"({"type":"error","code":"forbidden","topic":"staff")")) << sse.text();

  // The Hippie pipe has only that channel: it is closed; the stream says why and ends.
  while (pipe.receive(5s)) {
  }
  EXPECT_TRUE(pipe.closed());
  EXPECT_EQ(pipe.close_code(), 1008);
  EXPECT_TRUE(mxhr.wait_closed(5s)) << mxhr.text();
  EXPECT_NE(mxhr.text().find(R"("code":"forbidden","topic":"staff")"), std::string::npos)
      << mxhr.text();

  fan(s, "news", 21, 40);
  fan(s, "staff", 21, 40);
  fan(s, "room:1", 21, 40);
  std::string after_user = receive_until(user, "room:1", 40);
  std::string after_anon = receive_until(anon, "news", 40);
  ASSERT_TRUE(sse.wait_for(R"("topic":"room:1","n":40})")) << sse.text();

  std::string user_all = before_user + after_user;
  std::string anon_all = before_anon + after_anon;
  for (int n = 1; n <= 40; ++n) {
    EXPECT_EQ(occurrences(user_all, "news", n), 1) << "news " << n;
    EXPECT_EQ(occurrences(user_all, "room:1", n), 1) << "room:1 " << n;
    EXPECT_EQ(occurrences(anon_all, "news", n), 1) << "anonymous news " << n;
    EXPECT_EQ(occurrences(sse.text(), "room:1", n), 1) << "sse room:1 " << n;
    // Delivered while allowed, never after.
    EXPECT_EQ(occurrences(user_all, "staff", n), n <= 20 ? 1 : 0) << "staff " << n;
    EXPECT_EQ(occurrences(sse.text(), "staff", n), n <= 20 ? 1 : 0) << "sse staff " << n;
  }
  EXPECT_EQ(sample(port, R"(pgfanout_hub_access_revoked_total{what="subscription"})"), 4);
  EXPECT_EQ(sample(port, R"(pgfanout_hub_access_revoked_total{what="connection"})"), 0);

  // The new rules apply to what clients ask next, on the same connections.
  auto again = user.request(R"({"type":"subscribe","topic":"staff"})");
  ASSERT_TRUE(again);
  EXPECT_NE(again->find(R"("code":"forbidden")"), std::string::npos) << *again;
  auto gone = anon.request(R"({"type":"call","command":"hello"})");
  ASSERT_TRUE(gone);
  EXPECT_NE(gone->find("unknown_command"), std::string::npos) << *gone;
  auto hi = anon.request(R"({"type":"call","command":"hi"})");
  ASSERT_TRUE(hi);
  EXPECT_NE(hi->find("greeting"), std::string::npos) << *hi;
  EXPECT_NE(daemon->output().find("4 subscription(s) withdrawn"), std::string::npos)
      << daemon->output();
}

TEST_F(HubReload, ANewKeyClosesConnectionsOfTheOldOneOnly) {
  WsClient anon(port);
  WsClient header(port, "/ws", {{"Authorization", "Bearer " + token(kOldSecret, "u1")}});
  WsClient message(port);
  ASSERT_TRUE(anon.open() && header.open() && message.open());
  auto authed = message.request(R"({"type":"auth","token":")" + token(kOldSecret, "u2") + "\"}");
  ASSERT_TRUE(authed && authed->find("ack") != std::string::npos) << authed.value_or("");
  ASSERT_TRUE(anon.request(R"({"type":"subscribe","topic":"news"})"));
  ASSERT_TRUE(header.request(R"({"type":"subscribe","topic":"room:1"})"));
  ASSERT_TRUE(message.request(R"({"type":"subscribe","topic":"room:1"})"));
  test::HttpStream sse(port,
                       "GET /events?topic=room:1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                           token(kOldSecret, "u3") + "\r\n\r\n");
  ASSERT_TRUE(sse.wait_for("retry: 2000\n\n")) << sse.text();

  BlockingPg s(db->dsn());
  fan(s, "news", 1, 5);
  std::string before = receive_until(anon, "news", 5);

  reload(*daemon, port, path, config_text(db->dsn(), kNewSecret, /*staff=*/true, "hello"));
  // Both token connections are closed with a reason; the SSE stream is told why and ends.
  for (WsClient* c : {&header, &message}) {
    while (c->receive(5s)) {
    }
    EXPECT_TRUE(c->closed());
    EXPECT_EQ(c->close_code(), 1008);
  }
  EXPECT_TRUE(sse.wait_closed(5s)) << sse.text();
  EXPECT_NE(sse.text().find(R"("code":"unauthorized")"), std::string::npos) << sse.text();
  EXPECT_EQ(sample(port, R"(pgfanout_hub_access_revoked_total{what="connection"})"), 3);

  // The anonymous client never noticed.
  fan(s, "news", 6, 10);
  std::string all = before + receive_until(anon, "news", 10);
  for (int n = 1; n <= 10; ++n) EXPECT_EQ(occurrences(all, "news", n), 1) << n;

  // Tokens of the new key get in, those of the old one no more.
  WsClient fresh(port, "/ws", {{"Authorization", "Bearer " + token(kNewSecret, "u1")}});
  EXPECT_TRUE(fresh.open());
  WsClient stale(port, "/ws", {{"Authorization", "Bearer " + token(kOldSecret, "u1")}});
  EXPECT_FALSE(stale.open());
  EXPECT_EQ(stale.http_status(), 401);
}

TEST_F(HubReload, UnchangedKeyKeepsTokenConnections) {
  WsClient user(port, "/ws", {{"Authorization", "Bearer " + token(kOldSecret, "u1")}});
  ASSERT_TRUE(user.open());
  ASSERT_TRUE(user.request(R"({"type":"subscribe","topic":"room:1"})"));
  reload(*daemon, port, path, config_text(db->dsn(), kOldSecret, /*staff=*/true, "hi"));
  BlockingPg s(db->dsn());
  fan(s, "room:1", 1, 3);
  std::string got = receive_until(user, "room:1", 3);
  for (int n = 1; n <= 3; ++n) EXPECT_EQ(occurrences(got, "room:1", n), 1) << got;
  EXPECT_FALSE(user.closed());
  EXPECT_EQ(sample(port, R"(pgfanout_hub_access_revoked_total{what="connection"})"), 0);
}

}  // namespace
}  // namespace pgfanout
