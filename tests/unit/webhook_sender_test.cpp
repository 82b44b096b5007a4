// The webhook sender against a local HTTP(S) sink: signatures as received, keep-alive reuse, the
// per-endpoint connection cap, retries with the same webhook-id, Retry-After, 410, dead letters,
// timeouts, a connection closed mid-response, TLS verification (private CA, wrong host name),
// and the bounded in-memory queue. No PostgreSQL needed.
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "app/Config.hpp"
#include "metrics/Metrics.hpp"
#include "rules/RuleSet.hpp"
#include "support/TestSupport.hpp"
#include "support/WebhookSink.hpp"
#include "webhook/WebhookExecutor.hpp"
#include "webhook/WebhookSender.hpp"

namespace pgfanout::webhook {
namespace {

using namespace std::chrono_literals;
using test::SinkReply;
using test::SinkRequest;
using test::WebhookSink;

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Harness {
  explicit Harness(const std::string& action_yaml, webhook::WebhookConfig cfg = {})
      : sender(io, metrics, cfg), executor(io, sender, cfg.queue_limit) {
    auto r = app::load_config_text(
        "postgres: {dsn: 'postgresql:///x'}\n"
        "rules:\n  - name: hook\n    channel: c\n    actions:\n"
        "      - webhook:\n" +
            action_yaml,
        "t.yaml");
    if (!r.config) {
      for (const auto& e : r.errors) ADD_FAILURE() << e.to_string();
      return;
    }
    config = r.config;
    executor.set_dead_letter_sink([this](const DeadLetter& d) { dead.push_back(d); });
  }

  rules::ActionContext ctx() {
    rules::ActionContext c;
    c.rule = config->rules->rules()[0].get();
    c.rules = config->rules;
    c.stats = {&metrics.counter("run", ""), &metrics.counter("failed", ""),
               &metrics.counter("skipped", ""), nullptr};
    return c;
  }

  void send(const std::string& payload) {
    rules::Event ev(rules::ParsedPayload::parse("c", payload), nullptr,
                    std::chrono::steady_clock::now());
    executor.execute(*config->rules->rules()[0]->actions[0], ev, ctx());
  }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds t = 10s) {
    return test::run_until(io, done, t);
  }
  double counter(const char* name, const Labels& labels = {}) {
    return metrics.value(name, labels);
  }

  boost::asio::io_context io;
  Metrics metrics;
  WebhookSender sender;
  WebhookExecutor executor;
  std::shared_ptr<const app::Config> config;
  std::vector<DeadLetter> dead;
};

std::string url(const WebhookSink& sink, const std::string& path = "/hook",
                const char* scheme = "http", const char* host = "127.0.0.1") {
  return std::string(scheme) + "://" + host + ":" + std::to_string(sink.port()) + path;
}

TEST(WebhookSender, SignedRequestsOnOneKeptAliveConnection) {
  WebhookSink sink;
  Harness h("          url: '" + url(sink, "/orders/{id}") + "'\n          secret: '" + kSecret +
            "'\n          headers: {Authorization: 'Bearer t'}\n");
  for (int i = 1; i <= 20; ++i) h.send(R"({"id":)" + std::to_string(i) + R"(,"x":"y"})");
  ASSERT_TRUE(h.run_until([&] { return h.counter("run") == 20; })) << h.counter("failed");
  auto reqs = sink.requests();
  ASSERT_EQ(reqs.size(), 20u);
  std::string error;
  auto key = parse_signing_key(kSecret, error);
  std::set<std::string> ids;
  for (const auto& r : reqs) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_EQ(r.header("authorization"), "Bearer t");
    auto id = r.header("webhook-id");
    auto ts = r.header("webhook-timestamp");
    EXPECT_TRUE(id.starts_with("msg_")) << id;
    ids.insert(id);
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    EXPECT_LE(std::abs(std::stoll(ts) - now), 5);
    EXPECT_EQ(r.header("webhook-signature"), sign({*key}, id, std::stoll(ts), r.body));
    EXPECT_TRUE(r.target.starts_with("/orders/"));
  }
  EXPECT_EQ(ids.size(), 20u);
  // Sent back to back, they share at most max_connections_per_endpoint (8) connections.
  EXPECT_LE(sink.connections_accepted(), 8);
  EXPECT_EQ(h.counter("pgfanout_webhook_attempts_total", {{"status", "2xx"}}), 20);
  EXPECT_EQ(h.executor.pending(), 0u);
  // One after the other they all reuse the same connection.
  int before = sink.connections_accepted();
  for (int i = 0; i < 5; ++i) {
    h.send(R"({"id":1})");
    ASSERT_TRUE(h.run_until([&] { return h.executor.pending() == 0; }));
  }
  EXPECT_EQ(sink.connections_accepted(), before);
}

