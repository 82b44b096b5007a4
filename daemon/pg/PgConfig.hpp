// The `postgres:`, `outbox:` and `watch:` sections of the config: how the daemon's PostgreSQL
// clients connect, how durable rules read pgfanout.outbox, and the tables `pgfanout install`
// watches. Plain values and their loaders; the keys and defaults are declared in
// config/ConfigSchema.cpp.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace pgfanout::config {
class MapReader;
}

namespace pgfanout::pg {

struct PostgresConfig {
  std::string dsn;
  std::string password;  // empty: from the DSN or the usual libpq sources
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds heartbeat_interval{5'000};
  std::chrono::milliseconds heartbeat_timeout{15'000};
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{30'000};
};

struct OutboxConfig {
  std::chrono::milliseconds poll_interval{1'000};
  int batch_size = 500;
  std::chrono::milliseconds retry_delay{1'000};
  std::chrono::milliseconds trim_interval{60'000};
  std::chrono::milliseconds max_age{7LL * 24 * 3600 * 1000};
  int trim_batch = 10'000;
};

struct WatchSpec {
  std::string table;
  std::string channel;
  std::vector<std::string> columns;
  std::vector<std::string> ops;
  std::vector<std::string> changed;
  bool per_statement = false;
  bool durable = false;
  std::string via = "notify";  // `notify`: a trigger; `wal`: the logical-replication source
};

// Read the sections from the top-level mapping; problems go to the reader's diagnostics.
void load_postgres_config(config::MapReader& root, PostgresConfig& out);
void load_outbox_config(config::MapReader& root, OutboxConfig& out);
void load_watch_config(config::MapReader& root, std::vector<WatchSpec>& out);

}  // namespace pgfanout::pg
