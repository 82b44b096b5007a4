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

// The old values a `via: wal` table's events must carry.
struct OldValues {
  std::string table;                 // as written in the config
  bool all = false;                  // the whole old row (`changed:` compares old and new)
  std::vector<std::string> columns;  // the old row's columns the rules read (keys of the old row)
};

// What the WAL source needs from the database.
struct WalPlan {
  const WalConfig* wal = nullptr;  // null: no WAL source, nothing of it is installed
  // Tables whose events need old values beyond their key get REPLICA IDENTITY FULL (the default
  // identity logs the old key only).
  std::vector<OldValues> old_values;
};

// Notify watches get their triggers (pgfanout.watch); `via: wal` watches lose any trigger a
// previous `via: notify` left and become the publication's tables. Without wal_level = logical
// an install that needs the WAL source fails before changing anything.
[[nodiscard]] InstallResult install(const PostgresConfig& postgres,
                                    const std::vector<WatchSpec>& watch, const WalPlan& wal = {});

// Drops the WAL source's slot and publication (refused while a daemon streams from the slot).
[[nodiscard]] InstallResult drop_wal(const PostgresConfig& postgres, const WalConfig& wal);

}  // namespace pgfanout::pg
