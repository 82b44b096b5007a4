// NotifyListener against the real PostgreSQL the harness started: delivery on case-sensitive
// channels, LISTEN/UNLISTEN of only the difference, reconnect after pg_terminate_backend and
// after a server restart, and the heartbeat detecting a connection that went deaf.
#include <cstdlib>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "metrics/Metrics.hpp"
#include "pg/NotifyListener.hpp"
#include "support/CallbackSink.hpp"
#include "support/TcpProxy.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::pg {
namespace {

using namespace std::chrono_literals;
using test::BlockingPg;
using test::run_until;

struct ListenerFixture : ::testing::Test {
  PostgresConfig options(const std::string& dsn) {
    PostgresConfig o;
    o.dsn = dsn;
    o.heartbeat_interval = 200ms;
    o.heartbeat_timeout = 800ms;
    o.reconnect_min = 50ms;
    o.reconnect_max = 500ms;
    o.connect_timeout = 2s;
    return o;
  }

  void start(const std::string& dsn, std::vector<std::string> channels) {
    sink.event = [this](Notification&& n, auto) {
      received.push_back(n.channel + "|" + n.payload);
    };
    sink.batch_end = [this] { ++batches; };
    sink.connected = [this](bool first, bool missed) {
      connects.push_back(first);
      EXPECT_TRUE(missed) << "a NOTIFY listener always reports that it may have missed events";
    };
    sink.disconnected = [this](const std::string& why) { disconnects.push_back(why); };
    sink.fatal = [this](const std::string& why) { fatal = why; };
    listener = std::make_unique<NotifyListener>(io, metrics, options(dsn), sink);
    listener->start(std::move(channels));
    ASSERT_TRUE(run_until(
        io, [&] { return listener->connected(); }, 10s))
        << "listener did not connect";
  }

  bool received_contains(const std::string& s) {
    return std::find(received.begin(), received.end(), s) != received.end();
  }

  // Sends `payload` on `channel` until the listener has it (it may be reconnecting meanwhile).
  bool deliver(const std::string& channel, const std::string& payload,
               std::chrono::seconds t = 15s) {
    auto deadline = std::chrono::steady_clock::now() + t;
    while (std::chrono::steady_clock::now() < deadline) {
      if (listener->connected()) {
        BlockingPg(test::test_dsn()).notify(channel, payload);
        if (run_until(
                io, [&] { return received_contains(channel + "|" + payload); }, 1s)) {
          return true;
        }
      } else {
        run_until(
            io, [&] { return listener->connected(); }, 1s);
      }
    }
    return false;
  }

