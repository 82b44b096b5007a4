// Fault scenario: several app hosts. A database host (PostgreSQL, a Redis Cluster of 3 primaries
// and 3 replicas) and three app hosts, each a Linux network namespace joined by veth pairs to a
// bridge in a switch namespace of its own (so the machine's firewall rules do not apply between
// them); one pgfanout per app host, sharing the
// database. The test machine reaches every host over one more veth into the switch. All of it is
// made and removed by the test (addresses in 10.213.0.0/16, names starting with "pgf").
//
// It shows: a client publish on host A reaches subscribers on B and C (through PostgreSQL); a
// durable webhook is delivered once across the three; evictions done by all three leave no stale
// key; with host B's daemon SIGKILLed (and started again) and later B's link cut for a while and
// restored, A and C keep delivering, B's clients move to A or C and resume with Last-Event-ID, and
// after quiescence no cache key is stale and no durable event is lost.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "FaultSupport.hpp"
#include "support/WebhookSink.hpp"
#include "support/WsClient.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

int sh(const std::string& cmd) {
  int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The network: namespaces `<prefix>db`, `<prefix>a`, `<prefix>b`, `<prefix>c` and the switch
// `<prefix>sw`; the test machine is .254 on the same /24.
class Hosts {
 public:
  Hosts() : prefix_("pgf" + std::to_string(::getpid() % 100000)) {
    net_ = "10.213." + std::to_string(::getpid() % 250) + ".";
    ok_ = sh("ip netns add " + ns("sw")) == 0 &&
          sh("ip -n " + ns("sw") + " link add br0 type bridge") == 0 &&
          sh("ip -n " + ns("sw") + " link set br0 up") == 0 &&
          sh("ip -n " + ns("sw") + " link set lo up") == 0;
    // The test machine's own leg.
    ok_ = ok_ && sh("ip link add " + prefix_ + "t type veth peer name vt netns " + ns("sw")) == 0 &&
          sh("ip addr add " + net_ + "254/24 dev " + prefix_ + "t") == 0 &&
          sh("ip link set " + prefix_ + "t up") == 0 &&
          sh("ip -n " + ns("sw") + " link set vt master br0 up") == 0;
    for (const char* h : {"db", "a", "b", "c"}) {
      std::string n = ns(h);
      ok_ = ok_ && sh("ip netns add " + n) == 0 &&
            sh("ip -n " + ns("sw") + " link add v" + h + " type veth peer name eth0 netns " + n) ==
                0 &&
            sh("ip -n " + ns("sw") + " link set v" + std::string(h) + " master br0 up") == 0 &&
            sh("ip -n " + n + " addr add " + ip(h) + "/24 dev eth0") == 0 &&
            sh("ip -n " + n + " link set eth0 up") == 0 &&
            sh("ip -n " + n + " link set lo up") == 0;
    }
  }
  ~Hosts() {
    for (const char* h : {"db", "a", "b", "c", "sw"}) {
      sh("ip netns pids " + ns(h) + " | xargs -r kill -9");
      sh("ip netns del " + ns(h));
    }
    sh("ip link del " + prefix_ + "t");
  }
  bool ok() const { return ok_; }
  std::string ns(const std::string& host) const { return prefix_ + host; }
  std::string ip(const std::string& host) const {
    if (host == "db") return net_ + "1";
    if (host == "me") return net_ + "254";
    return net_ + std::to_string(10 + (host[0] - 'a' + 1));  // a .11, b .12, c .13
  }
  std::vector<std::string> in(const std::string& host) const {
    return {"ip", "netns", "exec", ns(host)};
  }
  // Takes the host's link down (its packets go nowhere) and up again.
  void cut(const std::string& host) { sh("ip -n " + ns("sw") + " link set v" + host + " down"); }
  void restore(const std::string& host) { sh("ip -n " + ns("sw") + " link set v" + host + " up"); }

 private:
  std::string prefix_, net_;
  bool ok_ = false;
};

const std::string kClusterScript =
    std::string(PGFANOUT_SOURCE_DIR) + "/tests/harness/redis-cluster.sh";

// PostgreSQL 15 and a Redis Cluster on the database host.
class DatabaseHost {
 public:
  explicit DatabaseHost(const Hosts& hosts) : hosts_(hosts) {
    // Its own directory: the postgres user must reach it (the test's temporary ones are 0700).
    char templ[] = "/tmp/pgfanout-dbhost.XXXXXX";
    dir_ = ::mkdtemp(templ) != nullptr ? templ : "";
    const std::string bin = "/usr/lib/postgresql/15/bin/";
    sh("chown postgres " + dir_);
    ok_ = sh("runuser -u postgres -- " + bin + "initdb -D " + dir_ + "/pg -U postgres -A trust " +
             "-E UTF8 --locale=C.UTF-8") == 0;
    std::ofstream(dir_ + "/pg/pg_hba.conf", std::ios::app)
        << "host all all " << hosts.ip("me").substr(0, hosts.ip("me").rfind('.'))
        << ".0/24 trust\n";
    ok_ = ok_ && sh(join(hosts.in("db")) + " runuser -u postgres -- " + bin + "pg_ctl -D " + dir_ +
                    "/pg -l " + dir_ + "/pg.log -w -o \"-c listen_addresses=" + hosts.ip("db") +
                    " -c port=5432 -c unix_socket_directories=" + dir_ +
                    " -c fsync=off -c synchronous_commit=off -c max_connections=200\" start") == 0;
    // A Redis Cluster of 3 primaries and 3 replicas on the database host's address.
    // (Nodes listening on an address other than loopback need --protected-mode no, which the
    // script sets: they accept only the test's private network.)
    ok_ = ok_ &&
          std::system((join(hosts.in("db")) + " env REDIS_CLUSTER_HOST=" + hosts.ip("db") + " " +
                       kClusterScript + " start " + dir_ + "/redis > " + dir_ + "/cluster.out 2>&1")
                          .c_str()) == 0;
    std::ifstream ports(dir_ + "/redis/ports");
    for (int p; ports >> p;) redis_ports.push_back(p);
    ok_ = ok_ && redis_ports.size() == 6;
    std::ifstream out(dir_ + "/cluster.out");
    log.assign(std::istreambuf_iterator<char>(out), {});
  }
  ~DatabaseHost() {
    sh(join(hosts_.in("db")) + " runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D " +
       dir_ + "/pg -m immediate stop");
    sh(kClusterScript + " stop " + dir_ + "/redis");
    std::filesystem::remove_all(dir_);
  }
  bool ok() const { return ok_; }
  // The cluster's nodes, as `cluster:` seeds.
  std::string redis_seeds() const {
    std::string out;
    for (int p : redis_ports) {
      out += (out.empty() ? "\"" : ", \"") + hosts_.ip("db") + ":" + std::to_string(p) + "\"";
    }
    return "[" + out + "]";
  }
  std::vector<int> redis_ports;
  std::string log;  // what starting the cluster printed
  std::string dsn() const {
    return "host=" + hosts_.ip("db") + " port=5432 user=postgres dbname=postgres";
  }

 private:
  static std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += s + " ";
    return out;
  }
  const Hosts& hosts_;
  std::string dir_;
  bool ok_ = false;
};

