// Config: the validated contents of a pgfanout.yaml.
//
// Built by load_config() and then immutable; a reload builds a new one and the daemon swaps the
// parts that can change (rules, log level) while keeping the rest.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/Diagnostics.hpp"
#include "config/EnvExpand.hpp"
#include "redis/RedisConfig.hpp"

namespace pgfanout::rules {
class RuleSet;
class ActionRegistry;
}  // namespace pgfanout::rules

namespace pgfanout::config {

struct PostgresConfig {
  std::string dsn;
  std::string password;  // empty: from the DSN or the usual libpq sources
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds heartbeat_interval{5'000};
  std::chrono::milliseconds heartbeat_timeout{15'000};
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{30'000};
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
  redis::RedisConfig redis;
  std::vector<WatchSpec> watch;
  std::shared_ptr<const rules::RuleSet> rules;
};

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
