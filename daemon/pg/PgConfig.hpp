// The `postgres:` and `outbox:` sections of the config: how the daemon's PostgreSQL clients
// connect, and how durable rules read pgfanout.outbox. Plain values; the keys, defaults and
// ranges are declared in config/ConfigSchema.cpp.
#pragma once

#include <chrono>
#include <string>

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

}  // namespace pgfanout::pg
