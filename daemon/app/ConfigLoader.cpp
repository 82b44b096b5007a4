#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <vector>

#include "app/ActionKinds.hpp"
#include "app/Config.hpp"
#include "cache/RedisActions.hpp"
#include "config/Fields.hpp"
#include "config/YamlReader.hpp"
#include "log/Log.hpp"
#include "rules/RuleSet.hpp"

namespace pgfanout::app {

using config::Diagnostic;
using config::Diagnostics;
using config::EnvLookup;
using config::LoadContext;
using config::MapReader;

namespace {

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "pgfanout";
  return buf;
}

// yaml-cpp reports a tab used for indentation only as a generic scanner error; say it plainly.
std::string explain_yaml_error(const std::string& text, const YAML::Exception& e) {
  std::string msg = e.msg;
  int line = e.mark.line;
  if (line >= 0) {
    std::istringstream in(text);
    std::string l;
    for (int i = 0; i <= line && std::getline(in, l); ++i) {
    }
    auto first = l.find_first_not_of(' ');
    if (first != std::string::npos && l[first] == '\t') {
      msg += " (tabs cannot indent YAML; use spaces)";
    }
  }
  return "YAML syntax error: " + msg;
}

// A YAML alias is a reference, so a few kilobytes of anchors and aliases ("billion laughs") can
// describe a document of billions of nodes, which the config reader would walk (and turn into
// rules) in minutes and gigabytes. Counts the nodes of the document as the reader sees it,
// aliases expanded, and stops at `limit`: the walk is bounded, and so is a self-referencing
// alias. Returns the node at which the limit was passed, or an undefined node.
YAML::Node expansion_limit_passed(const YAML::Node& doc, std::size_t limit) {
  std::vector<YAML::Node> todo{doc};
  std::size_t seen = 0;
  while (!todo.empty()) {
    YAML::Node n = todo.back();
    todo.pop_back();
    if (++seen > limit) return n;
    if (n.IsSequence()) {
      for (const auto& child : n) todo.push_back(child);
    } else if (n.IsMap()) {
      for (const auto& kv : n) {
        todo.push_back(kv.first);
        todo.push_back(kv.second);
      }
    }
    if (todo.size() > limit) return n;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// A node takes about a byte of the text at the least, so a document without aliases stays under
// its size in bytes; aliases may add this many nodes beyond that.
constexpr std::size_t kAliasNodeAllowance = 250000;

void load_shutdown(MapReader& root, ShutdownConfig& shutdown) {
  config::read_section(root, "shutdown", [&](MapReader& m) { config::read_fields(m, shutdown); });
}

std::span<const config::KeySpec> top_level_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"version", Int, "1", kRestart, kPlain, kOptional,
   "Config format version. Only 1 exists.",
   config::field<&Config::version>(config::between(1, 1))},
  {"consumer", String, "", kRestart, kPlain, kOptional,
   "This instance's name for outbox positions. Default: the host name.",
   config::field<&Config::consumer>()},
  {"log", Map, "", kReload, kPlain, kOptional, "Logging."},
  {"log.level", String, "info", kReload, kPlain, kOptional,
   "trace, debug, info, warn, error or off. `--log-level` on the command line wins.",
   config::field<&Config::log_level>()},
  };
  // clang-format on
  return kRows;
}

std::span<const config::KeySpec> shutdown_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"shutdown", Map, "", kReload, kPlain, kOptional, "SIGTERM / SIGINT handling."},
  {"shutdown.drain_timeout", Duration, "10s", kReload, kPlain, kOptional,
   "After SIGTERM, how long queued and in-flight actions may take to finish before the daemon "
   "exits anyway. Keep it below systemd's TimeoutStopSec.",
   config::field<&ShutdownConfig::drain_timeout>()},
  };
  // clang-format on
  return kRows;
}

// The parts of Config, each with the top-level keys it is read from, in the order they are read
// and documented. The sections an area reads have their rows and loader here: the schema, the
// loading and what a reload keeps (the parts with a restart-only key) all come from this table.
struct Part {
  std::array<std::string_view, 4> keys;
  void (*keep)(const Config& running, Config& next);
  std::span<const config::KeySpec> (*rows)() = nullptr;
  void (*load)(MapReader& root, Config& cfg) = nullptr;
};

template <auto M>
void keep(const Config& running, Config& next) {
  next.*M = running.*M;
}

// An area's section: Config's member M, read by Load from the keys `keys`, declared by `rows`.
template <auto M, auto Load>
Part section(std::array<std::string_view, 4> keys, std::span<const config::KeySpec> (*rows)()) {
  return {keys, keep<M>, rows, [](MapReader& root, Config& cfg) { Load(root, cfg.*M); }};
}

const Part kOwnParts[] = {
    {{"version"}, keep<&Config::version>},
    {{"consumer"}, keep<&Config::consumer>},
    {{"log"}, keep<&Config::log_level>},
    {{"rules"}, keep<&Config::rules>},
};

