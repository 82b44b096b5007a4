// The Redis actions against a real Redis Cluster (3 primaries, 3 replicas, started per test by
// tests/harness/redis-cluster.sh): the router and RedisEvictor on one io_context, fed
// notifications directly. Keys over all 16384 slots, a reshard and a failover under load.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "app/Config.hpp"
#include "cache/RedisEvictor.hpp"
#include "metrics/Metrics.hpp"
#include "redis/ClusterSlots.hpp"
#include "redis_routing.hpp"
#include "redis_test_client.hpp"
#include "routed_redis_client.hpp"
#include "rules/Router.hpp"
#include "rules/RuleSet.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::test {
namespace {

const std::string kScript = std::string(PGFANOUT_SOURCE_DIR) + "/tests/harness/redis-cluster.sh";

// A cluster of its own, stopped (every node killed, its directories removed) when it goes.
class TestCluster {
 public:
  // `tls_dir`: the nodes speak TLS with the certificates there (tests/harness/with-servers.sh's).
  explicit TestCluster(std::string tls_dir = "") : tls_dir_(std::move(tls_dir)) {
    const char* tmp = std::getenv("TMPDIR");
    std::string base =
        std::string(tmp != nullptr && *tmp != 0 ? tmp : "/tmp") + "/pgfanout-cluster.XXXXXX";
    EXPECT_NE(mkdtemp(base.data()), nullptr);
    base_ = base;
    dir_ = base + "/nodes";
    std::string out;
    std::string env = tls_dir_.empty() ? "" : "REDIS_CLUSTER_TLS_DIR=" + tls_dir_ + " ";
    FILE* p = popen((env + kScript + " start " + dir_ + " 2>&1").c_str(), "r");
    char buf[512];
    while (p != nullptr && fgets(buf, sizeof buf, p) != nullptr) out += buf;
    int status = p == nullptr ? -1 : pclose(p);
    EXPECT_EQ(status, 0) << out;
    std::istringstream in(out.substr(std::min(out.size(), out.find("PORTS ") + 6)));
    for (int port; in >> port;) ports.push_back(port);
    EXPECT_EQ(ports.size(), 6u) << out;
    router_ = std::make_unique<RoutedRedisClient>("127.0.0.1", ports.empty() ? 0 : ports[0], true);
  }
  ~TestCluster() {
    int status = std::system((kScript + " stop " + dir_).c_str());
    EXPECT_EQ(status, 0);
    ::rmdir(base_.c_str());
  }
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  std::string seeds() const {
    std::string out = "[";
    for (int p : ports) out += (out.size() > 1 ? ", \"" : "\"") + node(p) + "\"";
    return out + "]";
  }
  static std::string node(int port) { return "127.0.0.1:" + std::to_string(port); }

  RedisTestClient& client(int port) {
    auto& c = clients_[port];
    if (!c) c = std::make_unique<RedisTestClient>(port);
    return *c;
  }
  bool is_primary(int port) {
    return client(port).cmd({"INFO", "replication"}).find("role:master") != std::string::npos;
  }
  std::vector<int> primaries() {
    std::vector<int> out;
    for (int p : ports) {
      if (is_primary(p)) out.push_back(p);
    }
    return out;
  }
  // A command on `key`, sent to the node serving its slot (following MOVED and ASK).
  std::string routed(const std::vector<std::string>& args) { return router_->cmd(args); }
  // The port of the primary serving `key` now.
  int port_of(const std::string& key) { return router_->port_of(key); }
  // Keys on every primary.
  long long keys() {
    long long n = 0;
    for (int p : primaries()) n += client(p).dbsize();
    return n;
  }
  // A field of the node's INFO replication (`role`, `master_port`); empty when absent or down.
  std::string replication(int port, const std::string& field) {
    std::string info = client(port).cmd({"INFO", "replication"});
    auto at = info.find(field + ":");
    if (at == std::string::npos) return "";
    at += field.size() + 1;
    return info.substr(at, info.find_first_of("\r\n", at) - at);
  }
  // Waits until every primary's writes reached a replica, and checks that each replica holds as
  // many keys as its primary (a replica that loaded another node's data would not).
  void replicate() {
    for (int p : primaries()) EXPECT_EQ(client(p).cmd({"WAIT", "1", "5000"}), "1") << p;
    for (int p : ports) {
      if (replication(p, "role") != "slave") continue;
      int primary = std::atoi(replication(p, "master_port").c_str());
      EXPECT_EQ(client(p).dbsize(), client(primary).dbsize())
          << "replica " << p << " of " << primary;
    }
  }
  // Each node's port, role and key count: what a failed key count is read against.
  std::string describe() {
    std::string out;
    for (int p : ports) {
      std::string role = replication(p, "role");
      out += std::to_string(p) + " " + (role.empty() ? "(down)" : "role:" + role) +
             " keys=" + std::to_string(client(p).dbsize()) + "\n";
    }
    return out;
  }
  pid_t pid(int port) const {
    std::ifstream f(dir_ + "/" + std::to_string(port) + ".pid");
    pid_t pid = 0;
    f >> pid;
    return pid;
  }

