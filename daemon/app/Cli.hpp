// The command line: pgfanout run | check | sql | install | --version | --help.
#pragma once

namespace pgfanout::app {

// Runs the command in argv and returns the process exit code: 0 success, 64 usage error,
// 78 invalid config (EX_CONFIG), 1 other failures.
int run_cli(int argc, char** argv);

}  // namespace pgfanout::app
