#include "app/Cli.hpp"

#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "app/Config.hpp"
#include "app/Daemon.hpp"
#include "app/WalPlan.hpp"
#include "config/ConfigSchema.hpp"
#include "log/Log.hpp"
#include "pg/Installer.hpp"
#include "pg/SqlBundle.hpp"
#include "rules/RuleSet.hpp"
#include "webhook/DeliveriesCommand.hpp"

namespace pgfanout::app {

namespace {

constexpr int kExitUsage = 64;
constexpr int kExitConfig = 78;
constexpr const char* kDefaultConfig = "/etc/pgfanout/pgfanout.yaml";

constexpr const char* kUsage =
    R"(pgfanout: PostgreSQL NOTIFY to cache invalidation and live change feeds

Usage:
  pgfanout run     [--config FILE] [--log-level LEVEL]   run the daemon
  pgfanout check   [--config FILE]                       validate the config; exit 0 or 78
  pgfanout check   --reference                           print the configuration reference
  pgfanout sql                                           print the trigger-generator SQL
  pgfanout install [--config FILE]                       apply that SQL and the config's watch: entries
                                                         (and the WAL source's publication and slot)
  pgfanout wal drop [--config FILE]                      drop the WAL source's slot and publication
  pgfanout deliveries list [--dead] [--config FILE]      undelivered durable webhooks / dead letters
  pgfanout deliveries retry ID...|--dead [--config FILE] send dead letters again
  pgfanout --version | --help

The default config file is /etc/pgfanout/pgfanout.yaml.
Signals (run): SIGHUP reloads the config, SIGTERM/SIGINT shut down (a second one exits at once).
)";

struct Args {
  std::string command;
  std::string config = kDefaultConfig;
  std::string log_level;
  bool reference = false;
  bool dead = false;
  std::vector<std::string> operands;  // after the command (deliveries list|retry ID...)
  std::string error;
};

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string_view> rest(argv + 1, argv + argc);
  for (std::size_t i = 0; i < rest.size(); ++i) {
    std::string_view arg = rest[i];
    auto value = [&](std::string_view name) -> std::string {
      if (arg.size() > name.size() && arg.substr(0, name.size()) == name &&
          arg[name.size()] == '=') {
        return std::string(arg.substr(name.size() + 1));
      }
      if (i + 1 >= rest.size()) {
        a.error = std::string(name) + " needs a value";
        return {};
      }
      return std::string(rest[++i]);
    };
    if (arg == "--help" || arg == "-h") {
      a.command = "help";
      return a;
    } else if (arg == "--version" || arg == "-V") {
      a.command = "version";
      return a;
    } else if (arg == "--config" || arg.starts_with("--config=") || arg == "-c") {
      a.config = value(arg == "-c" ? "-c" : "--config");
    } else if (arg == "--log-level" || arg.starts_with("--log-level=")) {
      a.log_level = value("--log-level");
    } else if (arg == "--reference") {
      a.reference = true;
    } else if (arg == "--dead" && a.command == "deliveries") {
      a.dead = true;
    } else if (!arg.starts_with("-") && a.command.empty()) {
      a.command = std::string(arg);
    } else if (!arg.starts_with("-") && (a.command == "deliveries" || a.command == "wal")) {
      a.operands.emplace_back(arg);
    } else {
      a.error = "unknown argument \"" + std::string(arg) + "\"";
    }
    if (!a.error.empty()) return a;
  }
  return a;
}

app::LoadResult load_and_report(const std::string& path, bool quiet_ok) {
  auto result = app::load_config(path);
  for (const auto& w : result.warnings) {
    std::fprintf(stderr, "%s:%d:%d: warning: %s%s%s\n", w.file.c_str(), w.line, w.column,
                 w.path.c_str(), w.path.empty() ? "" : ": ", w.message.c_str());
  }
  for (const auto& e : result.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
  if (!result.config) {
    std::fprintf(stderr, "%s: %zu error(s)\n", path.c_str(), result.errors.size());
  } else if (!quiet_ok) {
    std::printf("%s: OK (%zu rule(s), %zu channel(s))\n", path.c_str(),
                result.config->rules->rules().size(), result.config->rules->channels().size());
  }
  return result;
}

}  // namespace

int run_cli(int argc, char** argv) {
  Args args = parse_args(argc, argv);
  if (!args.error.empty()) {
    std::fprintf(stderr, "pgfanout: %s\n\n%s", args.error.c_str(), kUsage);
    return kExitUsage;
  }
  if (args.command.empty() || args.command == "help") {
    std::fputs(kUsage, args.command.empty() ? stderr : stdout);
    return args.command.empty() ? kExitUsage : 0;
  }
  if (args.command == "version") {
    std::printf("pgfanout %s\n", PGFANOUT_VERSION);
    return 0;
  }
  if (args.command == "sql") {
    auto sql = pg::trigger_sql();
    std::fwrite(sql.data(), 1, sql.size(), stdout);
    return 0;
  }
  if (args.command == "check") {
    if (args.reference) {
      std::fputs(app::config_schema().reference_markdown().c_str(), stdout);
      return 0;
    }
    return load_and_report(args.config, false).config ? 0 : kExitConfig;
  }
  if (args.command == "install") {
    auto loaded = load_and_report(args.config, true);
    if (!loaded.config) return kExitConfig;
    auto result =
        pg::install(loaded.config->postgres, loaded.config->watch, wal_plan(*loaded.config));
    for (const auto& n : result.notices) std::printf("%s\n", n.c_str());
    if (!result.ok) {
      std::fprintf(stderr, "pgfanout install: %s\n", result.error.c_str());
      return 1;
    }
    std::printf("installed the trigger generators and %d watch(es)\n", result.watched);
    return 0;
  }
  if (args.command == "wal") {
    if (args.operands.size() != 1 || args.operands[0] != "drop") {
      std::fprintf(stderr, "pgfanout: usage: pgfanout wal drop [--config FILE]\n");
      return kExitUsage;
    }
    auto loaded = load_and_report(args.config, true);
    if (!loaded.config) return kExitConfig;
    auto result = pg::drop_wal(loaded.config->postgres, loaded.config->wal);
    for (const auto& n : result.notices) std::printf("%s\n", n.c_str());
    if (!result.ok) {
      std::fprintf(stderr, "pgfanout wal drop: %s\n", result.error.c_str());
      return 1;
    }
    return 0;
  }
  if (args.command == "deliveries") {
    auto loaded = load_and_report(args.config, true);
    if (!loaded.config) return kExitConfig;
    webhook::DeliveriesArgs d;
    if (!args.operands.empty()) d.action = args.operands[0];
    d.dead = args.dead;
    d.ids.assign(args.operands.begin() + (args.operands.empty() ? 0 : 1), args.operands.end());
    return webhook::run_deliveries_command(loaded.config->postgres, d, stdout, stderr);
  }
  if (args.command == "run") {
    if (!args.log_level.empty() && !valid_log_level(args.log_level)) {
      std::fprintf(stderr, "pgfanout: unknown log level \"%s\"\n", args.log_level.c_str());
      return kExitUsage;
    }
    setup_logging(args.log_level.empty() ? "info" : args.log_level);
    auto loaded = load_and_report(args.config, true);
    if (!loaded.config) return kExitConfig;
    if (args.log_level.empty()) set_log_level(loaded.config->log_level);
    Daemon daemon(loaded.config, DaemonOptions{args.config, args.log_level});
    return daemon.run();
  }
  std::fprintf(stderr, "pgfanout: unknown command \"%s\"\n\n%s", args.command.c_str(), kUsage);
  return kExitUsage;
}

}  // namespace pgfanout::app
