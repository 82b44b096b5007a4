#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include "config/ChannelName.hpp"
#include "config/Config.hpp"
#include "config/YamlReader.hpp"
#include "log/Log.hpp"
#include "pg/ConnInfo.hpp"
#include "redis/RedisConfig.hpp"
#include "rules/RuleSet.hpp"

namespace pgfanout::config {

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

void load_postgres(MapReader& root, PostgresConfig& pg) {
  auto m = root.map("postgres");
  if (!m) return;
  const std::size_t errors_before = m->ctx().diags.errors().size();
  pg.dsn = m->string("dsn");
  pg.password = m->string("password");
  pg.connect_timeout = m->duration("connect_timeout");
  pg.heartbeat_interval = m->duration("heartbeat_interval");
  pg.heartbeat_timeout = m->duration("heartbeat_timeout");
  pg.reconnect_min = m->duration("reconnect_min");
  pg.reconnect_max = m->duration("reconnect_max");
  // Relations between values are checked only when each value parsed, to avoid echo errors.
  if (m->ctx().diags.errors().size() != errors_before) return;
  std::string dsn_error;
  if (!pgfanout::pg::valid_dsn(pg.dsn, dsn_error))
    m->error("dsn", "invalid connection string: " + dsn_error);
  if (pg.heartbeat_interval.count() <= 0) m->error("heartbeat_interval", "must be positive");
  if (pg.heartbeat_timeout <= pg.heartbeat_interval) {
    m->error("heartbeat_timeout", "must be longer than heartbeat_interval");
  }
  if (pg.reconnect_min.count() <= 0) m->error("reconnect_min", "must be positive");
  if (pg.reconnect_max < pg.reconnect_min) m->error("reconnect_max", "must be >= reconnect_min");
  if (pg.connect_timeout.count() < 1000) m->error("connect_timeout", "must be at least 1s");
}

// An absent optional section still yields its defaults, so that a reload that adds the
// section with default values does not count as a change.
template <typename Fn>
void with_section(MapReader& root, std::string_view key, Fn&& fn) {
  if (auto m = root.map(key)) {
    fn(*m);
    return;
  }
  if (root.has(key)) return;  // present but not a mapping: already reported
  MapReader defaults(YAML::Node(YAML::NodeType::Map), std::string(key), std::string(key),
                     root.ctx());
  fn(defaults);
}

void load_outbox(MapReader& root, OutboxConfig& o) {
  with_section(root, "outbox", [&](MapReader& m) {
    o.poll_interval = m.duration("poll_interval");
    o.batch_size = static_cast<int>(m.integer("batch_size", 1, 100'000));
    o.retry_delay = m.duration("retry_delay");
    o.trim_interval = m.duration("trim_interval");
    o.max_age = m.duration("max_age");
    o.trim_batch = static_cast<int>(m.integer("trim_batch", 1, 10'000'000));
    if (o.poll_interval.count() <= 0) m.error("poll_interval", "must be positive");
    if (o.retry_delay.count() <= 0) m.error("retry_delay", "must be positive");
    if (o.trim_interval.count() <= 0) m.error("trim_interval", "must be positive");
  });
}

void load_http(MapReader& root, HttpConfig& http) {
  with_section(root, "http", [&](MapReader& m) {
    const std::size_t errors_before = m.ctx().diags.errors().size();
    http.listen = m.string("listen");
    std::string error;
    if (auto address = pgfanout::http::parse_listen_address(http.listen, error)) {
      http.address = *address;
    } else {
      m.error("listen", "invalid listen address \"" + http.listen + "\": " + error);
    }
    http.max_connections = static_cast<int>(m.integer("max_connections", 1, 1'000'000));
    http.max_header_bytes = m.size("max_header_size");
    http.max_body_bytes = m.size("max_body_size");
    http.read_timeout = m.duration("read_timeout");
    http.idle_timeout = m.duration("idle_timeout");
    http.allowed_origins = m.string_list("allowed_origins");
    http.static_dir = m.string("static");
    if (m.ctx().diags.errors().size() == errors_before) {
      if (http.max_header_bytes < 1024) m.error("max_header_size", "must be at least 1KiB");
      if (http.read_timeout.count() < 100) m.error("read_timeout", "must be at least 100ms");
      if (http.idle_timeout.count() < 100) m.error("idle_timeout", "must be at least 100ms");
    }
  });
}

void load_shutdown(MapReader& root, ShutdownConfig& shutdown) {
  with_section(root, "shutdown",
               [&](MapReader& m) { shutdown.drain_timeout = m.duration("drain_timeout"); });
}

void load_webhook(MapReader& root, WebhookConfig& w) {
  with_section(root, "webhook", [&](MapReader& m) {
    w.queue_limit = static_cast<int>(m.integer("queue_limit", 1, 10'000'000));
    w.max_connections_per_endpoint =
        static_cast<int>(m.integer("max_connections_per_endpoint", 1, 10'000));
    w.connect_timeout = m.duration("connect_timeout");
    w.idle_timeout = m.duration("idle_timeout");
    w.group = m.string("group");
    w.claim_batch = static_cast<int>(m.integer("claim_batch", 1, 100'000));
    w.max_in_flight = static_cast<int>(m.integer("max_in_flight", 1, 100'000));
    w.lease = m.duration("lease");
    w.poll_interval = m.duration("poll_interval");
    w.keep_done = m.duration("keep_done");
    if (w.group.empty()) m.error("group", "must not be empty");
    if (w.connect_timeout.count() < 100) m.error("connect_timeout", "must be at least 100ms");
    if (w.lease.count() < 1000) m.error("lease", "must be at least 1s");
    if (w.poll_interval.count() <= 0) m.error("poll_interval", "must be positive");
  });
}

void load_watch(MapReader& root, std::vector<WatchSpec>& out) {
  root.each("watch", [&](MapReader& w, std::size_t) {
    WatchSpec s;
    s.table = w.string("table");
    s.channel = w.string("channel");
    if (w.has("channel")) {  // absent: the trigger generator's default, <table>_changed
      if (auto problem = channel_name_problem(s.channel); !problem.empty()) {
        w.error("channel", std::move(problem));
      }
    }
    s.columns = w.string_list("columns");
    s.ops = w.string_list("ops");
    for (auto& op : s.ops) {
      std::transform(op.begin(), op.end(), op.begin(), ::toupper);
      if (op != "INSERT" && op != "UPDATE" && op != "DELETE") {
        w.error("ops", "unknown op \"" + op + "\" (INSERT, UPDATE or DELETE)");
      }
    }
    s.changed = w.string_list("changed");
    s.per_statement = w.boolean("per_statement");
    s.durable = w.boolean("durable");
    out.push_back(std::move(s));
  });
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
  load_postgres(root, cfg->postgres);
  load_outbox(root, cfg->outbox);
  load_http(root, cfg->http);
  load_shutdown(root, cfg->shutdown);
  redis::load_redis_config(root, cfg->redis);
  load_webhook(root, cfg->webhook);
  load_watch(root, cfg->watch);
  hub::load_hub_config(root, cfg->hub);
  cfg->rules = rules::RuleSet::parse(root, registry ? *registry : rules::ActionRegistry::builtin());
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

}  // namespace pgfanout::config
