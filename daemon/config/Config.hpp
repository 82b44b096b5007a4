// Config: the validated contents of a pgfanout.yaml.
//
// Built by load_config() and then immutable; a reload builds a new one and the daemon swaps the
// parts that can change (rules, log level) while keeping the rest.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/Diagnostics.hpp"
#include "config/EnvExpand.hpp"
#include "http/ListenAddress.hpp"
#include "hub/HubConfig.hpp"
#include "pg/PgConfig.hpp"
#include "redis/RedisConfig.hpp"

namespace pgfanout::rules {
class RuleSet;
class ActionRegistry;
}  // namespace pgfanout::rules

namespace pgfanout::config {

using PostgresConfig = pg::PostgresConfig;
using OutboxConfig = pg::OutboxConfig;

struct HttpConfig {
  std::string listen = "127.0.0.1:8080";  // as written
  http::ListenAddress address{"127.0.0.1", 8080};
  int max_connections = 1024;
  std::uint64_t max_header_bytes = 8 * 1024;
  std::uint64_t max_body_bytes = 64 * 1024;
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::vector<std::string> allowed_origins;  // empty: any Origin
  std::string static_dir;                    // empty: no static files
};

struct ShutdownConfig {
  std::chrono::milliseconds drain_timeout{10'000};
};

struct WebhookConfig {
  int queue_limit = 10'000;
  int max_connections_per_endpoint = 8;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds idle_timeout{30'000};
  std::string group = "webhooks";
  int claim_batch = 200;
  int max_in_flight = 256;
  std::chrono::milliseconds lease{60'000};
  std::chrono::milliseconds poll_interval{1'000};
  std::chrono::milliseconds keep_done{86'400'000};
};

struct WatchSpec {
  std::string table;
  std::string channel;
  std::vector<std::string> columns;
  std::vector<std::string> ops;
  std::vector<std::string> changed;
  bool per_statement = false;
  bool durable = false;
};

struct Config {
  std::string file;
  int version = 1;
  std::string consumer;
  std::string log_level = "info";
  PostgresConfig postgres;
  OutboxConfig outbox;
  HttpConfig http;
  ShutdownConfig shutdown;
  redis::RedisConfig redis;
  WebhookConfig webhook;
  hub::HubConfig hub;
  std::vector<WatchSpec> watch;
  std::shared_ptr<const rules::RuleSet> rules;
  // The value of every key that a reload cannot change, by YAML path ("postgres.dsn"), as read
  // (defaults included), so a reload can name each such key that changed.
  std::map<std::string, std::string> restart_only_values;
};

// The YAML paths of the restart-only keys whose values differ between `running` and `next`.
std::vector<std::string> changed_restart_only_keys(const Config& running, const Config& next);

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when there were errors
  std::vector<Diagnostic> errors;
  std::vector<Diagnostic> warnings;
};

// Loads and validates a config file. Never throws; every problem is in `errors`.
[[nodiscard]] LoadResult load_config(const std::string& path, const EnvLookup& env = process_env(),
                                     const rules::ActionRegistry* registry = nullptr);
// The same from text already in memory (`name` is used in messages).
[[nodiscard]] LoadResult load_config_text(const std::string& text, const std::string& name,
                                          const EnvLookup& env = process_env(),
                                          const rules::ActionRegistry* registry = nullptr,
                                          const std::string& base_dir = {});

}  // namespace pgfanout::config
