// Installer: `pgfanout install` — applies the trigger-generator SQL and the config's `watch:`
// entries to the database, in one transaction. Blocking libpq; used by the CLI, not the daemon.
#pragma once

#include <string>
#include <vector>

#include "pg/PgConfig.hpp"

namespace pgfanout::pg {

struct InstallResult {
  bool ok = false;
  std::string error;
  int watched = 0;
};

[[nodiscard]] InstallResult install(const PostgresConfig& postgres,
                                    const std::vector<WatchSpec>& watch);

}  // namespace pgfanout::pg
