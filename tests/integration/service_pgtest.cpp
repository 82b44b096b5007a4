// The daemon as a service, against the harness's PostgreSQL: the sd_notify sequence (READY only
// once LISTEN works, RELOADING/READY around SIGHUP, STOPPING, WATCHDOG pings), /healthz turning
// 503 while PostgreSQL is stopped and 200 again after, /metrics passing promtool (and a strict
// parser), a broken reload keeping HTTP up, an http.listen change keeping the old listener, and
// SIGTERM closing HTTP and exiting 0.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "support/TestSupport.hpp"

namespace pgfanout {
namespace {

using namespace std::chrono_literals;
using test::BlockingPg;
using test::DaemonProcess;

std::string config_text(const std::string& dsn, const std::string& listen = "127.0.0.1:0") {
  return "postgres:\n  dsn: \"" + dsn +
         "\"\n  heartbeat_interval: 300ms\n  heartbeat_timeout: 1500ms\n"
         "  reconnect_min: 50ms\n  reconnect_max: 500ms\n  connect_timeout: 2s\n"
         "http:\n  listen: " +
         listen +
         "\nshutdown:\n  drain_timeout: 3s\n"
         "rules:\n"
         "  - name: profile\n    channel: users_changed\n    actions:\n"
         "      - log: \"user {id}\"\n"
         "  - name: orders\n    channel: orders_changed\n    actions:\n"
         "      - log: \"order {id}\"\n";
}

// An AF_UNIX datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  NotifySocket() {
    path_ = std::filesystem::path(test::write_temp_file("x", "")).parent_path() / "notify.sock";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    timeval tv{0, 50'000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() { ::close(fd_); }
  const std::string& path() const { return path_; }

  // Receives datagrams until `until` holds for the messages so far (or `timeout`).
  bool receive_until(const std::function<bool(const std::vector<std::string>&)>& until,
                     std::chrono::milliseconds timeout = 15s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!until(messages) && std::chrono::steady_clock::now() < deadline) {
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) messages.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return until(messages);
  }
  bool receive_until_contains(const std::string& what, std::chrono::milliseconds timeout = 15s) {
    return receive_until(
        [&](const auto& ms) {
          for (const auto& m : ms) {
            if (m.find(what) != std::string::npos) return true;
          }
          return false;
        },
        timeout);
  }
  // The state changes (READY=1, RELOADING=1, STOPPING=1) in the order they came.
  std::vector<std::string> states() const {
    std::vector<std::string> out;
    for (const auto& m : messages) {
      for (const char* s : {"READY=1", "RELOADING=1", "STOPPING=1"}) {
        if (m.find(s) != std::string::npos) out.push_back(s);
      }
    }
    return out;
  }
  std::vector<std::string> messages;

