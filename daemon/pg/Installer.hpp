// Installer: `pgfanout install` — applies the trigger-generator SQL and the config's `watch:`
// entries to the database, in one transaction; with the WAL source, also the publication, the
// replica identities and (after that transaction) the slot. `pgfanout wal drop` removes the slot
// and the publication. Blocking libpq; used by the CLI, not the daemon.
#pragma once

#include <string>
#include <vector>

#include "pg/PgConfig.hpp"
#include "pg/WalConfig.hpp"

namespace pgfanout::pg {

struct InstallResult {
  bool ok = false;
  std::string error;
  int watched = 0;
  // What the install changed or found worth saying (replica identities set, slot created,
  // max_slot_wal_keep_size unlimited), one line each.
  std::vector<std::string> notices;
};

// What the WAL source needs from the database.
struct WalPlan {
  const WalConfig* wal = nullptr;  // null: no WAL source, nothing of it is installed
  // The `via: wal` watch tables (as written in the config) whose events must carry old values
  // (`changed:`, or rules that evict keys of the old row): they get REPLICA IDENTITY FULL.
  std::vector<std::string> old_value_tables;
};

// Notify watches get their triggers (pgfanout.watch); `via: wal` watches lose any trigger a
// previous `via: notify` left and become the publication's tables. Without wal_level = logical
// an install that needs the WAL source fails before changing anything.
[[nodiscard]] InstallResult install(const PostgresConfig& postgres,
                                    const std::vector<WatchSpec>& watch, const WalPlan& wal = {});

// Drops the WAL source's slot and publication (refused while a daemon streams from the slot).
[[nodiscard]] InstallResult drop_wal(const PostgresConfig& postgres, const WalConfig& wal);

}  // namespace pgfanout::pg
