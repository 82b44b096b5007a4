// DeliveriesCommand: `pgfanout deliveries list|retry` — inspect and resend durable webhook
// deliveries and dead letters in pgfanout.deliveries. Blocking libpq; used by the CLI only.
//
//   pgfanout deliveries list  [--dead] --config FILE   undelivered rows (or only dead letters)
//   pgfanout deliveries retry ID...    --config FILE   send these dead letters again
//   pgfanout deliveries retry --dead   --config FILE   send every dead letter again
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "pg/PgConfig.hpp"

namespace pgfanout::webhook {

struct DeliveriesArgs {
  std::string action;  // list or retry
  bool dead = false;
  std::vector<std::string> ids;
};

// Returns the process exit code (0, 1 on a database error, 64 on bad arguments).
[[nodiscard]] int run_deliveries_command(const pg::PostgresConfig& postgres,
                                         const DeliveriesArgs& args, std::FILE* out,
                                         std::FILE* err);

}  // namespace pgfanout::webhook
