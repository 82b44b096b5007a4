// What `pgfanout install` must set up for the WAL source, from the whole config: which `via: wal`
// tables need old values in the WAL (REPLICA IDENTITY FULL).
#pragma once

#include <string>

#include "pg/Installer.hpp"

namespace pgfanout::app {

struct Config;

// The channel a watch entry reports on: `channel`, or `<table name>_changed` as
// pgfanout.watch() and the WAL source name it.
std::string watch_channel(const pg::WatchSpec& w);

// The WAL source's plan (no WAL source: `wal` stays null). A table needs old values when its
// entry has `changed:` or a rule on its channel evicts keys (or patterns) that depend on the row's
// side, e.g. `user:{username}` (the old row's key must go too when the name changes).
pg::WalPlan wal_plan(const Config& config);

}  // namespace pgfanout::app
