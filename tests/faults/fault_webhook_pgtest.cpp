// Fault scenarios 6 and 7, durable webhooks: the endpoint answers 500, hangs, or resets the
// connection for a while and then recovers; and two instances share one database while one of
// them is killed with SIGKILL. Every durable event must be delivered (answered 2xx) at least
// once; duplicates are counted.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>

#include <gtest/gtest.h>

#include "faults/FaultSupport.hpp"
#include "support/WebhookSink.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

// The sink records which targets it answered with 200.
struct Endpoint {
  enum class Mode { Ok, Error500, Hang, Reset };
  std::atomic<Mode> mode{Mode::Ok};
  std::mutex m;
  std::map<std::string, int> delivered;  // target -> 2xx answers
  WebhookSink sink{[this](const SinkRequest& r) {
    switch (mode.load()) {
      case Mode::Error500:
        return SinkReply{SinkReply::Kind::Respond, 500, {}, "down", false};
      case Mode::Hang:
        return SinkReply{SinkReply::Kind::Hang};
      case Mode::Reset:
        return SinkReply{SinkReply::Kind::CloseMidResponse};
      case Mode::Ok:
        break;
    }
    std::lock_guard lock(m);
    ++delivered[r.target];
    return SinkReply{};
  }};
  long long distinct() {
    std::lock_guard lock(m);
    return static_cast<long long>(delivered.size());
  }
  long long duplicates() {
    std::lock_guard lock(m);
    long long d = 0;
    for (auto& [_, n] : delivered) d += n - 1;
    return d;
  }
};

std::string webhook_config(const std::string& dsn, const std::string& consumer, int port,
                           int retry_entries) {
  std::string schedule = "[0s";
  for (int i = 1; i < retry_entries; ++i) schedule += ", 400ms";
  schedule += "]";
  return write_temp_file(
      "pgfanout-" + consumer + ".yaml",
      "postgres:\n  dsn: \"" + dsn +
          "\"\n  reconnect_min: 50ms\n  reconnect_max: 500ms\n"
          "http:\n  listen: 127.0.0.1:0\nconsumer: " +
          consumer +
          "\noutbox:\n  poll_interval: 200ms\n  retry_delay: 100ms\n"
          "shutdown:\n  drain_timeout: 1s\n"
          "webhook:\n  poll_interval: 100ms\n  lease: 2s\n  claim_batch: 50\n"
          "watch:\n  - table: public.items\n    channel: items_changed\n    durable: true\n"
          "rules:\n  - name: items\n    channel: items_changed\n    durable: true\n"
          "    actions:\n      - webhook:\n          url: 'http://127.0.0.1:" +
          std::to_string(port) +
          "/items/{id}'\n          secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
          "          timeout: 500ms\n          retry:\n            schedule: " +
          schedule + "\n");
}

// Inserts rows 10 at a time until stopped; `next` is the last id committed.
struct Writer {
  explicit Writer(std::string dsn) : dsn_(std::move(dsn)) {
    t_ = std::thread([this] {
      LoadConn w(dsn_);
      while (running_) {
        if (w.run("INSERT INTO public.items SELECT g, 'x' FROM generate_series($1::int, "
                  "$1::int + 9) g",
                  {std::to_string(next + 1)})) {
          next += 10;
        }
        std::this_thread::sleep_for(20ms);
      }
    });
  }
  ~Writer() { stop(); }
  void stop() {
    running_ = false;
    if (t_.joinable()) t_.join();
  }
  std::atomic<long long> next{0};

 private:
  std::string dsn_;
  std::atomic<bool> running_{true};
  std::thread t_;
};

