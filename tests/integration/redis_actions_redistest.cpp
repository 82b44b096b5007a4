// The Redis actions against a real Redis, in process: the router and RedisEvictor on one
// io_context, fed notifications directly.
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "app/Config.hpp"
#include "cache/RedisEvictor.hpp"
#include "metrics/Metrics.hpp"
#include "redis_routing.hpp"
#include "redis_test_client.hpp"
#include "rules/LogAction.hpp"
#include "rules/Router.hpp"
#include "rules/RuleSet.hpp"
#include "support/TcpProxy.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::test {
namespace {

// Each test works under its own key prefix so they cannot see each other's keys.
std::string prefix() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string("t:") + info->name() + ":" + std::to_string(::getpid()) + ":";
}

class RedisActions : public ::testing::Test {
 protected:
  // Loads `rules_yaml` (the rules: list) with the harness Redis as the default target.
  void start(const std::string& rules_yaml, const std::string& redis_extra = "",
             const std::string& url = "") {
    std::string text = "postgres: {dsn: \"host=127.0.0.1\"}\nredis:\n  url: " +
                       (url.empty() ? harness_env("PGFANOUT_TEST_REDIS_URL") : url) + "\n" +
                       redis_extra + "rules:\n" + rules_yaml;
    routing.start(io, metrics, text);
    ASSERT_TRUE(config);
    router->add_executor("log", log_executor);
    routing.run();
  }

  void notify(const std::string& channel, const std::string& payload) {
    router->route(rules::Notification{channel, payload});
    router->flush();
  }

  bool settle(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return run_until(
        io, [&] { return evictor->idle(); }, timeout);
  }

  double actions(const std::string& rule, const std::string& kind,
                 const char* name = "pgfanout_actions_total") {
    return metrics.value(name, {{"rule", rule}, {"kind", kind}});
  }

  RedisTestClient redis{harness_redis_port()};
  std::string p = prefix();
  boost::asio::io_context io{1};
  Metrics metrics;
  rules::LogExecutor log_executor;
  RedisRouting routing;
  std::shared_ptr<const app::Config>& config = routing.config;
  std::unique_ptr<rules::Router>& router = routing.router;
  std::unique_ptr<redis::RedisEvictor>& evictor = routing.evictor;
  std::vector<std::string>& gaps = routing.gaps;
};

TEST_F(RedisActions, EvictUnlinksRenderedKeys) {
  start("  - name: r\n    channel: c\n    actions:\n      - evict: [\"" + p + "user:{id}\", \"" +
        p + "name:{name}\"]\n");
  redis.set(p + "user:7");
  redis.set(p + "name:ann");
  redis.set(p + "user:8");
  notify("c", R"({"id": 7, "name": "ann"})");
  ASSERT_TRUE(settle());
  EXPECT_FALSE(redis.exists(p + "user:7"));
  EXPECT_FALSE(redis.exists(p + "name:ann"));
  EXPECT_TRUE(redis.exists(p + "user:8"));
  EXPECT_EQ(actions("r", "evict"), 1);
}

TEST_F(RedisActions, RepeatedKeysInOneBatchAreSentOnceAndEveryActionCompletes) {
  start("  - name: r\n    channel: c\n    actions:\n      - evict: [\"" + p + "row:{id}\", \"" + p +
        "row:{id}\"]\n");
  for (int i = 0; i < 10; ++i) redis.set(p + "row:" + std::to_string(i));
  // One loop turn: 100 events naming 10 rows, each action naming its key twice.
  for (int i = 0; i < 100; ++i) {
    router->route(rules::Notification{"c", "{\"id\": " + std::to_string(i % 10) + "}"});
  }
  router->flush();
  ASSERT_TRUE(settle());
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(redis.exists(p + "row:" + std::to_string(i)));
  EXPECT_EQ(actions("r", "evict"), 100);
  EXPECT_EQ(actions("r", "evict", "pgfanout_actions_failed_total"), 0);
  EXPECT_EQ(metrics.value("pgfanout_redis_keys_sent_total", {{"target", "default"}}), 10);
  EXPECT_EQ(metrics.value("pgfanout_redis_keys_deduplicated_total", {{"target", "default"}}), 190);
  EXPECT_EQ(metrics.value("pgfanout_redis_keys_deleted_total", {{"target", "default"}}), 10);
}

TEST_F(RedisActions, DelWhenUnlinkIsFalse) {
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p +
        "user:{id}\"\n        unlink: false\n");
  redis.set(p + "user:1");
  notify("c", R"({"id": 1})");
  ASSERT_TRUE(settle());
  EXPECT_FALSE(redis.exists(p + "user:1"));
}

