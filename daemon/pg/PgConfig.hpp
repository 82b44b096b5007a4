// The `postgres:`, `outbox:` and `watch:` sections of the config: how the daemon's PostgreSQL
// clients connect, how durable rules read pgfanout.outbox, and the tables `pgfanout install`
// watches. Plain values, their loaders and their keys: the rows of postgres_keys(),
// outbox_keys() and watch_keys() give each setting's default, range and member (config/Fields.hpp).
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <vector>

namespace pgfanout::config {
class MapReader;
struct KeySpec;
}  // namespace pgfanout::config

namespace pgfanout::pg {

struct PostgresConfig {
  PostgresConfig();  // the defaults of postgres_keys()
  std::string dsn;
  std::string password;  // empty: from the DSN or the usual libpq sources
  std::chrono::milliseconds connect_timeout;
  std::chrono::milliseconds heartbeat_interval;
  std::chrono::milliseconds heartbeat_timeout;
  std::chrono::milliseconds reconnect_min;
  std::chrono::milliseconds reconnect_max;
};

struct OutboxConfig {
  OutboxConfig();  // the defaults of outbox_keys()
  std::chrono::milliseconds poll_interval;
  int batch_size;
  std::chrono::milliseconds retry_delay;
  std::chrono::milliseconds trim_interval;
  std::chrono::milliseconds keep;  // consumed events kept for resumes
  std::chrono::milliseconds max_age;
  int trim_batch;
};

struct WatchSpec {
  std::string table;
  std::string channel;
  std::vector<std::string> columns;
  std::vector<std::string> ops;
  std::vector<std::string> changed;
  bool per_statement = false;
  bool durable = false;
  std::string via = "notify";  // "notify" (a trigger) or "wal" (decoded from the publication)
};

// The keys of the sections, in documentation order.
std::span<const config::KeySpec> postgres_keys();
std::span<const config::KeySpec> outbox_keys();
std::span<const config::KeySpec> watch_keys();

// Read the sections from the top-level mapping; problems go to the reader's diagnostics.
void load_postgres_config(config::MapReader& root, PostgresConfig& out);
void load_outbox_config(config::MapReader& root, OutboxConfig& out);
void load_watch_config(config::MapReader& root, std::vector<WatchSpec>& out);

}  // namespace pgfanout::pg
