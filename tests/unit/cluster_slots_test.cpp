// redis/ClusterSlots: CRC16 and hash slots as the Redis Cluster specification gives them, the
// slot map from CLUSTER SHARDS / CLUSTER SLOTS replies (fed as RESP bytes through the reply
// reader, as a connection would), redirects and seed addresses.
#include "redis/ClusterSlots.hpp"

#include <hiredis/hiredis.h>

#include <string>

#include <gtest/gtest.h>

#include "cache/RedisReply.hpp"
#include "redis/RedisReplyReader.hpp"

namespace pgfanout::redis {
namespace {

RedisReplyReader::Reply parse(RedisReplyReader& reader, const std::string& resp) {
  EXPECT_TRUE(reader.feed(resp.data(), resp.size()));
  auto reply = reader.next();
  EXPECT_NE(reply, nullptr);
  return reply;
}

std::string bulk(const std::string& s) {
  return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}

// One node of a CLUSTER SHARDS reply (RESP2: a flat key/value array).
std::string shard_node(const std::string& ip, int port, const std::string& role,
                       const std::string& endpoint = "") {
  return "*10\r\n" + bulk("id") + bulk("abc") + bulk("port") + ":" + std::to_string(port) + "\r\n" +
         bulk("ip") + bulk(ip) + bulk("endpoint") + bulk(endpoint.empty() ? ip : endpoint) +
         bulk("role") + bulk(role);
}

std::string shard(const std::vector<int>& slots, const std::vector<std::string>& nodes) {
  std::string out = "*4\r\n" + bulk("slots") + "*" + std::to_string(slots.size()) + "\r\n";
  for (int s : slots) out += ":" + std::to_string(s) + "\r\n";
  out += bulk("nodes") + "*" + std::to_string(nodes.size()) + "\r\n";
  for (const auto& n : nodes) out += n;
  return out;
}

TEST(ClusterSlots, Crc16IsXmodem) {
  EXPECT_EQ(crc16_xmodem("123456789"), 0x31C3);  // the specification's check value
  EXPECT_EQ(crc16_xmodem(""), 0);
}

TEST(ClusterSlots, KeySlotsMatchRedis) {
  // Values from CLUSTER KEYSLOT of a Redis 7.0 server.
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("123456789"), 0x31C3 % 16384);
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  // Only the first {...} counts; an empty {} hashes the whole key.
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{}{bar}"), crc16_xmodem("foo{}{bar}") % 16384);
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
  EXPECT_EQ(key_slot("{bar"), crc16_xmodem("{bar") % 16384);  // no closing brace
}

TEST(ClusterSlots, ParsesClusterShards) {
  RedisReplyReader reader;
  std::string resp = "*3\r\n" +
                     shard({0, 5460}, {shard_node("10.0.0.1", 7000, "master"),
                                       shard_node("10.0.0.4", 7003, "replica")}) +
                     shard({5461, 10922}, {shard_node("10.0.0.2", 7001, "master", "?")}) +
                     shard({10923, 16000, 16001, 16383},
                           {shard_node("10.0.0.6", 7005, "replica"),
                            shard_node("10.0.0.3", 7002, "master", "redis-3.internal")});
  auto reply = parse(reader, resp);
  SlotMap map;
  std::string error;
  ASSERT_TRUE(parse_cluster_shards(reply.get(), false, "seed", map, error)) << error;
  EXPECT_TRUE(map.complete());
  ASSERT_EQ(map.primaries.size(), 3u);
  EXPECT_EQ(map.primary(0)->address(), "10.0.0.1:7000");
  EXPECT_EQ(map.primary(5460)->address(), "10.0.0.1:7000");
  EXPECT_EQ(map.primary(5461)->address(), "10.0.0.2:7001");  // "?" endpoint: its ip
  EXPECT_EQ(map.primary(16383)->address(), "redis-3.internal:7002");
  EXPECT_EQ(map.primary(key_slot("foo"))->address(), "redis-3.internal:7002");
}

TEST(ClusterSlots, ShardsWithoutPrimaryOrSlotsLeaveGaps) {
  RedisReplyReader reader;
  std::string resp = "*3\r\n" + shard({0, 99}, {shard_node("10.0.0.1", 7000, "master")}) +
                     shard({100, 199}, {shard_node("10.0.0.4", 7003, "replica")}) +
                     shard({}, {shard_node("10.0.0.5", 7004, "master")});
  auto reply = parse(reader, resp);
  SlotMap map;
  std::string error;
  ASSERT_TRUE(parse_cluster_shards(reply.get(), false, "seed", map, error)) << error;
  EXPECT_EQ(map.covered(), 100u);
  EXPECT_FALSE(map.complete());
  EXPECT_EQ(map.primary(150), nullptr);
  EXPECT_EQ(map.primaries.size(), 1u);
}

TEST(ClusterSlots, RejectsMalformedShards) {
  RedisReplyReader reader;
  SlotMap map;
  std::string error;
  auto not_array = parse(reader, "+OK\r\n");
  EXPECT_FALSE(parse_cluster_shards(not_array.get(), false, "seed", map, error));
  auto out_of_range =
      parse(reader, "*1\r\n" + shard({0, 16384}, {shard_node("10.0.0.1", 7000, "master")}));
  EXPECT_FALSE(parse_cluster_shards(out_of_range.get(), false, "seed", map, error));
  EXPECT_NE(error.find("out of bounds"), std::string::npos) << error;
  auto bad_port = parse(reader, "*1\r\n" + shard({0, 1}, {shard_node("10.0.0.1", 0, "master")}));
  EXPECT_FALSE(parse_cluster_shards(bad_port.get(), false, "seed", map, error));
}

TEST(ClusterSlots, ParsesClusterSlots) {
  RedisReplyReader reader;
  auto range = [](int from, int to, const std::string& ip, int port) {
    return "*4\r\n:" + std::to_string(from) + "\r\n:" + std::to_string(to) + "\r\n*3\r\n" +
           bulk(ip) + ":" + std::to_string(port) + "\r\n" + bulk("id1") + "*3\r\n" +
           bulk("10.0.0.9") + ":7009\r\n" + bulk("id2");
  };
  auto reply =
      parse(reader, "*2\r\n" + range(0, 8191, "10.0.0.1", 7000) + range(8192, 16383, "", 7001));
  SlotMap map;
  std::string error;
  ASSERT_TRUE(parse_cluster_slots(reply.get(), "seed.example", map, error)) << error;
  EXPECT_TRUE(map.complete());
  EXPECT_EQ(map.primary(0)->address(), "10.0.0.1:7000");
  EXPECT_EQ(map.primary(16383)->address(), "seed.example:7001");  // empty ip: the asked host
}

TEST(ClusterSlots, MovedPointsTheSlotAtTheNewPrimary) {
  SlotMap map;
  std::uint16_t slot = 0;
  ClusterNode node;
  ASSERT_TRUE(parse_redirect("MOVED 3999 127.0.0.1:6381", slot, node));
  EXPECT_EQ(slot, 3999);
  EXPECT_EQ(node.address(), "127.0.0.1:6381");
  map.assign(slot, node);
  EXPECT_EQ(map.primary(3999)->address(), "127.0.0.1:6381");
  ASSERT_TRUE(parse_redirect("ASK 12182 [::1]:7000", slot, node));
  EXPECT_EQ(node.host, "::1");
  EXPECT_EQ(node.address(), "[::1]:7000");
  EXPECT_FALSE(parse_redirect("MOVED 16384 127.0.0.1:6381", slot, node));
  EXPECT_FALSE(parse_redirect("MOVED x 127.0.0.1:6381", slot, node));
  EXPECT_FALSE(parse_redirect("MOVED 1", slot, node));
}

TEST(ClusterSlots, SeedAddresses) {
  ClusterNode node;
  EXPECT_TRUE(parse_host_port("10.0.0.5:7000", node));
  EXPECT_EQ(node.host, "10.0.0.5");
  EXPECT_EQ(node.port, 7000);
  EXPECT_TRUE(parse_host_port("redis-1.internal:6379", node));
  EXPECT_TRUE(parse_host_port("[fd00::5]:7000", node));
  EXPECT_EQ(node.host, "fd00::5");
  for (const char* bad : {"10.0.0.5", "10.0.0.5:", ":7000", "10.0.0.5:0", "10.0.0.5:65536",
                          "fd00::5:7000", "redis://10.0.0.5:7000", "10.0.0.5:70x", "[]:7000"}) {
    EXPECT_FALSE(parse_host_port(bad, node)) << bad;
  }
}

TEST(ClusterSlots, RedirectsAreResentOnlyForClusterTargets) {
  RedisReplyReader reader;
  using K = Reply::Kind;
  const std::pair<const char*, K> cases[] = {
      {"-MOVED 3999 127.0.0.1:6381\r\n", K::Moved},
      {"-ASK 3999 127.0.0.1:6381\r\n", K::Ask},
      {"-TRYAGAIN Multiple keys request during rehashing of slot\r\n", K::TryAgain},
      {"-CLUSTERDOWN The cluster is down\r\n", K::TryAgain},
      {"-READONLY You can't write against a read only replica.\r\n", K::ReadOnly},
      {"-CROSSSLOT Keys in request don't hash to the same slot\r\n", K::Error},
  };
  for (const auto& [resp, kind] : cases) {
    auto reply = parse(reader, resp);
    EXPECT_EQ(classify(reply.get(), true).kind, kind) << resp;
    EXPECT_EQ(classify(reply.get(), true).resend(), kind != K::Error) << resp;
    // A single server that sends a redirect is answered as an error (nothing to follow).
    auto single = classify(reply.get(), false).kind;
    EXPECT_EQ(single, kind == K::ReadOnly ? K::ReadOnly : K::Error) << resp;
  }
  EXPECT_EQ(error_code("MOVED 3999 127.0.0.1:6381"), "MOVED");
}

}  // namespace
}  // namespace pgfanout::redis