// A durable-topic SSE client that follows its events across hosts: read in a thread of its own
// (so the daemon never sees it as slow), moved to another host with the last id it saw. When the
// host ends the stream (a resume larger than its send queue goes out in parts) it connects again
// with the last id it saw, as a browser's EventSource does.
class SseFollower {
 public:
  explicit SseFollower(std::string host) { open(std::move(host), {}); }
  ~SseFollower() { stop(); }

  void move_to(std::string host) {
    stop();  // first: what it reads until then counts as seen
    open(std::move(host), last_id_);
  }
  std::map<std::string, int> ids() const {
    std::lock_guard lock(mu_);
    return ids_;
  }
  int connections() const { return connections_; }
  int resyncs() const {
    std::lock_guard lock(mu_);
    return resyncs_;
  }

 private:
  void open(std::string host, std::string last) {
    running_ = true;
    ++connections_;
    thread_ = std::thread([this, host = std::move(host), last = std::move(last)] {
      auto connect = [&](const std::string& from) {
        std::string req = "GET /events?topic=users HTTP/1.1\r\nHost: x\r\n";
        if (!from.empty()) req += "Last-Event-ID: " + from + "\r\n";
        return std::make_unique<HttpStream>(host, 8080, req + "\r\n");
      };
      auto s = connect(last);
      std::size_t cursor = 0, resync_cursor = 0;
      while (running_) {
        const bool closed = s->wait_closed(100ms);
        read_events(s->text(), cursor, resync_cursor);
        if (closed) {
          std::this_thread::sleep_for(100ms);
          std::string from;
          {
            std::lock_guard lock(mu_);
            from = last_id_;
          }
          s = connect(from);
          cursor = resync_cursor = 0;
          ++connections_;
        }
      }
    });
  }
  // Counts the events and resyncs that arrived in t since the cursors.
  void read_events(const std::string& t, std::size_t& cursor, std::size_t& resync_cursor) {
    std::lock_guard lock(mu_);
    for (auto at = t.find(R"("type":"resync")", resync_cursor); at != std::string::npos;
         at = t.find(R"("type":"resync")", resync_cursor)) {
      ++resyncs_;
      resync_cursor = at + 1;
    }
    for (auto at = t.find("\nid: ", cursor); at != std::string::npos;
         at = t.find("\nid: ", cursor)) {
      auto end = t.find('\n', at + 5);
      if (end == std::string::npos) break;
      // An event seen before (the same id) is dropped, as a client does: it does not move
      // the position the client resumes from.
      std::string id = t.substr(at + 5, end - at - 5);
      if (++ids_[id] == 1) last_id_ = id;
      cursor = end;
    }
  }
  void stop() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
  }

  mutable std::mutex mu_;
  std::map<std::string, int> ids_;
  std::string last_id_;
  std::atomic<bool> running_{false};
  std::atomic<int> connections_{0};
  int resyncs_ = 0;
  std::thread thread_;
};