 private:
  std::string path_;
  int fd_ = -1;
};

TEST(Service, NotifiesSystemdInOrder) {
  test::ScratchDatabase db("svc");
  auto config = test::write_temp_file("pgfanout.yaml", config_text(db.dsn()));
  NotifySocket sock;
  DaemonProcess d({"run", "--config", config}, {{"NOTIFY_SOCKET", sock.path()},
                                                {"WATCHDOG_USEC", "400000"},
                                                {"WATCHDOG_PID", DaemonProcess::kChildPid}});
  ASSERT_TRUE(sock.receive_until_contains("READY=1")) << d.output();
  // READY only once LISTEN is established and HTTP is up.
  EXPECT_TRUE(d.output_contains("HTTP listening on")) << d.output();
  EXPECT_TRUE(d.output_contains("listening on 2 channel(s)")) << d.output();
  EXPECT_TRUE(d.output_contains("systemd watchdog enabled: pinging every 200 ms")) << d.output();
  // Pings keep coming at half the interval.
  EXPECT_TRUE(sock.receive_until([](const auto& ms) {
    return std::count(ms.begin(), ms.end(), std::string("WATCHDOG=1")) >= 4;
  })) << d.output();
  BlockingPg s(db.dsn());
  s.notify("users_changed", R"({"id": 1})");
  EXPECT_TRUE(d.wait_for_output("user 1")) << d.output();

  d.signal(SIGHUP);
  ASSERT_TRUE(sock.receive_until([&](const auto&) { return sock.states().size() >= 3; }))
      << d.output();
  d.signal(SIGTERM);
  ASSERT_TRUE(sock.receive_until_contains("STOPPING=1")) << d.output();
  EXPECT_EQ(d.wait(), 0) << d.output();
  EXPECT_EQ(sock.states(),
            (std::vector<std::string>{"READY=1", "RELOADING=1", "READY=1", "STOPPING=1"}));
  bool has_status = false, has_monotonic = false;
  for (const auto& m : sock.messages) {
    has_status =
        has_status || m.find("STATUS=listening on 2 channels; 1 notification") != std::string::npos;
    if (m.find("RELOADING=1") != std::string::npos) {
      has_monotonic = m.find("MONOTONIC_USEC=") != std::string::npos;
    }
  }
  EXPECT_TRUE(has_status) << ::testing::PrintToString(sock.messages);
  EXPECT_TRUE(has_monotonic);
}

TEST(Service, NoReadyWhilePostgresIsUnreachable) {
  NotifySocket sock;
  auto config = test::write_temp_file(
      "pgfanout.yaml", config_text("host=127.0.0.1 port=1 user=postgres dbname=postgres"));
  DaemonProcess d({"run", "--config", config}, {{"NOTIFY_SOCKET", sock.path()}});
  int port = d.http_port();
  ASSERT_NE(port, 0) << d.output();
  EXPECT_EQ(test::http_get(port, "/healthz").status, 503);
  EXPECT_FALSE(sock.receive_until_contains("READY=1", 1500ms));
  EXPECT_TRUE(sock.receive_until_contains("STATUS=connecting to PostgreSQL"));
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.output();
}

// Starts the cluster again however the test ends, so later tests still have a server.
struct PostgresRestarter {
  ~PostgresRestarter() {
    if (stopped) start();
  }
  void stop() {
    stopped = true;
    EXPECT_EQ(std::system(
                  (test::harness_env("PGFANOUT_TEST_PGCTL") + " -m fast stop >/dev/null").c_str()),
              0);
  }
  void start() {
    int rc = std::system(
        (test::harness_env("PGFANOUT_TEST_PGCTL") + " -w -t 60 start >/dev/null").c_str());
    EXPECT_EQ(rc, 0);
    if (rc == 0) stopped = false;
  }
  bool stopped = false;
};

TEST(Service, HealthzFollowsPostgres) {
  auto config = test::write_temp_file("pgfanout.yaml", config_text(test::test_dsn()));
  DaemonProcess d({"run", "--config", config});
  int port = d.http_port();
  ASSERT_NE(port, 0) << d.output();
  ASSERT_TRUE(test::wait_until([&] { return test::http_get(port, "/healthz").status == 200; }))
      << d.output();
  auto ok = test::http_get(port, "/healthz");
  EXPECT_EQ(ok.body,
            "{\"status\":\"ok\",\"checks\":{\"postgres\":{\"ok\":true,\"detail\":\"listening on "
            "2 channels\"}}}\n");
  EXPECT_NE(ok.headers.find("Content-Type: application/json"), std::string::npos);

  PostgresRestarter pg;
  pg.stop();
  ASSERT_TRUE(test::wait_until([&] { return test::http_get(port, "/healthz").status == 503; }))
      << d.output();
  auto down = test::http_get(port, "/healthz");
  EXPECT_EQ(down.body,
            "{\"status\":\"unhealthy\",\"checks\":{\"postgres\":{\"ok\":false,\"detail\":"
            "\"disconnected\"}}}\n");
  EXPECT_EQ(test::http_get(port, "/metrics").status, 200);  // metrics still served
  pg.start();
  EXPECT_TRUE(test::wait_until([&] { return test::http_get(port, "/healthz").status == 200; }, 20s))
      << d.output();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.output();
}

// A strict reading of the Prometheus text format 0.0.4: every sample belongs to the family its
// HELP and TYPE lines announced, names and labels are well formed, values are numbers, histogram
// buckets are cumulative and end with +Inf equal to _count.
void check_exposition(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
  std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)");
  std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (-?[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?|\+Inf|-Inf|NaN)$)");
  std::string family, family_type;
  std::set<std::string> seen;
  std::map<std::string, double> last_bucket;
  int samples = 0;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, help)) {
      family = m[1];
      EXPECT_TRUE(seen.insert(family).second) << "family twice: " << family;
      family_type.clear();
      continue;
    }
    if (std::regex_match(line, m, type)) {
      EXPECT_EQ(m[1], family) << line;
      family_type = m[2];
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, m, sample)) << "bad line: " << line;
    ++samples;
    std::string name = m[1];
    if (family_type == "histogram") {
      EXPECT_TRUE(name == family + "_bucket" || name == family + "_sum" ||
                  name == family + "_count")
          << line;
      std::string labels = m[2];
      double value = std::stod(m[3]);
      auto le = labels.find("le=\"");
      std::string series = std::regex_replace(labels, std::regex(R"(,?le="[^"]*")"), "");
      if (series == "{}") series.clear();  // a histogram without labels: its _count has none
      if (name == family + "_bucket") {
        ASSERT_NE(le, std::string::npos) << line;
        EXPECT_GE(value, last_bucket[series]) << "buckets not cumulative: " << line;
        last_bucket[series] = value;
      } else if (name == family + "_count") {
        EXPECT_EQ(value, last_bucket[series]) << "+Inf bucket differs from _count: " << line;
        last_bucket.erase(series);
      }
    } else {
      EXPECT_EQ(name, family) << line;
      if (family_type == "counter") {
        EXPECT_TRUE(name.ends_with("_total")) << line;
      }
    }
  }
  EXPECT_GT(samples, 20);
}