TEST(WebhookSender, ConcurrencyCapPerEndpoint) {
  WebhookSink sink([](const SinkRequest&) { return SinkReply{SinkReply::Kind::Hang}; });
  webhook::WebhookConfig cfg;
  cfg.max_connections_per_endpoint = 3;
  Harness h("          url: '" + url(sink) +
                "'\n          timeout: 500ms\n"
                "          retry: {schedule: [0s]}\n",
            cfg);
  for (int i = 0; i < 10; ++i) h.send("{}");
  ASSERT_TRUE(h.run_until([&] { return sink.request_count() >= 3; }));
  h.run_until([] { return false; }, 200ms);
  EXPECT_EQ(sink.request_count(), 3u);
  EXPECT_EQ(sink.max_concurrent(), 3);
  sink.release();
  ASSERT_TRUE(h.run_until([&] { return h.executor.pending() == 0; }, 20s));
  EXPECT_LE(sink.max_concurrent(), 3);
}

TEST(WebhookSender, RetriesKeepTheIdThenDeliver) {
  std::atomic<int> n{0};
  WebhookSink sink([&](const SinkRequest&) {
    SinkReply r;
    r.status = ++n < 3 ? 500 : 200;
    return r;
  });
  Harness h("          url: '" + url(sink) + "'\n          retry: {schedule: [0s, 50ms, 50ms]}\n");
  h.send(R"({"id":1})");
  ASSERT_TRUE(h.run_until([&] { return h.counter("run") == 1; }));
  auto reqs = sink.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].header("webhook-id"), reqs[2].header("webhook-id"));
  EXPECT_EQ(h.counter("pgfanout_webhook_attempts_total", {{"status", "5xx"}}), 2);
  EXPECT_TRUE(h.dead.empty());
}

