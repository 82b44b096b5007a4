// Durable and plain-NOTIFY webhooks through the real daemon: two instances sharing one outbox
// send each delivery once; kill -9 in the middle of a delivery, then a restart, still delivers
// (same webhook-id, after the lease); dead letters are listed and retried with the CLI; a
// plain-NOTIFY queue overflow is counted in /metrics.
#include <signal.h>

#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "support/TestSupport.hpp"
#include "support/WebhookSink.hpp"

namespace pgfanout {
namespace {

using namespace std::chrono_literals;
using test::BlockingPg;
using test::DaemonProcess;
using test::SinkReply;
using test::SinkRequest;
using test::WebhookSink;

struct WebhookFixture : ::testing::Test {
  void SetUp() override {
    db = std::make_unique<test::ScratchDatabase>("webhook");
    BlockingPg s(db->dsn());
    s.exec("CREATE TABLE public.items (id int PRIMARY KEY, v text)");
  }

  // A config whose rule on items_changed (durable or not) calls the sink.
  std::string write_config(const std::string& consumer, bool durable, const std::string& extra,
                           const std::string& hook_extra = {}) {
    std::string d = durable ? "true" : "false";
    return test::write_temp_file(
        "pgfanout-" + consumer + ".yaml",
        "postgres:\n  dsn: \"" + db->dsn() +
            "\"\n  reconnect_min: 50ms\n  reconnect_max: 500ms\n"
            "http:\n  listen: 127.0.0.1:0\nconsumer: " +
            consumer +
            "\noutbox:\n  poll_interval: 200ms\n  retry_delay: 100ms\n"
            "shutdown:\n  drain_timeout: 1s\n" +
            extra + "watch:\n  - table: public.items\n    channel: items_changed\n    durable: " +
            d + "\nrules:\n  - name: items\n    channel: items_changed\n    durable: " + d +
            "\n    actions:\n      - webhook:\n          url: 'http://127.0.0.1:" +
            std::to_string(sink->port()) + "/items/{id}'\n          secret: " +
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n" + hook_extra);
  }

  void install(const std::string& config) {
    auto [code, out] = test::run_pgfanout({"install", "--config", config});
    ASSERT_EQ(code, 0) << out;
  }

  std::unique_ptr<DaemonProcess> start(const std::string& config) {
    auto p = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"run", "--config", config, "--log-level", "debug"});
    EXPECT_TRUE(p->wait_for_output("ready")) << p->output();
    return p;
  }

  std::map<std::string, int> ids_received() const {
    std::map<std::string, int> ids;
    for (const auto& r : sink->requests()) ++ids[r.header("webhook-id")];
    return ids;
  }

  std::unique_ptr<test::ScratchDatabase> db;
  std::unique_ptr<WebhookSink> sink = std::make_unique<WebhookSink>();
};

constexpr const char* kFastWorker =
    "webhook:\n  poll_interval: 100ms\n  lease: 2s\n  claim_batch: 50\n";

TEST_F(WebhookFixture, TwoInstancesSharingOneOutboxSendEachDeliveryOnce) {
  constexpr int kEvents = 400;
  auto config_a = write_config("instance-a", true, kFastWorker);
  auto config_b = write_config("instance-b", true, kFastWorker);
  install(config_a);
  auto a = start(config_a);
  auto b = start(config_b);
  BlockingPg s(db->dsn());
  for (int i = 0; i < kEvents; i += 20) {
    s.exec("INSERT INTO items SELECT g, 'x' FROM generate_series(" + std::to_string(i + 1) + ", " +
           std::to_string(i + 20) + ") g");
  }
  ASSERT_TRUE(
      test::wait_until([&] { return static_cast<int>(ids_received().size()) == kEvents; }, 60s))
      << ids_received().size() << " of " << kEvents;
  std::this_thread::sleep_for(1s);  // anything sent twice would arrive by now
  auto ids = ids_received();
  EXPECT_EQ(static_cast<int>(ids.size()), kEvents);
  int duplicates = 0;
  for (const auto& [id, n] : ids) duplicates += n - 1;
  EXPECT_EQ(duplicates, 0);
  std::set<std::string> targets;
  for (const auto& r : sink->requests()) targets.insert(r.target);
  EXPECT_EQ(static_cast<int>(targets.size()), kEvents);
  EXPECT_TRUE(test::wait_until([&] {
    return s.value("SELECT count(*)::text FROM pgfanout.deliveries WHERE state = 'done'") ==
           std::to_string(kEvents);
  }));
  EXPECT_EQ(s.value("SELECT count(DISTINCT locked_by)::text FROM pgfanout.deliveries"), "0");
  RecordProperty("sent_by_a_and_b", s.value("SELECT 'see metrics'").value_or(""));
}

TEST_F(WebhookFixture, KillNineMidDeliveryThenRestartDelivers) {
  std::atomic<bool> hang{true};
  sink->set_respond(
      [&](const SinkRequest&) { return hang ? SinkReply{SinkReply::Kind::Hang} : SinkReply{}; });
  auto config = write_config("instance-a", true, kFastWorker, "          timeout: 30s\n");
  install(config);
  auto first = start(config);
  BlockingPg s(db->dsn());
  s.exec("INSERT INTO items VALUES (7, 'x')");
  ASSERT_TRUE(test::wait_until([&] { return sink->request_count() == 1; }, 15s)) << first->output();
  EXPECT_EQ(s.value("SELECT state FROM pgfanout.deliveries"), "sending");
  first->signal(SIGKILL);
  EXPECT_EQ(first->wait(), 128 + SIGKILL);
  hang = false;
  sink->release();
  auto second = start(config);
  ASSERT_TRUE(test::wait_until(
      [&] { return s.value("SELECT state FROM pgfanout.deliveries") == "done"; }, 20s))
      << second->output();
  auto reqs = sink->requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].header("webhook-id"), reqs[1].header("webhook-id"));
  EXPECT_EQ(reqs[1].target, "/items/7");
  EXPECT_EQ(s.value("SELECT attempts::text FROM pgfanout.deliveries"), "2");
}