TEST(Service, MetricsParseAndNameEverySeries) {
  test::ScratchDatabase db("svcmetrics");
  auto config = test::write_temp_file("pgfanout.yaml", config_text(db.dsn()));
  DaemonProcess d({"run", "--config", config});
  int port = d.http_port();
  ASSERT_TRUE(d.wait_for_output("ready")) << d.output();
  BlockingPg s(db.dsn());
  s.notify("users_changed", R"({"id": 5})");
  s.notify("users_changed", R"({"nope": 5})");  // skipped: no {id}
  s.notify("orders_changed", R"({"id": 6})");
  ASSERT_TRUE(d.wait_for_output("order 6")) << d.output();
  test::http_get(port, "/healthz");
  auto r = test::http_get(port, "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  check_exposition(r.body);
  for (const char* series : {
           "pgfanout_notifications_total{channel=\"users_changed\"} 2",
           "pgfanout_actions_total{rule=\"orders\",kind=\"log\"} 1",
           "pgfanout_actions_skipped_total{rule=\"profile\",kind=\"log\"} 1",
           "pgfanout_actions_failed_total{rule=\"profile\",kind=\"log\"} 0",
           "pgfanout_action_latency_seconds_count{rule=\"orders\",kind=\"log\"} 1",
           "pgfanout_actions_pending 0",
           "pgfanout_pg_connected 1",
           "pgfanout_pg_listening_channels 2",
           "pgfanout_pg_reconnects_total 0",
           "pgfanout_subscribers 0",
           "pgfanout_webhook_attempts_total{status=\"5xx\"} 0",
           "pgfanout_webhook_queue_limit 10000",
           "pgfanout_reloads_total{result=\"failed\"} 0",
           "pgfanout_reloads_total{result=\"ok\"} 0",
           "pgfanout_http_requests_total{route=\"/healthz\",code=\"200\"} 1",
           "pgfanout_http_connections 1",
           "pgfanout_build_info{version=\"" PGFANOUT_VERSION "\"} 1",
           "\npgfanout_uptime_seconds ",
           "\nprocess_resident_memory_bytes ",
           "\nprocess_open_fds ",
           "\nprocess_start_time_seconds ",
       }) {
    EXPECT_NE(r.body.find(series), std::string::npos) << series;
  }

  // make test's preflight guarantees promtool; a skip here would hide a broken install.
  ASSERT_EQ(std::system("command -v promtool >/dev/null"), 0)
      << "promtool is missing (Debian package prometheus, scripts/install-deps.sh installs it)";
  auto file = test::write_temp_file("metrics.txt", r.body);
  auto out = test::write_temp_file("promtool.out", "");
  int rc = std::system(("promtool check metrics <" + file + " >" + out + " 2>&1").c_str());
  std::ifstream in(out);
  std::stringstream report;
  report << in.rdbuf();
  EXPECT_EQ(rc, 0) << report.str();
  EXPECT_EQ(report.str(), "") << "promtool lint:\n" << report.str();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0);
}

TEST(Service, ReloadKeepsHttpServingAndTheOldListener) {
  test::ScratchDatabase db("svcreload");
  auto config = test::write_temp_file("pgfanout.yaml", config_text(db.dsn()));
  DaemonProcess d({"run", "--config", config});
  int port = d.http_port();
  ASSERT_TRUE(d.wait_for_output("ready")) << d.output();

  { std::ofstream(config) << "postgres: {dsn: \"" << db.dsn() << "\"}\nrules:\n  - name: x\n"; }
  d.signal(SIGHUP);
  ASSERT_TRUE(d.wait_for_output("reload failed")) << d.output();
  EXPECT_EQ(test::http_get(port, "/healthz").status, 200);
  EXPECT_EQ(test::http_get(port, "/metrics").status, 200);

  // A new listen address cannot take effect without a restart: warned, the old one stays.
  { std::ofstream(config) << config_text(db.dsn(), "127.0.0.1:1"); }
  d.signal(SIGHUP);
  ASSERT_TRUE(d.wait_for_output("reloaded: 2 rule(s)")) << d.output();
  EXPECT_TRUE(
      d.output_contains("reload: http.listen changed from \"127.0.0.1:0\" to "
                        "\"127.0.0.1:1\"; it takes effect after a restart"))
      << d.output();
  EXPECT_EQ(test::http_get(port, "/healthz").status, 200);
  auto metrics = test::http_get(port, "/metrics").body;
  EXPECT_NE(metrics.find("pgfanout_reloads_total{result=\"failed\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("pgfanout_reloads_total{result=\"ok\"} 1"), std::string::npos);
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.output();
}

TEST(Service, SigtermStopsHttpAndExitsZero) {
  test::ScratchDatabase db("svcterm");
  auto config = test::write_temp_file("pgfanout.yaml", config_text(db.dsn()));
  DaemonProcess d({"run", "--config", config});
  int port = d.http_port();
  ASSERT_TRUE(d.wait_for_output("ready")) << d.output();
  BlockingPg s(db.dsn());
  s.notify("orders_changed", R"({"id": 1})");
  ASSERT_TRUE(d.wait_for_output("order 1")) << d.output();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.output();
  EXPECT_TRUE(d.output_contains("received SIGTERM, shutting down"));
  EXPECT_TRUE(d.output_contains("pgfanout stopped"));
  EXPECT_EQ(test::http_get(port, "/healthz").status, 0);  // nobody listens any more
}

}  // namespace
}  // namespace pgfanout
