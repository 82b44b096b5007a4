// Config: the validated contents of a pgfanout.yaml, the one type that knows every section.
//
// Each area declares its own section next to its code (pg/PgConfig.hpp, http/HttpConfig.hpp,
// redis/RedisConfig.hpp, webhook/WebhookConfig.hpp, hub/HubConfig.hpp) with its loader; the app
// owns the whole: load_config() reads the file, calls each area's loader and parses the rules with
// the registry of action kinds (app/ActionKinds.hpp). Built once and then immutable; a reload
// builds a new one and the daemon swaps the parts that can change (rules, log level) while
// keeping the rest: keep_restart_only() keeps each part whose keys the schema marks restart-only.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/ConfigSchema.hpp"
#include "config/Diagnostics.hpp"
#include "config/EnvExpand.hpp"
#include "http/HttpConfig.hpp"
#include "hub/HubConfig.hpp"
#include "pg/PgConfig.hpp"
#include "pg/WalConfig.hpp"
#include "redis/RedisConfig.hpp"
#include "webhook/WebhookConfig.hpp"

namespace pgfanout::rules {
class RuleSet;
class ActionRegistry;
}  // namespace pgfanout::rules

namespace pgfanout::app {

struct ShutdownConfig {
  ShutdownConfig();  // the defaults of its rows
  std::chrono::milliseconds drain_timeout;
};

struct Config {
  Config();  // the defaults of the top-level rows
  std::string file;
  int version;
  std::string consumer;
  std::string log_level;
  pg::PostgresConfig postgres;
  pg::OutboxConfig outbox;
  http::HttpConfig http;
  ShutdownConfig shutdown;
  redis::RedisConfig redis;
  webhook::WebhookConfig webhook;
  hub::AccessConfig access;  // auth:, topics:, commands: (reloadable)
  hub::HubConfig hub;
  std::vector<pg::WatchSpec> watch;
  pg::WalConfig wal;
  std::shared_ptr<const rules::RuleSet> rules;
  // The value of every key that a reload cannot change, by YAML path ("postgres.dsn"), as read
  // (defaults included), so a reload can name each such key that changed.
  std::map<std::string, std::string> restart_only_values;
};

// Every key of a config file: the app's own rows and each area's, in documentation order.
const config::Schema& config_schema();

// Gives `next` the running value of every part of the config whose keys a reload cannot change
// (the rows' reload flags say which).
void keep_restart_only(const Config& running, Config& next);

// The YAML paths of the restart-only keys whose values differ between `running` and `next`.
std::vector<std::string> changed_restart_only_keys(const Config& running, const Config& next);

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when there were errors
  std::vector<config::Diagnostic> errors;
  std::vector<config::Diagnostic> warnings;
};

// Loads and validates a config file. Never throws; every problem is in `errors`. `registry`:
// the action kinds to parse rules with (default: every kind of this build, app::action_kinds()).
[[nodiscard]] LoadResult load_config(const std::string& path,
                                     const config::EnvLookup& env = config::process_env(),
                                     const rules::ActionRegistry* registry = nullptr);
// The same from text already in memory (`name` is used in messages).
[[nodiscard]] LoadResult load_config_text(const std::string& text, const std::string& name,
                                          const config::EnvLookup& env = config::process_env(),
                                          const rules::ActionRegistry* registry = nullptr,
                                          const std::string& base_dir = {});

}  // namespace pgfanout::app
