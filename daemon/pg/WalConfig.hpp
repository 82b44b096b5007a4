// The `wal:` section of the config: the logical-replication source (docs/wal.md). It runs when the
// section is present or when a `watch:` entry says `via: wal`; `pgfanout install` creates the
// publication and the slot named here. Plain values, their loader and their keys: the rows of
// wal_keys() give each setting's default, range and member (config/Fields.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string>

namespace pgfanout::config {
class MapReader;
struct KeySpec;
}  // namespace pgfanout::config

namespace pgfanout::pg {

struct WalConfig {
  WalConfig();           // the defaults of wal_keys()
  bool enabled = false;  // the section is present (or a watch entry says `via: wal`)
  std::string slot;
  std::string publication;
  // A standby status update goes to the server at least this often (and when asked).
  std::chrono::milliseconds status_interval;
  // Row events handed to actions and not yet completed beyond which reading pauses.
  std::size_t max_pending;
  // After an action failed, the stream restarts from the confirmed position after this delay.
  std::chrono::milliseconds retry_delay;
  // How often slot metrics (retained WAL, status) are read.
  std::chrono::milliseconds monitor_interval;
  // Large transactions streamed before their commit (pgoutput protocol 2, PostgreSQL 14+).
  bool streaming = false;
  // The walsender's logical_decoding_work_mem: a transaction larger than this is streamed.
  std::size_t decoding_work_mem;
  // A streamed transaction's events kept in memory until its commit; the rest go to a file.
  std::size_t spool_memory;
  std::string spool_dir;  // "" : $TMPDIR, else /tmp
};

std::span<const config::KeySpec> wal_keys();

// Reads `wal:` from the top-level mapping; problems go to the reader's diagnostics.
void load_wal_config(config::MapReader& root, WalConfig& out);

}  // namespace pgfanout::pg
