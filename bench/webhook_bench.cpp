// Webhook throughput and latency against a local keep-alive sink that answers 200 at once.
//
//   baseline   8 threads, each a blocking Beast client on one kept-alive connection
//   memory     the in-memory executor (plain NOTIFY rules), signed, 8 connections, at most
//              200 deliveries outstanding; latency = enqueued -> received by the sink
//   durable    the daemon with a durable rule: rows inserted in batches, recorded in
//              pgfanout.deliveries and sent; latency = insert committed -> received
//              (needs PGFANOUT_TEST_DSN, e.g. under tests/harness/with-servers.sh)
//
// Usage: webhook_bench [memory_count] [durable_count]
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "app/Config.hpp"
#include "metrics/Metrics.hpp"
#include "rules/RuleSet.hpp"
#include "support/TestSupport.hpp"
#include "support/WebhookSink.hpp"
#include "webhook/WebhookExecutor.hpp"
#include "webhook/WebhookSender.hpp"

using namespace pgfanout;
using namespace std::chrono_literals;
using SysClock = std::chrono::system_clock;
namespace bhttp = boost::beast::http;

namespace {

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

double p99_ms(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, v.size() * 99 / 100)];
}

double p50_ms(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double ms(SysClock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

int index_of(const std::string& body) {
  auto at = body.find("\"i\":");
  return at == std::string::npos ? -1 : std::atoi(body.c_str() + at + 4);
}

void baseline(int count) {
  test::WebhookSink sink;
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<std::vector<double>> lat(kThreads);
  auto start = SysClock::now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      boost::asio::io_context io;
      boost::asio::ip::tcp::socket s(io);
      s.connect({boost::asio::ip::make_address("127.0.0.1"), sink.port()});
      boost::beast::flat_buffer buf;
      for (int i = t; i < count; i += kThreads) {
        auto t0 = SysClock::now();
        bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/hook", 11};
        req.set(bhttp::field::host, "127.0.0.1");
        req.set(bhttp::field::content_type, "application/json");
        req.body() = "{\"i\":" + std::to_string(i) + ",\"op\":\"INSERT\",\"table\":\"orders\"}";
        req.prepare_payload();
        bhttp::write(s, req);
        bhttp::response<bhttp::string_body> res;
        bhttp::read(s, buf, res);
        lat[static_cast<std::size_t>(t)].push_back(ms(SysClock::now() - t0));
      }
    });
  }
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(SysClock::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::printf(
      "baseline (raw Beast, 8 keep-alive connections)  %8.0f req/s   p50 %6.2f ms   p99 %6.2f ms\n",
      count / secs, p50_ms(all), p99_ms(all));
}

void memory(int count) {
  test::WebhookSink sink;
  boost::asio::io_context io;
  Metrics metrics;
  webhook::WebhookConfig cfg;
  cfg.queue_limit = 1'000'000;
  webhook::WebhookSender sender(io, metrics, cfg);
  webhook::WebhookExecutor executor(io, sender, cfg.queue_limit);
  auto r = app::load_config_text(
      "postgres: {dsn: 'postgresql:///x'}\nrules:\n  - name: hook\n    channel: c\n"
      "    actions:\n      - webhook: {url: 'http://127.0.0.1:" +
          std::to_string(sink.port()) + "/hook', secret: " + kSecret + "}\n",
      "bench.yaml");
  const auto& rule = *r.config->rules->rules()[0];
  std::vector<SysClock::time_point> enqueued(static_cast<std::size_t>(count));
  int next = 0;
  auto start = SysClock::now();
  auto feed = [&] {
    while (next < count && executor.pending() < 200) {
      rules::ActionContext ctx;
      ctx.rule = &rule;
      ctx.rules = r.config->rules;
      enqueued[static_cast<std::size_t>(next)] = SysClock::now();
      rules::Event ev(
          rules::ParsedPayload::parse(
              "c", "{\"i\":" + std::to_string(next) + ",\"op\":\"INSERT\",\"table\":\"orders\"}"),
          nullptr, std::chrono::steady_clock::now());
      executor.execute(*rule.actions[0], ev, ctx);
      ++next;
    }
  };
  while (next < count || executor.pending() > 0) {
    feed();
    io.run_for(1ms);
  }
  double secs = std::chrono::duration<double>(SysClock::now() - start).count();
  std::vector<double> lat;
  for (const auto& req : sink.requests()) {
    int i = index_of(req.body);
    if (i >= 0) lat.push_back(ms(req.received - enqueued[static_cast<std::size_t>(i)]));
  }
  std::printf(
      "memory  (executor, signed, 8 connections)       %8.0f del/s   p50 %6.2f ms   p99 %6.2f ms   "
      "(%zu received, %d connections)\n",
      count / secs, p50_ms(lat), p99_ms(lat), lat.size(), sink.connections_accepted());
}