TEST_F(RedisActions, UpdateEvictsTheKeysOfBothOldAndNewRow) {
  start("  - name: r\n    channel: c\n    actions:\n      - evict: [\"" + p +
        "name:{username}\", \"" + p + "user:{id}\"]\n");
  redis.set(p + "name:ann");
  redis.set(p + "name:anne");
  redis.set(p + "user:7");
  redis.set(p + "name:bob");
  notify("c",
         R"({"op":"UPDATE","new":{"id":7,"username":"ann"},"old":{"id":7,"username":"anne"}})");
  ASSERT_TRUE(settle());
  EXPECT_FALSE(redis.exists(p + "name:ann"));
  EXPECT_FALSE(redis.exists(p + "name:anne"));
  EXPECT_FALSE(redis.exists(p + "user:7"));
  EXPECT_TRUE(redis.exists(p + "name:bob"));
}

TEST_F(RedisActions, ExplicitNewOnDeleteDoesNotApplyAndIsNotASkip) {
  start("  - name: r\n    channel: c\n    actions:\n      - evict: [\"" + p + "user:{id}\", \"" +
        p + "name:{new.username}\", \"" + p + "name:{old.username}\"]\n");
  redis.set(p + "user:7");
  redis.set(p + "name:anne");
  notify("c", R"({"op":"DELETE","old":{"id":7,"username":"anne"}})");
  ASSERT_TRUE(settle());
  EXPECT_FALSE(redis.exists(p + "user:7"));
  EXPECT_FALSE(redis.exists(p + "name:anne"));
  EXPECT_EQ(actions("r", "evict", "pgfanout_actions_skipped_total"), 0);
}

TEST_F(RedisActions, MissingFieldSkipsAndNeverWritesALiteralKey) {
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p + "user:{id}\"\n");
  redis.set(p + "user:{id}");
  notify("c", R"({"other": 1})");
  notify("c", "plain text");
  ASSERT_TRUE(settle());
  EXPECT_TRUE(redis.exists(p + "user:{id}"));
  EXPECT_EQ(actions("r", "evict", "pgfanout_actions_skipped_total"), 2);
  EXPECT_EQ(actions("r", "evict"), 0);
}

TEST_F(RedisActions, EvictPatternDeletesMatchingKeysOnly) {
  start("  - name: r\n    channel: c\n    actions:\n      - evict_pattern: \"" + p +
            "user:{id}:*\"\n",
        "  scan_count: 10\n");
  for (int i = 0; i < 300; ++i) redis.set(p + "user:5:" + std::to_string(i));
  redis.set(p + "user:50:x");
  redis.set(p + "user:6:x");
  notify("c", R"({"id": 5})");
  ASSERT_TRUE(settle());
  EXPECT_FALSE(redis.exists(p + "user:5:0"));
  EXPECT_FALSE(redis.exists(p + "user:5:299"));
  EXPECT_TRUE(redis.exists(p + "user:50:x"));
  EXPECT_TRUE(redis.exists(p + "user:6:x"));
  EXPECT_EQ(actions("r", "evict_pattern"), 1);
}

TEST_F(RedisActions, GlobCharactersInPayloadNeverWidenAPattern) {
  start("  - name: r\n    channel: c\n    actions:\n      - evict_pattern: \"" + p +
        "user:{id}:*\"\n");
  redis.set(p + "user:1:a");
  redis.set(p + "user:2:b");
  redis.set(p + "user:*:literal");
  notify("c", R"({"id": "*"})");
  notify("c", R"({"id": "?"})");
  notify("c", R"({"id": "[12]"})");
  ASSERT_TRUE(settle());
  EXPECT_TRUE(redis.exists(p + "user:1:a"));
  EXPECT_TRUE(redis.exists(p + "user:2:b"));
  // A key whose id really is "*" is the one the payload named.
  EXPECT_FALSE(redis.exists(p + "user:*:literal"));
}

