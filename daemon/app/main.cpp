#include "app/Cli.hpp"

int main(int argc, char** argv) {
  return pgfanout::app::run_cli(argc, argv);
}
