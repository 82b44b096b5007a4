// The pgfanout binary end to end: NOTIFY on the harness PostgreSQL, evictions in the harness
// Redis.
#include <signal.h>

#include <gtest/gtest.h>

#include "redis_test_client.hpp"
#include "support/TcpProxy.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::test {
namespace {

class RedisDaemon : public ::testing::Test {
 protected:
  void start(const std::string& rules_yaml) {
    channel = "redis_e2e_" + std::to_string(::getpid());
    std::string text = "postgres: {dsn: \"" + test_dsn() +
                       "\"}\nhttp: {listen: 127.0.0.1:0}\nredis: {url: \"" +
                       harness_env("PGFANOUT_TEST_REDIS_URL") + "\"}\nrules:\n" + rules_yaml;
    auto pos = std::string::npos;
    while ((pos = text.find("CHANNEL")) != std::string::npos) text.replace(pos, 7, channel);
    config_path = write_temp_file("pgfanout.yaml", text);
    daemon =
        std::make_unique<DaemonProcess>(std::vector<std::string>{"run", "--config", config_path});
    ASSERT_TRUE(daemon->wait_for_output("ready")) << daemon->output();
    ASSERT_TRUE(daemon->wait_for_output("Redis target default")) << daemon->output();
  }
  void TearDown() override {
    if (daemon) {
      daemon->signal(SIGTERM);
      EXPECT_EQ(daemon->wait(), 0) << daemon->output();
    }
  }

