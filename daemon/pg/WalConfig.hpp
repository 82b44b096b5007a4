// The `wal:` section of the config: the logical-replication source (docs/wal.md). It runs when the
// section is present or when a `watch:` entry says `via: wal`; `pgfanout install` creates the
// publication and the slot named here. Plain values and their loader; the keys and defaults are
// declared in config/ConfigSchema.cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace pgfanout::config {
class MapReader;
}

namespace pgfanout::pg {

struct WalConfig {
  bool enabled = false;  // the section is present (or a watch entry says `via: wal`)
  std::string slot = "pgfanout";
  std::string publication = "pgfanout";
  // A standby status update goes to the server at least this often (and when asked).
  std::chrono::milliseconds status_interval{10'000};
  // Row events handed to actions and not yet completed beyond which reading pauses.
  std::size_t max_pending = 10'000;
  // After an action failed, the stream restarts from the confirmed position after this delay.
  std::chrono::milliseconds retry_delay{1'000};
  // How often slot metrics (retained WAL, status) are read.
  std::chrono::milliseconds monitor_interval{5'000};
};

// Reads `wal:` from the top-level mapping; problems go to the reader's diagnostics.
void load_wal_config(config::MapReader& root, WalConfig& out);

}  // namespace pgfanout::pg