std::string daemon_config(const Hosts& hosts, const DatabaseHost& db, const std::string& host,
                          int sink_port) {
  return "postgres:\n  dsn: \"" + db.dsn() +
         "\"\n  reconnect_min: 50ms\n  reconnect_max: 500ms\n"
         "  heartbeat_interval: 500ms\n  heartbeat_timeout: 1s\n"
         "http:\n  listen: " +
         hosts.ip(host) + ":8080\nconsumer: host-" + host +
         "\noutbox:\n  poll_interval: 200ms\n  retry_delay: 100ms\n"
         "webhook:\n  poll_interval: 100ms\n  lease: 2s\n  claim_batch: 100\n"
         "redis:\n  cluster: " +
         db.redis_seeds() +
         "\n"
         // A client that moves resumes from the outbox: enough for the events of a failover.
         "hub:\n  resume_limit: 100000\n"
         "topics:\n  - pattern: users\n    anonymous: true\n"
         "  - pattern: room\n    allow: [subscribe, publish]\n    anonymous: true\n"
         "watch:\n  - table: public.users\n    channel: users_changed\n    durable: true\n"
         "rules:\n"
         "  - name: users\n    channel: users_changed\n    durable: true\n    actions:\n"
         "      - evict: [\"user:{id}\"]\n        again_after: 200ms\n"
         "      - push: {topic: users, event: changed}\n"
         "      - webhook:\n          url: 'http://" +
         hosts.ip("me") + ":" + std::to_string(sink_port) +
         "/users/{id}'\n          secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
         "  - name: client-publish\n    channel: pgfanout_publish\n    actions:\n"
         "      - push: {topic: \"{topic}\", event: publish, data: \"{data}\"}\n";
}