  std::string p = "e2e:" + std::to_string(::getpid()) + ":";
  std::string channel;
  std::string config_path;
  std::unique_ptr<DaemonProcess> daemon;
  RedisTestClient redis{harness_redis_port()};
  BlockingPg pg{test_dsn()};
};

TEST_F(RedisDaemon, NotifyEvictsOldAndNewKeys) {
  start("  - name: users\n    channel: CHANNEL\n    actions:\n      - evict: [\"" + p +
        "user:{id}\", \"" + p + "name:{username}\"]\n");
  redis.set(p + "user:7");
  redis.set(p + "name:ann");
  redis.set(p + "name:anne");
  redis.set(p + "name:bob");
  pg.notify(channel, R"({"v":1,"op":"UPDATE","schema":"public","table":"users",)"
                     R"("new":{"id":7,"username":"ann"},"old":{"id":7,"username":"anne"}})");
  ASSERT_TRUE(wait_until([&] {
    return !redis.exists(p + "user:7") && !redis.exists(p + "name:ann") &&
           !redis.exists(p + "name:anne");
  })) << daemon->output();
  EXPECT_TRUE(redis.exists(p + "name:bob"));
}

TEST_F(RedisDaemon, BurstOf10000NotificationsInOneTransactionIsFullyEvicted) {
  start("  - name: burst\n    channel: CHANNEL\n    actions:\n      - evict: \"" + p +
        "k:{id}\"\n");
  for (int i = 1; i <= 10000; i += 1000) {
    std::vector<std::string> mset{"MSET"};
    for (int j = i; j < i + 1000; ++j) {
      mset.push_back(p + "k:" + std::to_string(j));
      mset.push_back("v");
    }
    redis.cmd(mset);
  }
  ASSERT_EQ(redis.cmd({"EXISTS", p + "k:1", p + "k:10000"}), "2");
  pg.exec("SELECT count(pg_notify('" + channel +
          "', json_build_object('id', g)::text)) FROM generate_series(1, 10000) g");
  ASSERT_TRUE(wait_until([&] {
    std::vector<std::string> exists{"EXISTS"};
    for (int j = 1; j <= 10000; j += 97) exists.push_back(p + "k:" + std::to_string(j));
    exists.push_back(p + "k:10000");
    return redis.cmd(exists) == "0";
  })) << daemon->output();
  EXPECT_EQ(redis.cmd({"SCAN", "0", "MATCH", p + "k:*", "COUNT", "100000"}), "2");
  EXPECT_EQ(redis.cmd({"EVAL", "return #redis.call('KEYS', ARGV[1])", "0", p + "k:*"}), "0");
}

TEST_F(RedisDaemon, PublishReachesRedisSubscribers) {
  start("  - name: pub\n    channel: CHANNEL\n    actions:\n      - publish: {channel: \"" + p +
        "events\"}\n");
  redisContext* sub = redisConnect("127.0.0.1", harness_redis_port());
  ASSERT_TRUE(sub != nullptr && sub->err == 0);
  freeReplyObject(redisCommand(sub, "SUBSCRIBE %s", (p + "events").c_str()));
  pg.notify(channel, R"({"id": 1})");
  void* msg = nullptr;
  ASSERT_EQ(redisGetReply(sub, &msg), REDIS_OK);
  auto* m = static_cast<redisReply*>(msg);
  ASSERT_EQ(m->elements, 3u);
  EXPECT_EQ(std::string(m->element[2]->str, m->element[2]->len), R"({"id": 1})");
  freeReplyObject(m);
  redisFree(sub);
}

TEST(RedisDaemonOutage, RedisRestartedWhileNotificationsFlowLosesNothing) {
  OwnRedisServer own;
  // The daemon reaches Redis through a proxy, so the test decides when it can reconnect.
  TcpProxy proxy("127.0.0.1", static_cast<std::uint16_t>(own.port()));
  std::string p = "outage:" + std::to_string(::getpid()) + ":";
  std::string channel = "redis_outage_" + std::to_string(::getpid());
  std::string config = write_temp_file(
      "pgfanout.yaml", "postgres: {dsn: \"" + test_dsn() +
                           "\"}\nhttp: {listen: 127.0.0.1:0}\nredis:\n  url: redis://127.0.0.1:" +
                           std::to_string(proxy.port()) + "/0" +
                           "\n  reconnect_min: 20ms\n  reconnect_max: 200ms\nrules:\n"
                           "  - name: r\n    channel: " +
                           channel + "\n    actions:\n      - evict: \"" + p + "k:{id}\"\n");
  DaemonProcess daemon({"run", "--config", config});
  ASSERT_TRUE(daemon.wait_for_output("Redis target default")) << daemon.output();
  ASSERT_TRUE(daemon.wait_for_output("ready")) << daemon.output();
  BlockingPg pg(test_dsn());
  for (int i = 0; i < 50; ++i) pg.notify(channel, "{\"id\": " + std::to_string(i) + "}");
  proxy.cut();
  own.stop();
  // Sent while Redis is down: the daemon queues them.
  for (int i = 50; i < 100; ++i) pg.notify(channel, "{\"id\": " + std::to_string(i) + "}");
  ASSERT_TRUE(daemon.wait_for_output("reconnecting")) << daemon.output();
  own.start();
  // Repopulated by readers after the restart, before the daemon can reconnect: the queued
  // evictions must still remove them.
  RedisTestClient redis(own.port());
  std::vector<std::string> mset{"MSET"};
  for (int i = 50; i < 100; ++i) {
    mset.push_back(p + "k:" + std::to_string(i));
    mset.push_back("v");
  }
  redis.cmd(mset);
  ASSERT_EQ(redis.dbsize(), 50);
  proxy.restore();
  ASSERT_TRUE(wait_until([&] { return redis.dbsize() == 0; })) << daemon.output();
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.output();
}

// The shutdown drain (shutdown.drain_timeout) waits for Redis work in flight, then gives up.
TEST(RedisDaemonOutage, SigtermGivesStuckRedisWorkTheDrainTimeoutThenExits) {
  TcpProxy proxy("127.0.0.1", static_cast<std::uint16_t>(harness_redis_port()));
  std::string channel = "redis_drain_" + std::to_string(::getpid());
  std::string config = write_temp_file(
      "pgfanout.yaml", "postgres: {dsn: \"" + test_dsn() +
                           "\"}\nhttp: {listen: 127.0.0.1:0}\nshutdown: {drain_timeout: 2s}\n"
                           "redis: {url: \"redis://127.0.0.1:" +
                           std::to_string(proxy.port()) +
                           "/0\"}\nrules:\n  - name: r\n    channel: " + channel +
                           "\n    actions:\n      - evict: \"drain:{id}\"\n");
  DaemonProcess daemon({"run", "--config", config});
  ASSERT_TRUE(daemon.wait_for_output("Redis target default")) << daemon.output();
  ASSERT_TRUE(daemon.wait_for_output("ready")) << daemon.output();
  proxy.freeze();  // Redis stops answering; the eviction stays in flight
  BlockingPg pg(test_dsn());
  pg.notify(channel, R"({"id": 1})");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto begin = std::chrono::steady_clock::now();
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(10)), 0) << daemon.output();
  auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_GE(took, std::chrono::milliseconds(1500));
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_TRUE(
      daemon.output_contains("shutdown.drain_timeout reached with 1 action(s) still pending"))
      << daemon.output();
  proxy.restore();
}

TEST(RedisDaemonCheck, ConfigErrorsNameLineAndColumn) {
  std::string path = write_temp_file("bad.yaml",
                                     "postgres: {dsn: \"host=127.0.0.1\"}\n"
                                     "redis:\n"
                                     "  url: redis+tls://cache:6380/0\n"
                                     "  queue_limt: 5\n"
                                     "  cache: {url: redis://127.0.0.1/1}\n"
                                     "rules:\n"
                                     "  - name: r\n"
                                     "    channel: c\n"
                                     "    actions:\n"
                                     "      - evict: \"user:{id}\"\n"
                                     "        target: sessions\n");
  auto [code, out] = run_pgfanout({"check", "--config", path});
  EXPECT_EQ(code, 78) << out;
  EXPECT_NE(out.find(path + ":3:8:"), std::string::npos) << out;
  EXPECT_NE(out.find("starts with redis://, rediss://"), std::string::npos) << out;
  EXPECT_NE(out.find(path + ":4:3:"), std::string::npos) << out;
  EXPECT_NE(out.find("did you mean \"queue_limit\""), std::string::npos) << out;
  EXPECT_NE(out.find(path + ":11:17:"), std::string::npos) << out;
}

}  // namespace
}  // namespace pgfanout::test