TEST_F(RedisActions, PublishSendsRenderedMessage) {
  start("  - name: r\n    channel: c\n    actions:\n      - publish: {channel: \"" + p +
        "ch:{id}\", message: \"changed {id}\"}\n");
  // Subscribe on a raw connection and read the message after publishing.
  redisContext* sub = redisConnect("127.0.0.1", harness_redis_port());
  ASSERT_TRUE(sub != nullptr && sub->err == 0);
  auto* r = static_cast<redisReply*>(redisCommand(sub, "SUBSCRIBE %s", (p + "ch:3").c_str()));
  freeReplyObject(r);
  notify("c", R"({"id": 3})");
  ASSERT_TRUE(settle());
  void* msg = nullptr;
  ASSERT_EQ(redisGetReply(sub, &msg), REDIS_OK);
  auto* m = static_cast<redisReply*>(msg);
  ASSERT_EQ(m->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(m->elements, 3u);
  EXPECT_EQ(std::string(m->element[2]->str, m->element[2]->len), "changed 3");
  freeReplyObject(m);
  redisFree(sub);
  EXPECT_EQ(actions("r", "publish"), 1);
}

TEST_F(RedisActions, AgainAfterEvictsAKeyWrittenBackAfterTheFirstEviction) {
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p +
        "user:{id}\"\n        again_after: 300ms\n");
  redis.set(p + "user:1");
  notify("c", R"({"id": 1})");
  ASSERT_TRUE(run_until(io, [&] { return !redis.exists(p + "user:1"); }));
  // A reader that loaded the old row before the commit writes it back now.
  redis.set(p + "user:1", "stale");
  ASSERT_TRUE(settle(std::chrono::seconds(5)));
  EXPECT_FALSE(redis.exists(p + "user:1"));
}

TEST_F(RedisActions, BurstOf10000KeysIsFullyEvictedInFewCommands) {
  // A private server, so that its command statistics count only this test's commands.
  OwnRedisServer own;
  RedisTestClient own_redis(own.port());
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p + "k:{id}\"\n", "",
        own.url());
  for (int i = 0; i < 10000; i += 1000) {
    std::vector<std::string> mset{"MSET"};
    for (int j = i; j < i + 1000; ++j) {
      mset.push_back(p + "k:" + std::to_string(j));
      mset.push_back("v");
    }
    own_redis.cmd(mset);
  }
  own_redis.cmd({"CONFIG", "RESETSTAT"});
  // One loop turn: 10,000 notifications, then one flush.
  for (int i = 0; i < 10000; ++i) {
    router->route(rules::Notification{"c", "{\"id\": " + std::to_string(i) + "}"});
  }
  router->flush();
  ASSERT_TRUE(settle());
  EXPECT_EQ(own_redis.dbsize(), 0);
  EXPECT_EQ(actions("r", "evict"), 10000);
  EXPECT_EQ(metrics.value("pgfanout_redis_keys_sent_total", {{"target", "default"}}), 10000);
  EXPECT_EQ(metrics.value("pgfanout_redis_keys_deleted_total", {{"target", "default"}}), 10000);
  // 512 keys per UNLINK: 20 commands, not 10,000 round trips.
  std::string stats = own_redis.cmd({"INFO", "commandstats"});
  auto at = stats.find("cmdstat_unlink:calls=");
  ASSERT_NE(at, std::string::npos) << stats;
  EXPECT_EQ(std::atoi(stats.c_str() + at + 21), 20) << stats;
}

TEST_F(RedisActions, OutboxEventIsAcknowledgedOnlyAfterTheReply) {
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p + "user:{id}\"\n");
  std::optional<bool> settled;
  auto completion = std::make_shared<rules::EventCompletion>([&](bool ok) { settled = ok; });
  router->route(rules::Notification{"c", R"({"id": 1})"}, completion);
  router->flush();
  completion.reset();
  EXPECT_FALSE(settled.has_value());  // the UNLINK has not been answered yet
  ASSERT_TRUE(run_until(io, [&] { return settled.has_value(); }));
  EXPECT_TRUE(*settled);
}

TEST_F(RedisActions, ReadonlyReplyKeepsTheEvictionAndReconnects) {
  OwnRedisServer own;
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p + "user:{id}\"\n", "",
        own.url());
  RedisTestClient admin(own.port());
  ASSERT_TRUE(run_until(io, [&] {
    return metrics.value("pgfanout_redis_connected", {{"target", "default"}}) == 1;
  }));
  admin.cmd({"REPLICAOF", "127.0.0.1", "1"});  // a primary that does not exist: stays read-only
  notify("c", R"({"id": 1})");
  ASSERT_TRUE(run_until(io, [&] {
    return metrics.value("pgfanout_redis_errors_total",
                         {{"target", "default"}, {"error", "READONLY"}}) >= 1;
  }));
  // READONLY keeps the eviction queued and reconnects; once the server is a primary again the
  // key is deleted.
  EXPECT_EQ(evictor->queued(), 1u);
  admin.cmd({"REPLICAOF", "NO", "ONE"});
  admin.set(p + "user:1");
  ASSERT_TRUE(run_until(io, [&] { return !admin.exists(p + "user:1") && evictor->idle(); }));
  EXPECT_EQ(actions("r", "evict"), 1);
  EXPECT_EQ(actions("r", "evict", "pgfanout_actions_failed_total"), 0);
}