  boost::asio::io_context io;
  Metrics metrics;
  test::CallbackSink sink;
  std::unique_ptr<NotifyListener> listener;
  std::vector<std::string> received;
  std::vector<bool> connects;
  std::vector<std::string> disconnects;
  std::string fatal;
  int batches = 0;
};

TEST_F(ListenerFixture, ReceivesOnCaseSensitiveOddChannels) {
  start(test::test_dsn(), {"Users Changed", "we\"ird", "plain"});
  BlockingPg s(test::test_dsn());
  s.notify("Users Changed", R"({"id":1})");
  s.notify("we\"ird", "two");
  s.notify("users changed", "wrong case: not listened");
  s.notify("plain", "");
  ASSERT_TRUE(run_until(io, [&] { return received.size() >= 3; }));
  run_until(
      io, [] { return false; }, 300ms);
  EXPECT_EQ(received,
            (std::vector<std::string>{"Users Changed|{\"id\":1}", "we\"ird|two", "plain|"}));
  EXPECT_GE(batches, 1);
  EXPECT_EQ(connects, std::vector<bool>{true});
  EXPECT_GT(listener->backend_pid(), 0);
}

TEST_F(ListenerFixture, SetChannelsListensOnlyTheDifference) {
  start(test::test_dsn(), {"a", "b"});
  listener->set_channels({"b", "c"});
  // The LISTEN/UNLISTEN runs on the listener's connection; give it a moment.
  run_until(
      io, [] { return false; }, 300ms);
  BlockingPg s(test::test_dsn());
  s.notify("a", "1");
  s.notify("b", "2");
  s.notify("c", "3");
  ASSERT_TRUE(run_until(io, [&] { return received.size() >= 2; }));
  run_until(
      io, [] { return false; }, 300ms);
  EXPECT_EQ(received, (std::vector<std::string>{"b|2", "c|3"}));
}

TEST_F(ListenerFixture, ReconnectsAfterTerminateBackend) {
  start(test::test_dsn(), {"t1"});
  int pid = listener->backend_pid();
  BlockingPg s(test::test_dsn());
  EXPECT_EQ(s.value("SELECT pg_terminate_backend($1)::text", {std::to_string(pid)}), "true");
  ASSERT_TRUE(run_until(
      io, [&] { return connects.size() == 2; }, 15s));
  EXPECT_EQ(connects, (std::vector<bool>{true, false}));
  EXPECT_NE(listener->backend_pid(), pid);
  EXPECT_EQ(metrics.value("pgfanout_pg_reconnects_total"), 1);
  EXPECT_TRUE(deliver("t1", "after"));
}

TEST_F(ListenerFixture, ReconnectsAfterServerRestart) {
  start(test::test_dsn(), {"t2"});
  std::string pgctl = test::harness_env("PGFANOUT_TEST_PGCTL");
  ASSERT_EQ(std::system((pgctl + " -m fast -w restart >/dev/null 2>&1").c_str()), 0);
  ASSERT_TRUE(run_until(
      io, [&] { return connects.size() == 2; }, 30s));
  EXPECT_FALSE(disconnects.empty());
  EXPECT_TRUE(deliver("t2", "back"));
}

TEST_F(ListenerFixture, HeartbeatDetectsADeafConnection) {
  test::TcpProxy proxy("127.0.0.1", static_cast<std::uint16_t>(
                                        std::stoi(test::harness_env("PGFANOUT_TEST_PGPORT"))));
  start("host=127.0.0.1 port=" + std::to_string(proxy.port()) + " user=postgres dbname=postgres",
        {"t3"});
  ASSERT_TRUE(deliver("t3", "before"));
  // The path goes silent: no RST, no FIN, packets just stop. Only the heartbeat can tell.
  proxy.freeze();
  ASSERT_TRUE(run_until(
      io,
      [&] {
        return metrics.value("pgfanout_pg_disconnects_total", {{"reason", "heartbeat"}}) >= 1;
      },
      10s));
  EXPECT_FALSE(listener->connected());
  proxy.restore();
  ASSERT_TRUE(run_until(
      io, [&] { return connects.size() >= 2; }, 15s));
  EXPECT_GE(proxy.connections_accepted(), 2);
  EXPECT_TRUE(deliver("t3", "after"));
}

TEST_F(ListenerFixture, KeepsRetryingWhileTheServerIsUnreachable) {
  test::TcpProxy proxy("127.0.0.1", static_cast<std::uint16_t>(
                                        std::stoi(test::harness_env("PGFANOUT_TEST_PGPORT"))));
  proxy.cut();
  sink.event = [this](Notification&& n, auto) { received.push_back(n.payload); };
  sink.connected = [this](bool first, bool) { connects.push_back(first); };
  listener = std::make_unique<NotifyListener>(
      io, metrics,
      options("host=127.0.0.1 port=" + std::to_string(proxy.port()) +
              " user=postgres dbname=postgres"),
      sink);
  listener->start({"t4"});
  run_until(
      io, [] { return false; }, 1500ms);
  EXPECT_FALSE(listener->connected());
  EXPECT_GE(metrics.value("pgfanout_pg_disconnects_total", {{"reason", "error"}}), 2);
  proxy.restore();
  ASSERT_TRUE(run_until(
      io, [&] { return listener->connected(); }, 10s));
  EXPECT_EQ(connects, std::vector<bool>{true});
}

}  // namespace
}  // namespace pgfanout::pg
