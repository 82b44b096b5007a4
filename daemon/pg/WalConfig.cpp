#include "pg/WalConfig.hpp"

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

void load_wal_config(config::MapReader& root, WalConfig& w) {
  w.enabled = root.has("wal");
  config::read_section(root, "wal", [&](config::MapReader& m) {
    w.slot = m.string("slot");
    w.publication = m.string("publication");
    w.status_interval = m.duration("status_interval");
    w.max_pending = static_cast<std::size_t>(m.integer("max_pending", 1, 10'000'000));
    w.retry_delay = m.duration("retry_delay");
    w.monitor_interval = m.duration("monitor_interval");
    if (!valid_slot_name(w.slot)) {
      m.error("slot", "a slot name is 1 to 63 lower-case letters, digits and underscores");
    }
    if (w.publication.empty() || w.publication.size() > 63) {
      m.error("publication", "must be 1 to 63 bytes");
    }
    if (w.status_interval.count() < 100) m.error("status_interval", "must be at least 100ms");
    if (w.retry_delay.count() <= 0) m.error("retry_delay", "must be positive");
    if (w.monitor_interval.count() < 100) m.error("monitor_interval", "must be at least 100ms");
  });
}

}  // namespace pgfanout::pg
