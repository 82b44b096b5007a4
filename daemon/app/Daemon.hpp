// Daemon: `pgfanout run` — wires the listener, the router and the executors on one io_context.
//
// Owns everything; run() blocks until SIGTERM/SIGINT (a second one exits at once) or a fatal
// error. SIGHUP reloads the config file: an invalid file is reported and the old config keeps
// running; a valid one swaps the rules in and LISTENs/UNLISTENs only the channels that changed.
// Everything runs on the thread that calls run().
#pragma once

#include <memory>
#include <string>

#include "app/Config.hpp"

namespace pgfanout::app {

struct DaemonOptions {
  std::string config_path;
  std::string log_level_override;  // from --log-level; wins over the config's log.level
};

class Daemon {
 public:
  Daemon(std::shared_ptr<const app::Config> config, DaemonOptions options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Returns the process exit code.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgfanout::app
