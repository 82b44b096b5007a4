// The redis: section and the Redis actions' keys, loaded from YAML text.
#include "redis/RedisConfig.hpp"

#include <gtest/gtest.h>

#include "app/Config.hpp"
#include "cache/RedisActions.hpp"
#include "rules/RuleSet.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::redis {
namespace {

app::LoadResult load(const std::string& redis_and_rules) {
  return app::load_config_text("postgres: {dsn: \"host=127.0.0.1\"}\n" + redis_and_rules, "t.yaml",
                               [](std::string_view name) -> std::optional<std::string> {
                                 if (name == "REDIS_PW") return "from-env";
                                 return std::nullopt;
                               });
}

std::string errors(const app::LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

const char* kRule =
    "rules:\n"
    "  - name: r\n"
    "    channel: c\n"
    "    actions:\n"
    "      - evict: \"user:{id}\"\n";

TEST(RedisConfig, OneUrlIsTheDefaultTarget) {
  auto r = load(std::string("redis:\n  url: redis://10.0.0.5:6380/2\n  password: ${REDIS_PW}\n"
                            "  queue_limit: 50\n  batch_keys: 64\n") +
                kRule);
  ASSERT_TRUE(r.config) << errors(r);
  const auto& redis = r.config->redis;
  ASSERT_EQ(redis.targets.size(), 1u);
  EXPECT_EQ(redis.targets[0].name, "default");
  EXPECT_EQ(redis.targets[0].url.port, 6380);
  EXPECT_EQ(redis.targets[0].url.db, 2);
  EXPECT_EQ(redis.targets[0].url.password, "from-env");
  EXPECT_EQ(redis.queue_limit, 50u);
  EXPECT_EQ(redis.batch_keys, 64u);
  EXPECT_EQ(redis.scan_count, 500u);
  EXPECT_EQ(redis.reconnect_min, std::chrono::milliseconds(100));
  EXPECT_EQ(redis.default_target(), &redis.targets[0]);
}

TEST(RedisConfig, NamedTargetsAndActionsThatPickThem) {
  std::string pwfile = test::write_temp_file("pw", "filepw\n");
  auto r = load(
      "redis:\n"
      "  queue_limit: 1000\n"
      "  cache: {url: redis://127.0.0.1:6379/0}\n"
      "  sessions:\n"
      "    url: unix:///run/redis.sock?db=2\n"
      "    password_file: " +
      pwfile +
      "\n"
      "rules:\n"
      "  - name: r\n"
      "    channel: c\n"
      "    actions:\n"
      "      - evict: [\"user:{id}\"]\n"
      "        target: cache\n"
      "      - publish: {channel: \"ch:{id}\"}\n"
      "        target: sessions\n");
  ASSERT_TRUE(r.config) << errors(r);
  const auto& redis = r.config->redis;
  ASSERT_EQ(redis.targets.size(), 2u);
  EXPECT_EQ(redis.find("sessions")->url.password, "filepw");
  EXPECT_EQ(redis.find("sessions")->url.socket_path, "/run/redis.sock");
  EXPECT_EQ(redis.default_target(), nullptr);  // two targets, none named default
  const auto& actions = r.config->rules->rules()[0]->actions;
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(static_cast<const RedisAction&>(*actions[0]).target(), "cache");
  const auto& pub = static_cast<const PublishAction&>(*actions[1]);
  EXPECT_EQ(pub.message.source(), "{payload}");
}

TEST(RedisConfig, TlsKeysFillTheTargetsTlsSettings) {
  std::string ca = test::write_temp_file("ca.pem", "not parsed at load time\n");
  std::string cert = test::write_temp_file("client.pem", "x\n");
  std::string key = test::write_temp_file("client.key", "x\n");
  auto r = load(
      "redis:\n"
      "  url: rediss://10.0.0.5:6380/1\n"
      "  tls_ca_file: " +
      ca +
      "\n"
      "  tls_server_name: cache.internal\n"
      "  remote:\n"
      "    url: rediss://cache.example.org\n"
      "    tls_cert_file: " +
      cert + "\n    tls_key_file: " + key + "\n" + kRule);
  ASSERT_TRUE(r.config) << errors(r);
  const auto& redis = r.config->redis;
  ASSERT_EQ(redis.targets.size(), 2u);
  const RedisTls& def = redis.find("default")->url.tls;
  EXPECT_TRUE(def.enabled);
  EXPECT_EQ(def.ca_file, ca);
  EXPECT_EQ(def.server_name, "cache.internal");
  EXPECT_TRUE(def.cert_file.empty());
  const RedisTls& remote = redis.find("remote")->url.tls;
  EXPECT_TRUE(remote.enabled);
  EXPECT_TRUE(remote.ca_file.empty());  // the system's store
  EXPECT_EQ(remote.cert_file, cert);
  EXPECT_EQ(remote.key_file, key);
  EXPECT_EQ(remote.expected_name("cache.example.org"), "cache.example.org");
}

TEST(RedisConfig, ClusterTargetsReadSeedsAndTls) {
  std::string ca = test::write_temp_file("ca.pem", "not parsed at load time\n");
  auto r = load(
      "redis:\n"
      "  cluster_refresh: 30s\n"
      "  cluster: [\"10.0.0.5:7000\", \"[fd00::6]:7001\", \"redis-3.internal:7002\"]\n"
      "  password: ${REDIS_PW}\n"
      "  secure:\n"
      "    cluster: 10.0.1.5:7000\n"
      "    tls: true\n"
      "    tls_ca_file: " +
      ca + "\n" + kRule);
  ASSERT_TRUE(r.config) << errors(r);
  const auto& redis = r.config->redis;
  EXPECT_EQ(redis.cluster_refresh, std::chrono::seconds(30));
  const auto* def = redis.find("default");
  ASSERT_NE(def, nullptr);
  ASSERT_TRUE(def->is_cluster());
  ASSERT_EQ(def->cluster.size(), 3u);
  EXPECT_EQ(def->cluster[0].address(), "10.0.0.5:7000");
  EXPECT_EQ(def->cluster[1].host, "fd00::6");
  EXPECT_EQ(def->cluster[2].port, 7002);
  EXPECT_EQ(def->url.password, "from-env");
  EXPECT_FALSE(def->url.tls.enabled);
  const auto* secure = redis.find("secure");
  ASSERT_NE(secure, nullptr);
  ASSERT_EQ(secure->cluster.size(), 1u);  // one seed as a plain string
  EXPECT_TRUE(secure->url.tls.enabled);
  EXPECT_EQ(secure->url.tls.ca_file, ca);
  // Each node's certificate is checked for the node's own address.
  EXPECT_EQ(secure->url.tls.expected_name("10.0.1.7"), "10.0.1.7");
  EXPECT_FALSE(redis.find("secure")->url.password.size() > 0);
}

TEST(RedisConfig, EvictModifiersParse) {
  auto r = load(
      "redis: {url: redis://h}\n"
      "rules:\n"
      "  - name: r\n"
      "    channel: c\n"
      "    actions:\n"
      "      - evict: [\"a:{id}\", \"b:{old.name}\"]\n"
      "        again_after: 500ms\n"
      "        unlink: false\n"
      "      - evict_pattern: \"user:{id}:*\"\n");
  ASSERT_TRUE(r.config) << errors(r);
  const auto& actions = r.config->rules->rules()[0]->actions;
  const auto& ev = static_cast<const EvictAction&>(*actions[0]);
  EXPECT_EQ(ev.keys.size(), 2u);
  EXPECT_FALSE(ev.unlink);
  EXPECT_EQ(ev.again_after, std::chrono::milliseconds(500));
  EXPECT_EQ(static_cast<const EvictPatternAction&>(*actions[1]).patterns.size(), 1u);
}

struct BadCase {
  const char* yaml;
  const char* where;  // "LINE:COL"
  const char* message;
};

TEST(RedisConfig, ErrorsNameLineAndColumn) {
  // Line 1 is the postgres: line added by load().
  const BadCase cases[] = {
      {"redis:\n  url: redis://h\n  tls_ca_file: /etc/hostname\n", "4:16",
       "applies only to TLS targets"},
      {"redis:\n  url: rediss://h\n  tls_cert_file: /etc/hostname\n", "4:18", "go together"},
      {"redis:\n  url: rediss://h\n  tls_ca_file: /nonexistent/ca.pem\n", "4:16",
       "cannot read \"/nonexistent/ca.pem\""},
      {"redis:\n  tls_server_name: x\n  cache: {url: rediss://h}\n", "3:20",
       "belongs to the default target"},
      {"redis:\n  cache: {url: redis://h, tls_server_name: x}\n", "3:44",
       "applies only to TLS targets"},
      {"redis:\n  url: redis://h:99999\n", "3:8", "bad port"},
      {"redis:\n  urll: redis://h\n", "3:3", "did you mean \"url\""},
      {"redis:\n  queue_limit: 0\n  url: redis://h\n", "3:16", "between 1 and"},
      {"redis:\n  batch_keys: many\n  url: redis://h\n", "3:15", "expected an integer"},
      {"redis:\n  cache: {password: x}\n", "3:10", "target \"cache\" needs a \"url\""},
      {"redis:\n  cache: {url: redis://h, pasword: x}\n", "3:27", "did you mean \"password\""},
      {"redis:\n  password: x\n", "3:13", "belongs to the default target"},
      {"redis:\n  queue_limit: 5\n", "3:3", "give a url"},
      // Cluster targets: seeds are host:port, a target has url or cluster, tls for clusters.
      {"redis:\n  cluster: [\"10.0.0.5:7000\", \"10.0.0.6\"]\n", "3:30",
       "\"10.0.0.6\" is not a seed node: give host:port"},
      {"redis:\n  cache:\n    cluster:\n      - redis://10.0.0.5:7000\n", "5:9",
       "is not a seed node"},
      {"redis:\n  cluster: \"10.0.0.5\"\n", "3:12", "is not a seed node"},
      {"redis:\n  cluster: []\n", "3:12", "at least one seed node"},
      {"redis:\n  cache: {url: redis://h, cluster: [\"h:7000\"]}\n", "3:36",
       "either \"url\" (one server) or \"cluster\" (seed nodes), not both"},
      {"redis:\n  url: redis://h\n  tls: true\n", "4:8", "a url target says rediss://"},
      {"redis:\n  cache: {cluster: [\"h:7000\"], tls_server_name: x}\n", "3:49",
       "applies only to TLS targets"},
      {"redis:\n  cache: {cluster: [\"h:7000\"], tls: maybe}\n", "3:37", "expected true or false"},
      {"redis:\n  tls: true\n  cache: {cluster: [\"h:7000\"]}\n", "3:8",
       "belongs to the default target"},
      {"redis:\n  cluster_refresh: 10ms\n  cluster: [\"h:7000\"]\n", "3:20", "at least 1s"},
      {"redis:\n  url: redis://h\n  default: {url: redis://g}\n", "4:12",
       "\"default\" is given twice"},
      {"redis:\n  reconnect_min: 1s\n  reconnect_max: 10ms\n  url: redis://h\n", "4:18",
       "must be >= reconnect_min"},
      {"rules:\n  - name: r\n    channel: c\n    actions:\n      - evict: \"k:{id}\"\n", "6:9",
       "needs a Redis"},
      {"redis:\n  a: {url: redis://h}\n  b: {url: redis://g}\nrules:\n  - name: r\n"
       "    channel: c\n    actions:\n      - evict: \"k:{id}\"\n",
       "9:9", "none is named \"default\""},
      {"redis: {url: redis://h}\nrules:\n  - name: r\n    channel: c\n    actions:\n"
       "      - evict: \"k:{id}\"\n        target: nope\n",
       "8:17", "unknown Redis target \"nope\""},
      {"redis: {url: redis://h}\nrules:\n  - name: r\n    channel: c\n    actions:\n"
       "      - evict: \"k:{id\"\n",
       "7:16", "bad template"},
      {"redis: {url: redis://h}\nrules:\n  - name: r\n    channel: c\n    actions:\n"
       "      - evict: []\n",
       "7:16", "at least one key template"},
      {"redis: {url: redis://h}\nrules:\n  - name: r\n    channel: c\n    actions:\n"
       "      - evict: \"k:{id}\"\n        again_after: soon\n",
       "8:22", "expected a duration"},
      {"redis: {url: redis://h}\nrules:\n  - name: r\n    channel: c\n    actions:\n"
       "      - evict_pattern: \"*\"\n",
       "7:24", "bare \"*\""},
      {"redis: {url: redis://h}\nrules:\n  - name: r\n    channel: c\n    actions:\n"
       "      - evict_pattern: \"k:{id}:*\"\n        again_after: 1s\n",
       "8:22", "applies to evict only"},
      {"redis: {url: redis://h}\nrules:\n  - name: r\n    channel: c\n    actions:\n"
       "      - publish: {message: x}\n",
       "7:18", "\"channel\" is required"},
      {"redis: {url: redis://h}\nrules:\n  - name: r\n    channel: c\n    actions:\n"
       "      - publish: \"ch\"\n",
       "7:18", "expected a mapping"},
  };
  for (const auto& c : cases) {
    auto r = load(c.yaml);
    EXPECT_FALSE(r.config) << c.yaml;
    std::string all = errors(r);
    EXPECT_NE(all.find(std::string("t.yaml:") + c.where + ":"), std::string::npos)
        << c.yaml << "\n--- got:\n"
        << all;
    EXPECT_NE(all.find(c.message), std::string::npos) << c.yaml << "\n--- got:\n" << all;
  }
}

}  // namespace
}  // namespace pgfanout::redis
