// Installer: `pgfanout install` — applies the trigger-generator SQL and the config's `watch:`
// entries to the database, in one transaction. Blocking libpq; used by the CLI, not the daemon.
#pragma once

#include <string>

#include "config/Config.hpp"

namespace pgfanout::pg {

struct InstallResult {
  bool ok = false;
  std::string error;
  int watched = 0;
};

[[nodiscard]] InstallResult install(const config::Config& cfg);

// Text array literal for a bound parameter: {"a","b \"c\""}.
std::string text_array(const std::vector<std::string>& items);

}  // namespace pgfanout::pg
