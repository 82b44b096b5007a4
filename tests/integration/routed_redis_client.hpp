// Key commands for a Redis server or a Redis Cluster, for test set-up and checks: in a cluster,
// each command goes to the node that serves its key's slot (the key is args[1]), following MOVED
// and ASK, waiting out TRYAGAIN / CLUSTERDOWN. Blocking, one connection per node.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "integration/redis_test_client.hpp"
#include "redis/ClusterSlots.hpp"

namespace pgfanout::test {

class RoutedRedisClient {
 public:
  // `host:port`: the server, or any node of the cluster when `cluster`.
  RoutedRedisClient(std::string host, int port, bool cluster)
      : host_(std::move(host)), port_(port), cluster_(cluster) {}

  std::string cmd(const std::vector<std::string>& args) {
    if (!cluster_ || args.size() < 2) return node(host_, port_).cmd(args);
    const auto slot = redis::key_slot(args[1]);
    auto at = owner_.count(slot) ? owner_[slot] : std::make_pair(host_, port_);
    for (int attempt = 0; attempt < 50; ++attempt) {
      std::string reply = node(at.first, at.second).cmd(args);
      redis::ClusterNode to;
      std::uint16_t s = 0;
      if (reply.starts_with("MOVED ") && redis::parse_redirect(reply, s, to)) {
        at = owner_[slot] = {to.host, to.port};
      } else if (reply.starts_with("ASK ") && redis::parse_redirect(reply, s, to)) {
        node(to.host, to.port).cmd({"ASKING"});
        reply = node(to.host, to.port).cmd(args);
        if (!reply.starts_with("TRYAGAIN")) return reply;
      } else if (reply.starts_with("TRYAGAIN") || reply.starts_with("CLUSTERDOWN") ||
                 reply == "(no connection)") {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      } else {
        return reply;
      }
    }
    return "(gave up)";
  }

  // The port of the node serving `key` now (asked afresh).
  int port_of(const std::string& key) {
    owner_.erase(redis::key_slot(key));
    cmd({"EXISTS", key});
    auto it = owner_.find(redis::key_slot(key));
    return it != owner_.end() ? it->second.second : port_;
  }

  RedisTestClient& node(const std::string& host, int port) {
    auto& c = nodes_[host + ":" + std::to_string(port)];
    if (!c) c = std::make_unique<RedisTestClient>(port, host);
    return *c;
  }

 private:
  std::string host_;
  int port_;
  bool cluster_;
  std::map<std::string, std::unique_ptr<RedisTestClient>> nodes_;
  std::map<std::uint16_t, std::pair<std::string, int>> owner_;
};

}  // namespace pgfanout::test
