#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include "app/ActionKinds.hpp"
#include "app/Config.hpp"
#include "cache/RedisActions.hpp"
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
  config::read_section(root, "shutdown",
                       [&](MapReader& m) { shutdown.drain_timeout = m.duration("drain_timeout"); });
}

}  // namespace

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
  LoadContext ctx{diags, env, base_dir, &cfg->restart_only_values};
  MapReader root(doc, "", "", ctx);
  cfg->file = name;
  cfg->version = static_cast<int>(root.integer("version", 1, 1));
  cfg->consumer = root.string("consumer");
  if (cfg->consumer.empty()) cfg->consumer = host_name();
  if (auto log = root.map("log")) {
    cfg->log_level = log->string("level");
    if (!valid_log_level(cfg->log_level)) {
      log->error("level", "unknown log level \"" + cfg->log_level +
                              "\" (trace, debug, info, warn, error or off)");
    }
  }
  // One call per area: each reads its own section (next to its code).
  pg::load_postgres_config(root, cfg->postgres);
  pg::load_outbox_config(root, cfg->outbox);
  http::load_http_config(root, cfg->http);
  load_shutdown(root, cfg->shutdown);
  redis::load_redis_config(root, cfg->redis);
  webhook::load_webhook_config(root, cfg->webhook);
  pg::load_watch_config(root, cfg->watch);
  pg::load_wal_config(root, cfg->wal);
  for (const auto& w : cfg->watch) cfg->wal.enabled = cfg->wal.enabled || w.via == "wal";
  hub::load_hub_config(root, cfg->hub);
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