void run_endpoint_fault(const std::string& name, Endpoint::Mode fault_mode) {
  ScratchDatabase db("fhook");
  {
    BlockingPg s(db.dsn());
    s.exec("CREATE TABLE public.items (id int PRIMARY KEY, v text)");
  }
  Endpoint ep;
  auto fault_time = long_tests() ? 10s : 3s;
  int entries = static_cast<int>(fault_time / 1s) * 6 + 20;
  auto config = webhook_config(db.dsn(), "fault-a", ep.sink.port(), entries);
  auto [code, out] = run_pgfanout({"install", "--config", config});
  ASSERT_EQ(code, 0) << out;
  DaemonProcess daemon({"run", "--config", config});
  ASSERT_TRUE(daemon.wait_for_output("ready")) << daemon.output();

  Writer writer(db.dsn());
  std::this_thread::sleep_for(1s);
  ep.mode = fault_mode;
  std::this_thread::sleep_for(fault_time);
  ep.mode = Endpoint::Mode::Ok;
  ep.sink.release();
  auto recovered_from = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1s);
  writer.stop();

  Figures f;
  f.scenario = "webhook_" + name;
  f.written = writer.next;
  EXPECT_TRUE(wait_until([&] { return ep.distinct() >= f.written; }, 60s))
      << ep.distinct() << " of " << f.written << "\n"
      << daemon.output();
  f.recover_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - recovered_from)
                     .count();
  std::this_thread::sleep_for(500ms);
  f.acted = ep.distinct();
  f.lost = f.written - f.acted;
  f.duplicates = ep.duplicates();
  f.extra["requests"] = static_cast<long long>(ep.sink.request_count());
  BlockingPg s(db.dsn());
  f.extra["dead"] = std::atoll(
      s.value("SELECT count(*)::text FROM pgfanout.deliveries WHERE state = 'dead'")->c_str());
  f.report();
  EXPECT_EQ(f.lost, 0);
  EXPECT_EQ(f.extra["dead"], 0);
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.output();
}

TEST(FaultWebhook, EndpointAnswering500ThenRecovering) {
  run_endpoint_fault("500", Endpoint::Mode::Error500);
}

TEST(FaultWebhook, EndpointHangingThenRecovering) {
  run_endpoint_fault("hang", Endpoint::Mode::Hang);
}

TEST(FaultWebhook, EndpointResettingThenRecovering) {
  run_endpoint_fault("reset", Endpoint::Mode::Reset);
}

TEST(FaultWebhook, TwoInstancesOneKilledTheOtherDeliversOnce) {
  ScratchDatabase db("fhook2");
  {
    BlockingPg s(db.dsn());
    s.exec("CREATE TABLE public.items (id int PRIMARY KEY, v text)");
  }
  Endpoint ep;
  auto config_a = webhook_config(db.dsn(), "fault-a", ep.sink.port(), 20);
  auto config_b = webhook_config(db.dsn(), "fault-b", ep.sink.port(), 20);
  auto [code, out] = run_pgfanout({"install", "--config", config_a});
  ASSERT_EQ(code, 0) << out;
  DaemonProcess a({"run", "--config", config_a});
  DaemonProcess b({"run", "--config", config_b});
  ASSERT_TRUE(a.wait_for_output("ready")) << a.output();
  ASSERT_TRUE(b.wait_for_output("ready")) << b.output();

  Writer writer(db.dsn());
  std::this_thread::sleep_for(long_tests() ? 10s : 2s);
  a.signal(SIGKILL);
  EXPECT_EQ(a.wait(), 128 + SIGKILL);
  auto killed = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(long_tests() ? 10s : 2s);
  writer.stop();

  Figures f;
  f.scenario = "webhook_two_instances_one_killed";
  f.written = writer.next;
  EXPECT_TRUE(wait_until([&] { return ep.distinct() >= f.written; }, 60s))
      << ep.distinct() << " of " << f.written << "\n"
      << b.output();
  f.recover_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - killed)
                     .count();
  std::this_thread::sleep_for(1s);  // anything sent twice would arrive by now
  f.acted = ep.distinct();
  f.lost = f.written - f.acted;
  f.duplicates = ep.duplicates();
  f.report();
  EXPECT_EQ(f.lost, 0);
  // Only deliveries in flight at the kill may be sent twice (after their lease ran out).
  EXPECT_LE(f.duplicates, 50);
  b.signal(SIGTERM);
  EXPECT_EQ(b.wait(), 0) << b.output();
}

}  // namespace
}  // namespace pgfanout::test
