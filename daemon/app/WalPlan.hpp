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

// The WAL source's plan (no WAL source: `wal` stays null). A table needs its whole old row when
// its entry has `changed:`, and the old values of the columns that rules on its channel evict keys
// (or patterns) of, e.g. `user:{username}` (the old name's key must go too on a rename); the
// installer sets REPLICA IDENTITY FULL only when those are not all in the table's key.
pg::WalPlan wal_plan(const Config& config);

}  // namespace pgfanout::app