  // Runs `commands` (one a line) through redis-cli in cluster mode (over TLS when the nodes speak
  // it); returns its output.
  std::string cli(const std::string& commands) const {
    std::string tls = tls_dir_.empty() ? "" : " --tls --cacert " + tls_dir_ + "/ca.crt";
    std::string file = dir_ + "/commands";
    std::ofstream(file) << commands;
    std::string out;
    FILE* p = popen(
        ("redis-cli -c" + tls + " -p " + std::to_string(ports.at(0)) + " < " + file).c_str(), "r");
    char buf[512];
    while (p != nullptr && fgets(buf, sizeof buf, p) != nullptr) out += buf;
    if (p != nullptr) pclose(p);
    return out;
  }

  std::vector<int> ports;

 private:
  std::string tls_dir_;
  std::string base_;  // made for this cluster; holds dir_
  std::string dir_;
  std::map<int, std::unique_ptr<RedisTestClient>> clients_;
  std::unique_ptr<RoutedRedisClient> router_;
};

// One key per hash slot: keys[s] hashes to slot s.
std::vector<std::string> key_per_slot(const std::string& prefix) {
  std::vector<std::string> keys(redis::kClusterSlots);
  std::size_t found = 0;
  for (std::size_t i = 0; found < keys.size(); ++i) {
    std::string k = prefix + std::to_string(i);
    auto& slot = keys[redis::key_slot(k)];
    if (slot.empty()) {
      slot = std::move(k);
      ++found;
    }
  }
  return keys;
}

class RedisCluster : public ::testing::Test {
 protected:
  void boot(const std::string& tls_dir = "") { cluster = std::make_unique<TestCluster>(tls_dir); }
  void start(const std::string& rules_yaml, const std::string& redis_extra = "") {
    std::string text =
        "postgres: {dsn: \"host=127.0.0.1\"}\nredis:\n  cluster: " + cluster->seeds() + "\n" +
        redis_extra + "rules:\n" + rules_yaml;
    routing.start(io, metrics, text);
    ASSERT_TRUE(config);
    routing.run();
    ASSERT_TRUE(healthy(std::chrono::seconds(20)));
  }
  bool healthy(std::chrono::milliseconds timeout) {
    std::string detail;
    return run_until(
        io, [&] { return evictor->healthy(detail); }, timeout);
  }
  void evict(const std::string& key) {
    router->route(rules::Notification{"c", "{\"key\":\"" + key + "\"}"});
  }
  bool settle(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return run_until(
        io, [&] { return evictor->idle(); }, timeout);
  }
  // Evicts `keys`, 16 per turn of the loop (so the load spreads over time), calling at(i) before
  // the i-th.
  void evict_paced(const std::vector<std::string>& keys,
                   const std::function<void(std::size_t)>& at) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      at(i);
      evict(keys[i]);
      if (i % 16 == 15) {
        router->flush();
        io.run_for(std::chrono::milliseconds(5));
        if (io.stopped()) io.restart();
      }
    }
    router->flush();
  }
  double metric(const char* name, Labels labels = {}) {
    labels.insert(labels.begin(), {"target", "default"});
    return metrics.value(name, labels);
  }
  void set_all(const std::vector<std::string>& keys) {
    for (const auto& k : keys) ASSERT_EQ(cluster->routed({"SET", k, "v"}), "OK") << k;
    ASSERT_EQ(cluster->routed({"SET", "keep", "v"}), "OK");
  }

  std::unique_ptr<TestCluster> cluster;
  boost::asio::io_context io{1};
  Metrics metrics;
  RedisRouting routing;
  std::shared_ptr<const app::Config>& config = routing.config;
  std::unique_ptr<rules::Router>& router = routing.router;
  std::unique_ptr<redis::RedisEvictor>& evictor = routing.evictor;
  std::vector<std::string>& gaps = routing.gaps;
};

const char* kEvictRule = "  - name: r\n    channel: c\n    actions:\n      - evict: \"{key}\"\n";