TEST(FaultHosts, ThreeAppHostsShareTheDatabaseAndSurviveALostHost) {
  if (::geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
  Hosts hosts;
  ASSERT_TRUE(hosts.ok()) << "could not build the network namespaces (ip netns, veth, bridge)";
  DatabaseHost db(hosts);
  ASSERT_TRUE(db.ok()) << "PostgreSQL or the Redis Cluster did not start on the database host: "
                       << db.log;
  constexpr int kRows = 300;
  {
    BlockingPg s(db.dsn());
    s.exec(CacheLoad::table_sql(kRows));
  }
  WebhookSink sink({}, nullptr, hosts.ip("me"));
  std::map<std::string, std::string> configs;
  for (std::string h : {"a", "b", "c"}) {
    configs[h] = write_temp_file("host-" + h + ".yaml", daemon_config(hosts, db, h, sink.port()));
  }
  auto [code, out] = run_pgfanout({"install", "--config", configs["a"]});
  ASSERT_EQ(code, 0) << out;
  std::map<std::string, std::unique_ptr<DaemonProcess>> daemons;
  auto start = [&](const std::string& h) {
    daemons[h] =
        std::make_unique<DaemonProcess>(std::vector<std::string>{"run", "--config", configs[h]},
                                        std::map<std::string, std::string>{}, hosts.in(h));
    EXPECT_TRUE(daemons[h]->wait_for_output("ready")) << daemons[h]->output();
  };
  for (std::string h : {"a", "b", "c"}) start(h);
  auto metric = [&](const std::string& h, const std::string& series) {
    auto r = http_request(hosts.ip(h), 8080, "GET", "/metrics", 2s);
    return r.status == 200 ? metric_value(r.body, series) : -1;
  };
  // Every host evicts through the cluster's three primaries.
  for (std::string h : {"a", "b", "c"}) {
    EXPECT_TRUE(wait_until(
        [&] { return metric(h, R"(pgfanout_redis_cluster_nodes{target="default"})") == 3; }, 10s))
        << daemons[h]->output();
  }

  // A client publish on A reaches the subscribers on B and C, through PostgreSQL.
  {
    WsClient pub(hosts.ip("a"), 8080), on_b(hosts.ip("b"), 8080), on_c(hosts.ip("c"), 8080);
    ASSERT_TRUE(pub.open() && on_b.open() && on_c.open());
    for (WsClient* c : {&on_b, &on_c}) {
      ASSERT_EQ(c->request(R"({"type":"subscribe","topic":"room"})").value_or(""),
                R"({"type":"ack","ref":1})");
    }
    auto ack = pub.request(R"({"type":"publish","topic":"room","data":{"hello":"from a"}})");
    ASSERT_TRUE(ack && ack->find("ack") != std::string::npos) << ack.value_or("");
    for (WsClient* c : {&on_b, &on_c}) {
      auto ev = c->receive_containing("from a");
      ASSERT_TRUE(ev) << daemons["b"]->output();
      EXPECT_NE(ev->find(R"("event":"publish")"), std::string::npos) << *ev;
    }
  }

  const auto phase = long_tests() ? 10s : 2s;
  CacheLoad load(db.dsn(), db.redis_ports.at(0), "", kRows, hosts.ip("db"), /*cluster=*/true);
  SseFollower follower(hosts.ip("b"));
  load.start(/*readers=*/3, /*writers=*/2, /*fill_delay_us=*/500);
  std::this_thread::sleep_for(phase);

  // Until now nothing failed: every webhook went out once, whichever host sent it.
  long long dups_before_faults = 0;
  {
    std::map<std::string, int> ids;
    for (const auto& r : sink.requests()) ++ids[r.header("webhook-id")];
    for (const auto& [id, n] : ids) dups_before_faults += n - 1;
  }

  // B's daemon dies; its client moves to A and resumes there; B comes back.
  daemons["b"]->signal(SIGKILL);
  daemons["b"]->wait();
  follower.move_to(hosts.ip("a"));
  std::this_thread::sleep_for(phase);
  start("b");
  // A load balancer sends clients back to B once it has caught up with the outbox.
  bool caught_up = wait_until(
      [&] {
        double lag = metric("b", "pgfanout_outbox_lag_seconds");
        return lag >= 0 && lag < 0.5;
      },
      30s);
  EXPECT_TRUE(caught_up) << daemons["b"]->output();
  std::this_thread::sleep_for(phase);

  // B's link is cut: its client moves to C; the link comes back.
  follower.move_to(hosts.ip("b"));
  std::this_thread::sleep_for(500ms);
  hosts.cut("b");
  follower.move_to(hosts.ip("c"));
  std::this_thread::sleep_for(phase + 1s);
  hosts.restore("b");
  auto restored = std::chrono::steady_clock::now();
  bool reconnected = wait_until([&] { return metric("b", "pgfanout_pg_connected") == 1; }, 20s);
  auto recover_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - restored)
                        .count();
  std::this_thread::sleep_for(phase);
  load.stop();

  // Quiescence: every durable event reached the webhook and the SSE client; no key is stale.
  const long long written = load.written();
  auto webhook_ids = [&] {
    std::map<std::string, int> ids;
    for (const auto& r : sink.requests()) ++ids[r.header("webhook-id")];
    return ids;
  };
  wait_until([&] { return static_cast<long long>(webhook_ids().size()) >= written; }, 30s);
  wait_until([&] { return static_cast<long long>(follower.ids().size()) >= written; }, 15s);
  std::this_thread::sleep_for(1s);  // anything sent twice arrives by now
  auto hooks = webhook_ids();
  auto seen = follower.ids();
  long long hook_dups = 0, sse_dups = 0;
  for (const auto& [id, n] : hooks) hook_dups += n - 1;
  for (const auto& [id, n] : seen) sse_dups += n - 1;
  long long stale = load.stale();

  Figures f;
  f.scenario = "three_hosts_b_killed_and_cut";
  f.written = written;
  f.acted = static_cast<long long>(hooks.size());
  f.lost = written - f.acted;
  f.duplicates = hook_dups;
  f.stale = stale;
  f.recover_ms = recover_ms;
  f.extra["sse_received"] = static_cast<long long>(seen.size());
  f.extra["sse_duplicates"] = sse_dups;
  f.extra["sse_connections"] = follower.connections();
  f.extra["sse_resyncs"] = follower.resyncs();
  f.extra["webhook_duplicates_before_faults"] = dups_before_faults;
  for (std::string h : {"a", "b", "c"}) {
    f.extra["webhooks_sent_by_" + h] =
        static_cast<long long>(metric(h, "pgfanout_webhook_delivered_total"));
    f.extra["sse_dropped_slow_by_" + h] =
        static_cast<long long>(metric(h, R"(pgfanout_subscribers_dropped_total{reason="slow"})"));
  }
  f.extra["cache_fills"] = load.fills();
  f.report();
  EXPECT_TRUE(reconnected) << daemons["b"]->output();
  EXPECT_GT(written, 100);
  EXPECT_EQ(f.lost, 0) << "durable webhooks missing";
  EXPECT_EQ(static_cast<long long>(seen.size()), written) << "durable events missing on SSE";
  // The host a client moves to may be behind it in the outbox: it does not send again what the
  // client has seen (its Last-Event-ID and what the resume replayed).
  EXPECT_EQ(sse_dups, 0);
  EXPECT_EQ(follower.resyncs(), 0);
  EXPECT_EQ(dups_before_faults, 0);
  EXPECT_EQ(stale, 0);
  // Duplicates are possible only for deliveries B had claimed when it was killed or cut off (at
  // most webhook.claim_batch each time: their lease expires and another host sends them again);
  // the receiver sees the same webhook-id.
  EXPECT_LE(hook_dups, 2 * 100);
}

}  // namespace
}  // namespace pgfanout::test