TEST_F(RedisActions, AclUserLogsInAndAnErrorReplyFailsTheAction) {
  OwnRedisServer own;
  RedisTestClient admin(own.port());
  // The user may do everything but UNLINK: the eviction gets a NOPERM error reply.
  ASSERT_EQ(admin.cmd({"ACL", "SETUSER", "app", "on", ">s3cret", "~*", "&*", "+@all", "-unlink"}),
            "OK");
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p +
            "user:{id}\"\n"
            "      - publish: {channel: \"" +
            p + "ch\"}\n",
        "", "redis://app:s3cret@127.0.0.1:" + std::to_string(own.port()) + "/3");
  admin.cmd({"SELECT", "3"});
  admin.set(p + "user:1");
  std::optional<bool> settled;
  auto completion = std::make_shared<rules::EventCompletion>([&](bool ok) { settled = ok; });
  router->route(rules::Notification{"c", R"({"id": 1})"}, completion);
  router->flush();
  completion.reset();
  ASSERT_TRUE(run_until(io, [&] { return settled.has_value(); }));
  EXPECT_FALSE(*settled);  // the outbox event would be retried
  EXPECT_EQ(actions("r", "evict", "pgfanout_actions_failed_total"), 1);
  EXPECT_EQ(actions("r", "publish"), 1);  // logged in as "app" on database 3
  EXPECT_EQ(
      metrics.value("pgfanout_redis_errors_total", {{"target", "default"}, {"error", "NOPERM"}}),
      1);
  EXPECT_EQ(metrics.value("pgfanout_redis_keys_failed_total", {{"target", "default"}}), 1);
  EXPECT_TRUE(admin.exists(p + "user:1"));
}

TEST_F(RedisActions, WrongPasswordIsRefusedAndRetried) {
  OwnRedisServer own;
  RedisTestClient admin(own.port());
  admin.cmd({"CONFIG", "SET", "requirepass", "right"});
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p + "user:{id}\"\n",
        "  password: wrong\n", own.url());
  ASSERT_TRUE(run_until(io, [&] {
    return metrics.value("pgfanout_redis_disconnects_total", {{"target", "default"}}) >= 2;
  }));
  EXPECT_EQ(metrics.value("pgfanout_redis_connected", {{"target", "default"}}), 0);
}

TEST_F(RedisActions, RedisRestartedMidStreamLosesNoEviction) {
  auto own = std::make_unique<OwnRedisServer>();
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p + "k:{id}\"\n",
        "  reconnect_min: 20ms\n  reconnect_max: 100ms\n", own->url());
  RedisTestClient before(own->port());
  for (int i = 0; i < 100; ++i) before.set(p + "k:" + std::to_string(i));
  for (int i = 0; i < 100; ++i) notify("c", "{\"id\": " + std::to_string(i) + "}");
  ASSERT_TRUE(settle());
  EXPECT_EQ(before.dbsize(), 0);

  int port = own->port();
  own->stop();
  ASSERT_TRUE(run_until(io, [&] {
    return metrics.value("pgfanout_redis_connected", {{"target", "default"}}) == 0;
  }));
  // Sent while Redis is down: they wait in the queue.
  for (int i = 100; i < 200; ++i) notify("c", "{\"id\": " + std::to_string(i) + "}");
  EXPECT_EQ(evictor->queued(), 100u);
  // The restarted server gets the keys (a reader repopulated them) before the daemon is back.
  own->start();
  ASSERT_EQ(own->port(), port);
  RedisTestClient after(port);
  for (int i = 100; i < 200; ++i) after.set(p + "k:" + std::to_string(i));
  ASSERT_TRUE(settle());
  EXPECT_EQ(after.dbsize(), 0);
  EXPECT_EQ(actions("r", "evict"), 200);
  EXPECT_EQ(actions("r", "evict", "pgfanout_actions_failed_total"), 0);
  EXPECT_TRUE(gaps.empty());
}