TEST_F(RedisCluster, EvictsKeysOfEverySlotAndPatternsOnEveryPrimary) {
  boot();
  auto keys = key_per_slot("k");
  set_all(keys);
  for (int i = 0; i < 300; ++i) cluster->routed({"SET", "p:" + std::to_string(i), "v"});
  start(std::string(kEvictRule) +
        "  - name: p\n    channel: p\n    actions:\n      - evict_pattern: \"p:*\"\n"
        "      - publish: {channel: news, message: done}\n");
  EXPECT_EQ(metric("pgfanout_redis_cluster_nodes"), 3);
  EXPECT_GE(metric("pgfanout_redis_cluster_slot_map_refreshes_total", {{"result", "ok"}}), 1);
  EXPECT_EQ(metric("pgfanout_redis_connected"), 1);

  for (const auto& k : keys) evict(k);
  router->route(rules::Notification{"p", "{}"});
  router->flush();
  ASSERT_TRUE(settle());
  EXPECT_EQ(cluster->keys(), 1);  // only "keep"
  EXPECT_EQ(cluster->routed({"EXISTS", "keep"}), "1");
  EXPECT_EQ(metric("pgfanout_redis_keys_sent_total"), 16384 + 300);
  EXPECT_EQ(metric("pgfanout_redis_keys_deleted_total"), 16384 + 300);
  EXPECT_EQ(metric("pgfanout_redis_publishes_total"), 1);
  EXPECT_EQ(metrics.value("pgfanout_actions_total", {{"rule", "r"}, {"kind", "evict"}}), 16384);
}

TEST_F(RedisCluster, ReshardUnderLoadLeavesNoEvictedKeyBehind) {
  boot();
  auto keys = key_per_slot("k");
  set_all(keys);
  // No periodic refresh: the daemon learns of the moved slots only from the redirects.
  start(kEvictRule, "  cluster_refresh: 10m\n");
  // The reshard moves the lowest 1500 slots of slot 0's primary; the load evicts from the
  // highest slot down, so those slots come last, while or after they move.
  int source = cluster->port_of(keys[0]);
  int target = 0;
  for (int p : cluster->primaries()) {
    if (p != source) target = p;
  }
  ASSERT_NE(target, 0);
  std::string from = cluster->client(source).cmd({"CLUSTER", "MYID"});
  std::string to = cluster->client(target).cmd({"CLUSTER", "MYID"});
  std::atomic<bool> done{false};
  int status = -1;
  std::thread reshard([&] {
    status = std::system(("redis-cli --cluster reshard " + TestCluster::node(source) +
                          " --cluster-from " + from + " --cluster-to " + to +
                          " --cluster-slots 1500 --cluster-yes >/dev/null 2>&1")
                             .c_str());
    done = true;
  });
  std::vector<std::string> reversed(keys.rbegin(), keys.rend());
  evict_paced(reversed, [](std::size_t) {});
  // The load goes on over a second key set until the reshard is over.
  auto more = key_per_slot("m");
  for (std::size_t next = 0; !done; ++next) {
    const std::string& k = more[next % more.size()];
    cluster->routed({"SET", k, "v"});
    evict(k);
    router->flush();
    io.run_for(std::chrono::milliseconds(1));
    if (io.stopped()) io.restart();
  }
  reshard.join();
  EXPECT_EQ(status, 0);
  EXPECT_EQ(cluster->port_of(keys[0]), target);
  // Once more over every slot, through the map the daemon has now (stale unless a redirect
  // already refreshed it).
  set_all(more);
  for (const auto& k : more) evict(k);
  router->flush();
  ASSERT_TRUE(settle());
  EXPECT_EQ(cluster->keys(), 1);  // only "keep"
  double redirects = metric("pgfanout_redis_cluster_redirects_total", {{"kind", "moved"}}) +
                     metric("pgfanout_redis_cluster_redirects_total", {{"kind", "ask"}});
  EXPECT_GT(redirects, 0);
  EXPECT_EQ(metric("pgfanout_redis_keys_failed_total"), 0);
  EXPECT_TRUE(gaps.empty());
}