TEST_F(WebhookFixture, DeadLettersAreListedAndRetriedWithTheCli) {
  std::atomic<int> status{422};
  sink->set_respond([&](const SinkRequest&) {
    SinkReply r;
    r.status = status;
    r.body = status == 422 ? "unprocessable order" : "ok";
    return r;
  });
  auto config = write_config("instance-a", true, kFastWorker);
  install(config);
  auto d = start(config);
  BlockingPg s(db->dsn());
  s.exec("INSERT INTO items VALUES (1, 'x')");
  ASSERT_TRUE(test::wait_until(
      [&] { return s.value("SELECT state FROM pgfanout.deliveries") == "dead"; }, 15s))
      << d->output();
  auto [code, out] = test::run_pgfanout({"deliveries", "list", "--dead", "--config", config});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("dead"), std::string::npos) << out;
  EXPECT_NE(out.find("422"), std::string::npos) << out;
  EXPECT_NE(out.find("unprocessable order"), std::string::npos) << out;
  status = 200;
  auto [rcode, rout] = test::run_pgfanout({"deliveries", "retry", "--dead", "--config", config});
  EXPECT_EQ(rcode, 0) << rout;
  EXPECT_NE(rout.find("1 dead letter(s)"), std::string::npos) << rout;
  ASSERT_TRUE(test::wait_until(
      [&] { return s.value("SELECT state FROM pgfanout.deliveries") == "done"; }, 15s))
      << d->output();
  auto [lcode, lout] = test::run_pgfanout({"deliveries", "list", "--config", config});
  EXPECT_NE(lout.find("0 row(s)"), std::string::npos) << lout;
  auto [bcode, bout] = test::run_pgfanout({"deliveries", "retry", "--config", config});
  EXPECT_EQ(bcode, 64) << bout;
}

TEST_F(WebhookFixture, PlainNotifyQueueOverflowIsCounted) {
  sink->set_respond([](const SinkRequest&) { return SinkReply{SinkReply::Kind::Hang}; });
  auto config =
      write_config("instance-a", false, "webhook:\n  queue_limit: 3\n", "          timeout: 30s\n");
  install(config);
  auto d = start(config);
  BlockingPg s(db->dsn());
  for (int i = 1; i <= 10; ++i) s.exec("INSERT INTO items VALUES (" + std::to_string(i) + ", 'x')");
  int port = d->http_port();
  ASSERT_TRUE(test::wait_until([&] {
    return test::http_get(port, "/metrics")
               .body.find("pgfanout_webhook_dropped_total{reason=\"overflow\"} 7") !=
           std::string::npos;
  })) << test::http_get(port, "/metrics").body;
  EXPECT_NE(test::http_get(port, "/metrics").body.find("pgfanout_webhook_queue_depth 3"),
            std::string::npos);
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(), 0);
  EXPECT_TRUE(d->output_contains("webhook deliveries still in flight at the drain deadline"))
      << d->output();
  sink->release();
}

}  // namespace
}  // namespace pgfanout
