// RedisConfig: the `redis:` section — one or several named Redis targets and the shared limits.
//
//   redis: {url: redis://127.0.0.1:6379/0}              # one target, named "default"
//   redis:                                               # several named targets
//     queue_limit: 100000
//     cache:    {url: redis://10.0.0.5:6379/0}
//     sessions: {url: unix:///run/redis.sock?db=2, password_file: /etc/pgfanout/redis.pw}
//     remote:   {url: rediss://cache.example.org:6380/0, tls_ca_file: /etc/pgfanout/redis-ca.pem}
//     shared:   {cluster: ["10.0.0.5:7000", "10.0.0.6:7000"], tls: true}   # a Redis Cluster
//
// Top-level `url`/`password`/`tls_*` define the target named "default"; every other key that is not
// a shared setting names a target. An action without `target:` uses "default", or the only target
// when there is just one. load_redis_config() reads the section against the schema and reports
// problems with line and column (cache/RedisActions.hpp's check_redis_targets() then checks that
// every Redis action of the rules names a target that exists). Built at load time, immutable
// afterwards.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "redis/ClusterSlots.hpp"
#include "redis/RedisUrl.hpp"

namespace pgfanout::config {
class MapReader;
class Diagnostics;
struct KeySpec;
}  // namespace pgfanout::config

namespace pgfanout::redis {

struct RedisTarget {
  std::string name;
  RedisUrl url;  // the `password` and `tls_*` keys, when given, are already merged in
  // A Redis Cluster's seed nodes (`cluster:`); empty for a single server. For a cluster, `url`
  // holds what every node connection shares: password, TLS settings (host and port unused).
  std::vector<ClusterNode> cluster;

  bool is_cluster() const { return !cluster.empty(); }

  bool operator==(const RedisTarget&) const = default;
};

struct RedisConfig {
  RedisConfig();                     // the defaults of redis_keys()
  std::vector<RedisTarget> targets;  // empty: no `redis:` section, or none that is valid
  bool configured = false;           // a `redis:` section is present
  std::size_t queue_limit;
  std::size_t batch_keys;
  std::size_t scan_count;
  std::chrono::milliseconds connect_timeout;
  std::chrono::milliseconds command_timeout;
  std::chrono::milliseconds reconnect_min;
  std::chrono::milliseconds reconnect_max;
  std::chrono::milliseconds cluster_refresh;

  // The target an action without `target:` uses; nullptr when there is none (or it is ambiguous).
  const RedisTarget* default_target() const;
  const RedisTarget* find(std::string_view name) const;

  bool operator==(const RedisConfig&) const = default;
};

// The keys of `redis:`, in documentation order; the settings' rows store into RedisConfig.
std::span<const config::KeySpec> redis_keys();

// Reads `redis:` from the top-level mapping `root` into `out` (left empty when absent).
void load_redis_config(config::MapReader& root, RedisConfig& out);

}  // namespace pgfanout::redis