TEST_F(RedisCluster, PrimaryKilledUnderLoadLosesNoEviction) {
  boot();
  auto keys = key_per_slot("k");
  set_all(keys);
  cluster->replicate();
  // again_after: replication is asynchronous, so an UNLINK the dying primary answered may not
  // have reached the replica that takes over; the second eviction goes to the new primary.
  start(std::string(kEvictRule) + "        again_after: 500ms\n");
  int victim = cluster->primaries().at(0);
  evict_paced(keys, [&](std::size_t i) {
    if (i == 4000) {
      ASSERT_EQ(::kill(cluster->pid(victim), SIGKILL), 0);
    }
  });
  ASSERT_TRUE(settle(std::chrono::seconds(60)));
  EXPECT_TRUE(healthy(std::chrono::seconds(30)));  // the promoted replica is connected
  EXPECT_EQ(cluster->keys(), 1)                    // only "keep"
      << "victim " << victim << "\n"
      << cluster->describe() << "sent " << metric("pgfanout_redis_keys_sent_total") << ", deleted "
      << metric("pgfanout_redis_keys_deleted_total");
  EXPECT_TRUE(gaps.empty());
  EXPECT_EQ(metrics.value("pgfanout_redis_dropped_total", {{"rule", "r"}, {"target", "default"}}),
            0);
  EXPECT_EQ(metric("pgfanout_redis_keys_failed_total"), 0);
  EXPECT_EQ(metric("pgfanout_redis_cluster_nodes"), 3);
}

TEST_F(RedisCluster, ASeedWithoutClusterSupportIsReportedNotTrusted) {
  // The harness's Redis runs without cluster support: CLUSTER SHARDS is refused.
  std::string seed = "127.0.0.1:" + std::to_string(harness_redis_port());
  routing.start(io, metrics,
                "postgres: {dsn: \"host=127.0.0.1\"}\nredis:\n  cluster: [\"" + seed +
                    "\"]\nrules:\n" + kEvictRule);
  ASSERT_TRUE(config);
  routing.run();
  auto failed = [&] {
    return metric("pgfanout_redis_cluster_slot_map_refreshes_total", {{"result", "error"}}) >= 2;
  };
  ASSERT_TRUE(run_until(io, failed, std::chrono::seconds(20)));  // tried again, every second
  std::string detail;
  EXPECT_FALSE(evictor->healthy(detail));
  EXPECT_NE(detail.find("no slot map yet"), std::string::npos) << detail;
  EXPECT_EQ(metric("pgfanout_redis_connected"), 0);
  // Work waits in the queue: nothing is sent to a node that is not known to serve the slot.
  evict("k1");
  router->flush();
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(evictor->queued(), 1u);
  EXPECT_EQ(metric("pgfanout_redis_keys_sent_total"), 0);
}

TEST_F(RedisCluster, TlsToEveryNodeVerifiesItsCertificate) {
  std::string tls = harness_env("PGFANOUT_TEST_TLS_DIR");
  boot(tls);
  // Keys spread over the slots of every primary.
  auto all = key_per_slot("t");
  std::vector<std::string> keys;
  std::string set, exists;
  for (std::size_t s = 0; s < all.size(); s += 97) {
    keys.push_back(all[s]);
    set += "SET " + all[s] + " v\n";
    exists += "EXISTS " + all[s] + "\n";
  }
  cluster->cli(set);
  ASSERT_EQ(cluster->cli("EXISTS " + keys.front() + "\n"), "1\n");
  start(kEvictRule, "  tls: true\n  tls_ca_file: " + tls + "/ca.crt\n");
  EXPECT_EQ(metric("pgfanout_redis_cluster_nodes"), 3);
  for (const auto& k : keys) evict(k);
  router->flush();
  ASSERT_TRUE(settle());
  EXPECT_EQ(metric("pgfanout_redis_keys_deleted_total"), static_cast<double>(keys.size()));
  std::istringstream left(cluster->cli(exists));  // "0" or "1" a key, and redirect notes
  std::size_t gone = 0, there = 0;
  for (std::string line; std::getline(left, line);) {
    gone += line == "0";
    there += line == "1";
  }
  EXPECT_EQ(gone, keys.size());
  EXPECT_EQ(there, 0u);

  // A CA that did not sign the nodes' certificates: no node is trusted, the target never gets
  // healthy, and the refusals are counted.
  std::string text = "postgres: {dsn: \"host=127.0.0.1\"}\nredis:\n  cluster: " + cluster->seeds() +
                     "\n  tls: true\n  tls_ca_file: " + tls + "/other-ca.crt\nrules:\n" +
                     kEvictRule;
  auto wrong = app::load_config_text(text, "test.yaml");
  ASSERT_TRUE(wrong.config);
  Metrics other;
  redis::RedisEvictor untrusting(io, other, wrong.config->redis, [](const std::string&) {});
  untrusting.start();
  auto refused = [&] {
    return other.value("pgfanout_redis_connect_errors_total",
                       {{"target", "default"}, {"reason", "tls"}}) >= 6;
  };
  ASSERT_TRUE(run_until(io, refused, std::chrono::seconds(20)));
  std::string detail;
  EXPECT_FALSE(untrusting.healthy(detail));
  EXPECT_NE(detail.find("no slot map yet"), std::string::npos) << detail;
}

}  // namespace
}  // namespace pgfanout::test