TEST_F(RedisActions, QueueOverflowRunsOnGapOnceRedisIsBack) {
  auto own = std::make_unique<OwnRedisServer>();
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p + "k:{id}\"\n" +
            "    on_gap:\n      - evict_pattern: \"" + p +
            "*\"\n      - log: \"gap on {channel}\"\n",
        "  queue_limit: 10\n  reconnect_min: 20ms\n  reconnect_max: 100ms\n", own->url());
  ASSERT_TRUE(run_until(io, [&] {
    return metrics.value("pgfanout_redis_connected", {{"target", "default"}}) == 1;
  }));
  own->stop();
  ASSERT_TRUE(run_until(io, [&] {
    return metrics.value("pgfanout_redis_connected", {{"target", "default"}}) == 0;
  }));
  std::optional<bool> settled;
  auto completion = std::make_shared<rules::EventCompletion>([&](bool ok) { settled = ok; });
  for (int i = 0; i < 20; ++i) {
    router->route(rules::Notification{"c", "{\"id\": " + std::to_string(i) + "}"}, completion);
  }
  router->flush();
  completion.reset();
  EXPECT_EQ(evictor->queued(), 10u);
  EXPECT_EQ(metrics.value("pgfanout_redis_dropped_total", {{"rule", "r"}, {"target", "default"}}),
            10);
  EXPECT_EQ(metrics.value("pgfanout_redis_queued", {{"target", "default"}}), 10);
  EXPECT_EQ(metrics.value("pgfanout_redis_queue_limit", {{"target", "default"}}), 10);
  EXPECT_TRUE(gaps.empty());  // not while Redis is away

  own->start();
  RedisTestClient after(own->port());
  after.set(p + "marker");  // what the dropped evictions would have hit
  after.set(p + "k:15");
  after.set("other:untouched");
  ASSERT_TRUE(run_until(io, [&] { return !gaps.empty() && evictor->idle(); }));
  EXPECT_EQ(gaps, std::vector<std::string>{"r"});
  EXPECT_FALSE(after.exists(p + "marker"));
  EXPECT_FALSE(after.exists(p + "k:15"));
  EXPECT_TRUE(after.exists("other:untouched"));
  EXPECT_EQ(metrics.value("pgfanout_redis_gaps_total", {{"rule", "r"}}), 1);
  // The event whose eviction was dropped is not acknowledged.
  ASSERT_TRUE(settled.has_value());
  EXPECT_FALSE(*settled);
}

TEST_F(RedisActions, ConnectionCutWithCommandsInFlightResendsThem) {
  TcpProxy proxy("127.0.0.1", static_cast<std::uint16_t>(harness_redis_port()));
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p + "k:{id}\"\n",
        "  reconnect_min: 20ms\n  reconnect_max: 100ms\n",
        "redis://127.0.0.1:" + std::to_string(proxy.port()) + "/0");
  ASSERT_TRUE(run_until(io, [&] {
    return metrics.value("pgfanout_redis_connected", {{"target", "default"}}) == 1;
  }));
  for (int i = 0; i < 2000; ++i) redis.set(p + "k:" + std::to_string(i));
  for (int i = 0; i < 2000; ++i) {
    router->route(rules::Notification{"c", "{\"id\": " + std::to_string(i) + "}"});
  }
  router->flush();  // the commands are with hiredis now; cut before their replies come
  proxy.cut();
  ASSERT_TRUE(run_until(io, [&] {
    return metrics.value("pgfanout_redis_connected", {{"target", "default"}}) == 0;
  }));
  proxy.restore();
  ASSERT_TRUE(settle());
  EXPECT_EQ(redis.cmd({"EXISTS", p + "k:0", p + "k:1000", p + "k:1999"}), "0");
  EXPECT_EQ(actions("r", "evict"), 2000);
}

TEST_F(RedisActions, FrozenConnectionTimesOutAndReconnects) {
  TcpProxy proxy("127.0.0.1", static_cast<std::uint16_t>(harness_redis_port()));
  start("  - name: r\n    channel: c\n    actions:\n      - evict: \"" + p + "k:{id}\"\n",
        "  command_timeout: 300ms\n  reconnect_min: 20ms\n  reconnect_max: 100ms\n",
        "redis://127.0.0.1:" + std::to_string(proxy.port()) + "/0");
  ASSERT_TRUE(run_until(io, [&] {
    return metrics.value("pgfanout_redis_connected", {{"target", "default"}}) == 1;
  }));
  redis.set(p + "k:1");
  proxy.freeze();
  notify("c", R"({"id": 1})");
  ASSERT_TRUE(run_until(io, [&] {
    return metrics.value("pgfanout_redis_disconnects_total", {{"target", "default"}}) >= 1;
  }));
  proxy.restore();
  ASSERT_TRUE(settle());
  EXPECT_FALSE(redis.exists(p + "k:1"));
  EXPECT_EQ(actions("r", "evict"), 1);
}

}  // namespace
}  // namespace pgfanout::test
