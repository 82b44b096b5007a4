#include "pg/WalConfig.hpp"

#include "config/Fields.hpp"
#include "config/YamlReader.hpp"

namespace pgfanout::pg {

namespace {

// A slot name: what PostgreSQL accepts (lower-case letters, digits and underscores, at most 63).
bool valid_slot_name(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

std::span<const config::KeySpec> wal_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"wal", Map, "", kRestart, kPlain, kOptional,
   "The logical-replication source (needs wal_level = logical; see docs/wal.md). It runs when this "
   "section is present or a watch entry says `via: wal`."},
  {"wal.slot", String, "pgfanout", kRestart, kPlain, kOptional,
   "The permanent pgoutput slot, created by `pgfanout install`. One per instance (e.g. "
   "`pgfanout_${HOSTNAME}`): a slot is streamed by one connection at a time.",
   config::field<&WalConfig::slot>()},
  {"wal.publication", String, "pgfanout", kRestart, kPlain, kOptional,
   "The publication `pgfanout install` keeps in step with the `via: wal` watch entries.",
   config::field<&WalConfig::publication>()},
  {"wal.status_interval", Duration, "10s", kRestart, kPlain, kOptional,
   "Send the server the confirmed position at least this often (and whenever it asks).",
   config::field<&WalConfig::status_interval>(config::at_least(100, "must be at least 100ms"))},
  {"wal.max_pending", Int, "10000", kRestart, kPlain, kOptional,
   "Row events whose actions have not completed beyond which reading from the slot pauses.",
   config::field<&WalConfig::max_pending>(config::between(1, 10'000'000))},
  {"wal.retry_delay", Duration, "1s", kRestart, kPlain, kOptional,
   "After an action failed, stream again from the confirmed position after this delay.",
   config::field<&WalConfig::retry_delay>(config::kPositive)},
  {"wal.monitor_interval", Duration, "5s", kRestart, kPlain, kOptional,
   "How often the slot's retained WAL, lag and status are read for the metrics and /healthz.",
   config::field<&WalConfig::monitor_interval>(config::at_least(100, "must be at least 100ms"))},
  {"wal.streaming", Bool, "false", kRestart, kPlain, kOptional,
   "Receive a large transaction while it is still running (pgoutput protocol 2 with streaming, "
   "PostgreSQL 14 and later; older servers get protocol 1): its events are decoded then, staged, "
   "and acted on at its commit. Costs CPU on both sides; pays only where the server and the "
   "daemon have cores to spare during the transaction (docs/wal.md).",
   config::field<&WalConfig::streaming>()},
  {"wal.decoding_work_mem", Size, "1MiB", kRestart, kPlain, kOptional,
   "With `streaming`: the walsender's logical_decoding_work_mem for this stream, the decoded "
   "changes of open transactions it holds before it sends the largest while it runs. Without "
   "`streaming` the server's own setting holds (beyond it the walsender spills to its disk).",
   config::field<&WalConfig::decoding_work_mem>(config::at_least(64 * 1024, "must be at least 64KiB"))},
  {"wal.spool_memory", Size, "16MiB", kRestart, kPlain, kOptional,
   "Streamed transactions' events kept in the daemon's memory until their commit, all of them "
   "together; beyond this the transaction being received writes its events to an unlinked file "
   "in `spool_dir`, in writes of at least 64KiB.",
   config::field<&WalConfig::spool_memory>(config::at_least(4096, "must be at least 4KiB"))},
  {"wal.spool_dir", String, "", kRestart, kPlain, kOptional,
   "Where the files of large streamed transactions go (\"\": $TMPDIR, else /tmp; the systemd "
   "unit gives the daemon a private /tmp). Needs room for the largest transaction's events.",
   config::field<&WalConfig::spool_dir>()},
  };
  // clang-format on
  return kRows;
}

WalConfig::WalConfig() {
  config::apply_defaults(wal_keys(), *this);
}

void load_wal_config(config::MapReader& root, WalConfig& w) {
  w.enabled = root.has("wal");
  config::read_section(root, "wal", [&](config::MapReader& m) {
    config::read_fields(m, w);
    config::check_fields(m, w);
    if (!valid_slot_name(w.slot)) {
      m.error("slot", "a slot name is 1 to 63 lower-case letters, digits and underscores");
    }
    if (w.publication.empty() || w.publication.size() > 63) {
      m.error("publication", "must be 1 to 63 bytes");
    }
  });
}

}  // namespace pgfanout::pg