const Part kSections[] = {
    section<&Config::postgres, pg::load_postgres_config>({"postgres"}, pg::postgres_keys),
    section<&Config::outbox, pg::load_outbox_config>({"outbox"}, pg::outbox_keys),
    section<&Config::http, http::load_http_config>({"http"}, http::http_keys),
    section<&Config::shutdown, load_shutdown>({"shutdown"}, shutdown_keys),
    section<&Config::redis, redis::load_redis_config>({"redis"}, redis::redis_keys),
    section<&Config::webhook, webhook::load_webhook_config>({"webhook"}, webhook::webhook_keys),
    section<&Config::watch, pg::load_watch_config>({"watch"}, pg::watch_keys),
    section<&Config::wal, pg::load_wal_config>({"wal"}, pg::wal_keys),
    section<&Config::access, hub::load_access_config>({"auth", "topics", "commands"},
                                                      hub::access_keys),
    section<&Config::hub, hub::load_hub_config>({"hub"}, hub::hub_keys),
};

// Whether a key at or below the top-level key `key` is restart-only.
bool restart_only(std::string_view key) {
  for (const auto& row : config_schema().keys()) {
    std::string_view path = row.path;
    if (!path.starts_with(key)) continue;
    std::string_view rest = path.substr(key.size());
    if (!rest.empty() && !rest.starts_with('.') && !rest.starts_with("[]")) continue;
    if (!row.reloadable) return true;
  }
  return false;
}

}  // namespace

const config::Schema& config_schema() {
  static const config::Schema schema = [] {
    std::vector<std::span<const config::KeySpec>> parts{top_level_keys()};
    for (const auto& section : kSections) parts.push_back(section.rows());
    parts.push_back(rules::rule_keys());
    parts.push_back(action_kinds().keys());  // each kind's, registered with its parser
    return config::Schema(parts);
  }();
  return schema;
}

Config::Config() {
  config::apply_defaults(top_level_keys(), *this);
}

ShutdownConfig::ShutdownConfig() {
  config::apply_defaults(shutdown_keys(), *this);
}

void keep_restart_only(const Config& running, Config& next) {
  for (std::span<const Part> parts :
       {std::span<const Part>(kOwnParts), std::span<const Part>(kSections)}) {
    for (const auto& part : parts) {
      bool keep_it = false;
      for (auto key : part.keys) keep_it = keep_it || (!key.empty() && restart_only(key));
      if (keep_it) part.keep(running, next);
    }
  }
  next.restart_only_values = running.restart_only_values;
}

LoadResult load_config_text(const std::string& text, const std::string& name, const EnvLookup& env,
                            const rules::ActionRegistry* registry, const std::string& base_dir) {
  Diagnostics diags(name);
  LoadResult result;
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    diags.error(e.mark.line + 1, e.mark.column + 1, "", explain_yaml_error(text, e));
    result.errors = diags.errors();
    return result;
  }
  const std::size_t node_limit = kAliasNodeAllowance + text.size();
  if (auto at = expansion_limit_passed(doc, node_limit); at.IsDefined()) {
    diags.error(std::max(at.Mark().line, 0) + 1, std::max(at.Mark().column, 0) + 1, "",
                "the document expands to more than " + std::to_string(node_limit) +
                    " nodes through YAML aliases (an alias bomb?); refusing it");
    result.errors = diags.errors();
    return result;
  }
  if (!doc.IsMap()) {
    diags.error(1, 1, "",
                "a config file must be a YAML mapping with at least postgres: and rules:");
    result.errors = diags.errors();
    return result;
  }

  auto cfg = std::make_shared<Config>();
  LoadContext ctx{config_schema(), diags, env, base_dir, &cfg->restart_only_values};
  MapReader root(doc, "", "", ctx);
  cfg->file = name;
  config::read_fields(root, *cfg);  // version, consumer
  if (cfg->consumer.empty()) cfg->consumer = host_name();
  if (auto log = root.map("log")) {
    config::read_fields(*log, *cfg);  // level
    if (!valid_log_level(cfg->log_level)) {
      log->error("level", "unknown log level \"" + cfg->log_level +
                              "\" (trace, debug, info, warn, error or off)");
    }
  }
  // Each area reads its own section (next to its code).
  for (const auto& section : kSections) section.load(root, *cfg);
  // A `via: wal` watch needs the WAL source even without a `wal:` section.
  for (const auto& w : cfg->watch) cfg->wal.enabled = cfg->wal.enabled || w.via == "wal";
  cfg->rules = rules::RuleSet::parse(root, registry ? *registry : action_kinds());
  redis::check_redis_targets(*cfg->rules, cfg->redis, diags);

  result.warnings = diags.warnings();
  if (!diags.ok()) {
    result.errors = diags.errors();
    std::stable_sort(result.errors.begin(), result.errors.end(),
                     [](const Diagnostic& a, const Diagnostic& b) {
                       return a.line != b.line ? a.line < b.line : a.column < b.column;
                     });
    return result;
  }
  result.config = std::move(cfg);
  return result;
}

std::vector<std::string> changed_restart_only_keys(const Config& running, const Config& next) {
  std::vector<std::string> changed;
  const auto& a = running.restart_only_values;
  const auto& b = next.restart_only_values;
  for (const auto& [path, value] : a) {
    auto it = b.find(path);
    if (it == b.end() || it->second != value) changed.push_back(path);
  }
  for (const auto& [path, value] : b) {
    if (!a.contains(path)) changed.push_back(path);
  }
  std::sort(changed.begin(), changed.end());
  return changed;
}

LoadResult load_config(const std::string& path, const EnvLookup& env,
                       const rules::ActionRegistry* registry) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.errors.push_back({path, 1, 1, "", "cannot open config file"});
    return r;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) dir = path.substr(0, slash);
  if (dir.empty()) dir = "/";
  return load_config_text(buf.str(), path, env, registry, dir);
}

}  // namespace pgfanout::app