void durable(int count) {
  test::WebhookSink sink;
  test::ScratchDatabase db("bench");
  test::BlockingPg s(db.dsn());
  s.exec("CREATE TABLE public.orders (id int PRIMARY KEY, v text)");
  auto config = test::write_temp_file(
      "bench.yaml", "postgres: {dsn: \"" + db.dsn() +
                        "\"}\nhttp: {listen: 127.0.0.1:0}\nconsumer: bench\n"
                        "outbox: {poll_interval: 100ms}\n"
                        "webhook: {poll_interval: 100ms, claim_batch: 500, max_in_flight: 512}\n"
                        "watch: [{table: public.orders, channel: orders_changed, durable: true}]\n"
                        "rules:\n  - name: hook\n    channel: orders_changed\n    durable: true\n"
                        "    actions:\n      - webhook: {url: 'http://127.0.0.1:" +
                        std::to_string(sink.port()) + "/orders/{id}', secret: " + kSecret + "}\n");
  auto [code, out] = test::run_pgfanout({"install", "--config", config});
  if (code != 0) {
    std::fprintf(stderr, "install failed: %s\n", out.c_str());
    return;
  }
  test::DaemonProcess d({"run", "--config", config, "--log-level", "info"});
  if (!d.wait_for_output("ready")) {
    std::fprintf(stderr, "daemon did not start: %s\n", d.output().c_str());
    return;
  }
  std::this_thread::sleep_for(500ms);
  constexpr int kBatch = 500;
  std::vector<SysClock::time_point> committed(static_cast<std::size_t>(count) + 1);
  auto start = SysClock::now();
  for (int i = 0; i < count; i += kBatch) {
    s.exec("INSERT INTO orders SELECT g, 'x' FROM generate_series(" + std::to_string(i + 1) + ", " +
           std::to_string(std::min(count, i + kBatch)) + ") g");
    auto now = SysClock::now();
    for (int k = i + 1; k <= std::min(count, i + kBatch); ++k) {
      committed[static_cast<std::size_t>(k)] = now;
    }
  }
  if (!test::wait_until([&] { return static_cast<int>(sink.request_count()) >= count; }, 300s)) {
    std::fprintf(stderr, "durable: only %zu of %d received\n", sink.request_count(), count);
  }
  auto reqs = sink.requests();
  SysClock::time_point last{};
  std::vector<double> lat;
  for (const auto& req : reqs) {
    last = std::max(last, req.received);
    int id = std::atoi(req.target.c_str() + 8);  // "/orders/<id>"
    if (id > 0 && id <= count)
      lat.push_back(ms(req.received - committed[static_cast<std::size_t>(id)]));
  }
  double secs = std::chrono::duration<double>(last - start).count();
  std::printf(
      "durable (daemon, outbox -> deliveries -> sink)   %8.0f del/s   p50 %6.2f ms   p99 %6.2f ms  "
      " (%zu received)\n",
      static_cast<double>(reqs.size()) / secs, p50_ms(lat), p99_ms(lat), reqs.size());
  // Latency when idle: single-row transactions 20 ms apart (the doorbell path, no backlog).
  constexpr int kSingles = 200;
  std::vector<SysClock::time_point> single_at(kSingles);
  auto before = reqs.size();
  for (int k = 0; k < kSingles; ++k) {
    s.exec("INSERT INTO orders VALUES (" + std::to_string(count + 1 + k) + ", 'x')");
    single_at[static_cast<std::size_t>(k)] = SysClock::now();
    std::this_thread::sleep_for(20ms);
  }
  test::wait_until([&] { return sink.request_count() >= before + kSingles; }, 30s);
  std::vector<double> single_lat;
  for (const auto& req : sink.requests()) {
    int id = std::atoi(req.target.c_str() + 8);
    if (id > count) {
      single_lat.push_back(ms(req.received - single_at[static_cast<std::size_t>(id - count - 1)]));
    }
  }
  std::printf(
      "durable, one row every 20 ms (commit -> received)                   p50 %6.2f ms   p99 "
      "%6.2f ms   (%zu received)\n",
      p50_ms(single_lat), p99_ms(single_lat), single_lat.size());
  d.signal(SIGTERM);
  d.wait();
}

}  // namespace

int main(int argc, char** argv) {
  int memory_count = argc > 1 ? std::atoi(argv[1]) : 50'000;
  int durable_count = argc > 2 ? std::atoi(argv[2]) : 20'000;
  baseline(memory_count);
  memory(memory_count);
  if (std::getenv("PGFANOUT_TEST_DSN") != nullptr) {
    durable(durable_count);
  } else {
    std::printf(
        "durable: skipped (no PGFANOUT_TEST_DSN; run under tests/harness/with-servers.sh)\n");
  }
}