TEST(WebhookSender, RetryAfterIsHonouredOn429) {
  std::atomic<int> n{0};
  WebhookSink sink([&](const SinkRequest&) {
    SinkReply r;
    if (++n == 1) {
      r.status = 429;
      r.headers = {{"Retry-After", "1"}};
    }
    return r;
  });
  Harness h("          url: '" + url(sink) + "'\n          retry: {schedule: [0s, 10ms]}\n");
  auto start = std::chrono::steady_clock::now();
  h.send("{}");
  ASSERT_TRUE(h.run_until([&] { return h.counter("run") == 1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 950ms);
}

TEST(WebhookSender, DeadLetterAfterTheLastAttemptWithStatusAndExcerpt) {
  WebhookSink sink([](const SinkRequest&) {
    SinkReply r;
    r.status = 502;
    r.body = "upstream exploded";
    return r;
  });
  Harness h("          url: '" + url(sink) + "'\n          retry: {schedule: [0s, 10ms, 10ms]}\n");
  h.send(R"({"id":9})");
  ASSERT_TRUE(h.run_until([&] { return h.dead.size() == 1; }));
  EXPECT_EQ(sink.request_count(), 3u);
  EXPECT_EQ(h.dead[0].attempts, 3);
  EXPECT_EQ(h.dead[0].last_status, 502);
  EXPECT_NE(h.dead[0].last_error.find("upstream exploded"), std::string::npos);
  EXPECT_EQ(h.dead[0].body, R"({"id":9})");
  EXPECT_EQ(h.counter("failed"), 1);
  EXPECT_EQ(h.counter("pgfanout_webhook_dead_total"), 1);
}

TEST(WebhookSender, PermanentStatusIsNotRetried) {
  WebhookSink sink([](const SinkRequest&) { return SinkReply{SinkReply::Kind::Respond, 422}; });
  Harness h("          url: '" + url(sink) + "'\n          retry: {schedule: [0s, 10ms, 10ms]}\n");
  h.send("{}");
  ASSERT_TRUE(h.run_until([&] { return h.dead.size() == 1; }));
  EXPECT_EQ(sink.request_count(), 1u);
}

TEST(WebhookSender, GoneDisablesTheEndpointUntilReload) {
  WebhookSink sink([](const SinkRequest&) { return SinkReply{SinkReply::Kind::Respond, 410}; });
  Harness h("          url: '" + url(sink) + "'\n");
  h.send("{}");
  ASSERT_TRUE(h.run_until([&] { return h.dead.size() == 1; }));
  h.send("{}");
  h.run_until([] { return false; }, 100ms);
  EXPECT_EQ(sink.request_count(), 1u);
  EXPECT_EQ(h.counter("pgfanout_webhook_dropped_total", {{"reason", "disabled"}}), 1);
  h.sender.reset_disabled();
  h.send("{}");
  ASSERT_TRUE(h.run_until([&] { return sink.request_count() == 2; }));
}

TEST(WebhookSender, HangingEndpointTimesOutAndIsRetried) {
  std::atomic<int> n{0};
  WebhookSink sink([&](const SinkRequest&) {
    return ++n == 1 ? SinkReply{SinkReply::Kind::Hang} : SinkReply{};
  });
  Harness h("          url: '" + url(sink) +
            "'\n          timeout: 300ms\n          retry: {schedule: [0s, 10ms]}\n");
  h.send("{}");
  ASSERT_TRUE(h.run_until([&] { return h.counter("run") == 1; }));
  EXPECT_EQ(h.counter("pgfanout_webhook_attempts_total", {{"status", "error"}}), 1);
  sink.release();
}

TEST(WebhookSender, ConnectionClosedMidResponseIsAnErrorAndRetried) {
  std::atomic<int> n{0};
  WebhookSink sink([&](const SinkRequest&) {
    return ++n == 1 ? SinkReply{SinkReply::Kind::CloseMidResponse} : SinkReply{};
  });
  Harness h("          url: '" + url(sink) + "'\n          retry: {schedule: [0s, 10ms]}\n");
  h.send("{}");
  ASSERT_TRUE(h.run_until([&] { return h.counter("run") == 1; }));
  EXPECT_EQ(h.counter("pgfanout_webhook_attempts_total", {{"status", "error"}}), 1);
  EXPECT_EQ(sink.request_count(), 2u);
}

TEST(WebhookSender, ConnectionRefusedIsAnError) {
  std::uint16_t port;
  {
    WebhookSink gone;
    port = gone.port();
  }
  Harness h("          url: 'http://127.0.0.1:" + std::to_string(port) +
            "/'\n          retry: {schedule: [0s]}\n");
  h.send("{}");
  ASSERT_TRUE(h.run_until([&] { return h.dead.size() == 1; }));
  EXPECT_EQ(h.dead[0].last_status, 0);
  EXPECT_NE(h.dead[0].last_error.find("connect"), std::string::npos) << h.dead[0].last_error;
}

TEST(WebhookSender, TlsWithAPrivateCa) {
  test::TestCa ca("DNS:localhost");
  WebhookSink sink({}, &ca);
  Harness h("          url: '" + url(sink, "/tls", "https", "localhost") +
            "'\n          ca_file: " + ca.ca_cert + "\n          secret: " + kSecret + "\n");
  h.send(R"({"id":1})");
  ASSERT_TRUE(h.run_until([&] { return h.counter("run") == 1; })) << h.counter("failed");
  EXPECT_EQ(sink.requests().at(0).target, "/tls");
  EXPECT_EQ(sink.requests().at(0).header("host"), "localhost:" + std::to_string(sink.port()));
}

TEST(WebhookSender, TlsWithAWrongHostNameIsRefused) {
  test::TestCa ca("DNS:other.example");
  WebhookSink sink({}, &ca);
  Harness h("          url: '" + url(sink, "/tls", "https", "localhost") +
            "'\n          ca_file: " + ca.ca_cert + "\n          retry: {schedule: [0s]}\n");
  h.send("{}");
  ASSERT_TRUE(h.run_until([&] { return h.dead.size() == 1; }));
  EXPECT_EQ(sink.request_count(), 0u);
  EXPECT_NE(h.dead[0].last_error.find("tls handshake"), std::string::npos) << h.dead[0].last_error;
}

TEST(WebhookSender, TlsSignedByAnUnknownCaIsRefused) {
  test::TestCa ca("DNS:localhost");
  WebhookSink sink({}, &ca);
  Harness h("          url: '" + url(sink, "/tls", "https", "localhost") +
            "'\n          retry: {schedule: [0s]}\n");
  h.send("{}");
  ASSERT_TRUE(h.run_until([&] { return h.dead.size() == 1; }));
  EXPECT_EQ(sink.request_count(), 0u);
  EXPECT_NE(h.dead[0].last_error.find("certificate verify failed"), std::string::npos)
      << h.dead[0].last_error;
}

TEST(WebhookSender, QueueOverflowIsDroppedAndCounted) {
  WebhookSink sink([](const SinkRequest&) { return SinkReply{SinkReply::Kind::Hang}; });
  webhook::WebhookConfig cfg;
  cfg.queue_limit = 4;
  Harness h("          url: '" + url(sink) +
                "'\n          timeout: 300ms\n"
                "          retry: {schedule: [0s]}\n",
            cfg);
  for (int i = 0; i < 10; ++i) h.send("{}");
  EXPECT_EQ(h.executor.pending(), 4u);
  EXPECT_EQ(h.counter("pgfanout_webhook_dropped_total", {{"reason", "overflow"}}), 6);
  EXPECT_EQ(h.counter("pgfanout_webhook_queue_depth"), 4);
  EXPECT_EQ(h.counter("failed"), 6);
  sink.release();
  ASSERT_TRUE(h.run_until([&] { return h.executor.pending() == 0; }));
}

TEST(WebhookSender, ShutdownDropsDeliveriesWaitingForARetry) {
  WebhookSink sink([](const SinkRequest&) { return SinkReply{SinkReply::Kind::Respond, 500}; });
  Harness h("          url: '" + url(sink) + "'\n          retry: {schedule: [0s, 1h]}\n");
  h.send("{}");
  h.send("{}");
  ASSERT_TRUE(h.run_until([&] { return sink.request_count() == 2; }));
  h.run_until([] { return false; }, 100ms);
  EXPECT_EQ(h.executor.pending(), 2u);
  h.executor.begin_shutdown();
  EXPECT_EQ(h.executor.pending(), 0u);
  EXPECT_EQ(h.counter("pgfanout_webhook_dropped_total", {{"reason", "shutdown"}}), 2);
}

TEST(WebhookSender, DurableEventsAreLeftToTheDeliveryWorker) {
  WebhookSink sink;
  Harness h("          url: '" + url(sink) + "'\n");
  rules::Event ev(rules::ParsedPayload::parse("c", "{}"), nullptr, std::chrono::steady_clock::now(),
                  42);
  h.executor.execute(*h.config->rules->rules()[0]->actions[0], ev, h.ctx());
  EXPECT_EQ(h.counter("run"), 1);
  EXPECT_EQ(h.executor.pending(), 0u);
  h.run_until([] { return false; }, 50ms);
  EXPECT_EQ(sink.request_count(), 0u);
}

}  // namespace
}  // namespace pgfanout::webhook
