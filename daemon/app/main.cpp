#include <csignal>

#include "app/Cli.hpp"

int main(int argc, char** argv) {
  // A write to a peer that has gone (hiredis writes to its socket with write(), which raises
  // SIGPIPE when Redis closed the connection; a closed log pipe) must fail with EPIPE and be
  // handled as a lost connection, not end the process.
  std::signal(SIGPIPE, SIG_IGN);
  return pgfanout::app::run_cli(argc, argv);
}
