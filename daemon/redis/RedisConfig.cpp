#include "redis/RedisConfig.hpp"

#include <unistd.h>

#include <algorithm>

#include "config/Fields.hpp"
#include "config/YamlReader.hpp"

namespace pgfanout::redis {

namespace {

// Keys of `redis:` that are settings rather than target names: its rows (and `KEY_file` of the
// secret ones).
const std::vector<std::string>& settings() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& row : redis_keys()) {
      std::string_view path = row.path;
      if (!path.starts_with("redis.") || row.name() == "*" ||
          path.substr(6).find('.') != path.npos) {
        continue;
      }
      out.emplace_back(row.name());
      if (row.secret) out.push_back(std::string(row.name()) + "_file");
    }
    return out;
  }();
  return names;
}

bool is_setting(std::string_view key) {
  const auto& names = settings();
  return std::find(names.begin(), names.end(), key) != names.end();
}

// The tls_* keys of one target into url.tls; false (errors reported) when they do not fit.
bool read_tls(config::MapReader& m, RedisUrl& url) {
  RedisTls& tls = url.tls;
  bool ok = true;
  auto file = [&](const char* key, std::string& out) {
    out = m.string(key);
    if (out.empty()) return;
    if (!tls.enabled) {
      m.error(key, std::string(key) + " applies only to TLS targets (rediss:// or tls: true)");
      ok = false;
      return;
    }
    const auto& base = m.ctx().base_dir;
    if (out[0] != '/' && !base.empty()) out = base + "/" + out;
    if (access(out.c_str(), R_OK) != 0) {
      m.error(key, "cannot read \"" + out + "\"");
      ok = false;
    }
  };
  file("tls_ca_file", tls.ca_file);
  file("tls_cert_file", tls.cert_file);
  file("tls_key_file", tls.key_file);
  tls.server_name = m.string("tls_server_name");
  if (!tls.server_name.empty() && !tls.enabled) {
    m.error("tls_server_name",
            "tls_server_name applies only to TLS targets (rediss:// or tls: true)");
    ok = false;
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    m.error(tls.cert_file.empty() ? "tls_key_file" : "tls_cert_file",
            "tls_cert_file and tls_key_file go together (a client certificate and its key)");
    ok = false;
  }
  return ok;
}

// Reads the seed nodes of `cluster:` into `out`; false (errors reported) when they do not fit.
bool read_seeds(config::MapReader& m, std::vector<ClusterNode>& out) {
  const YAML::Node list = m.node("cluster");
  const bool is_list = list.IsSequence();  // else one seed as a plain string
  std::vector<std::string> seeds = m.string_list("cluster");
  bool ok = !seeds.empty();
  if (!ok && is_list) m.error("cluster", "give at least one seed node (host:port)");
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    ClusterNode node;
    if (parse_host_port(seeds[i], node)) {
      out.push_back(std::move(node));
      continue;
    }
    std::string message = "\"" + seeds[i] +
                          "\" is not a seed node: give host:port (an IPv6 host in brackets), "
                          "e.g. 10.0.0.5:7000";
    if (is_list && i < list.size()) {
      m.error_at(list[i], m.key_path("cluster") + "[" + std::to_string(i) + "]",
                 std::move(message));
    } else {
      m.error("cluster", std::move(message));
    }
    ok = false;
  }
  return ok;
}

// Reads url or cluster, password and tls_* of one target from `m` (the `redis` mapping or a named
// target's mapping).
bool read_target(config::MapReader& m, std::string name, std::vector<RedisTarget>& out) {
  const bool has_url = m.has("url") || m.has("url_file");
  if (has_url && m.has("cluster")) {
    m.error("cluster", "give either \"url\" (one server) or \"cluster\" (seed nodes), not both");
    return false;
  }
  if (!has_url && !m.has("cluster")) {
    m.error_here(name == "default" ? "\"url\" or \"cluster\" is required"
                                   : "target \"" + name + "\" needs a \"url\" or \"cluster\"");
    return false;
  }
  RedisTarget target{std::move(name), {}, {}};
  if (has_url) {
    std::string error;
    auto url = RedisUrl::parse(m.string("url"), error);
    if (!url) {
      m.error(m.has("url") ? "url" : "url_file", error);
      return false;
    }
    target.url = std::move(*url);
    if (m.has("tls")) {
      m.error("tls", "tls applies to cluster targets; a url target says rediss:// for TLS");
      return false;
    }
  } else {
    if (!read_seeds(m, target.cluster)) return false;
    target.url.tls.enabled = m.boolean("tls");
    target.url.host = target.cluster.front().host;
    target.url.port = target.cluster.front().port;
  }
  std::string password = m.string("password");
  if (!password.empty()) target.url.password = password;
  if (!read_tls(m, target.url)) return false;
  out.push_back(std::move(target));
  return true;
}

}  // namespace

std::span<const config::KeySpec> redis_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"redis", Map, "", kRestart, kPlain, kOptional,
   "Redis for the evict, evict_pattern and publish actions: `{url: ...}` for one target, "
   "`{cluster: [...]}` for one Redis Cluster, or named targets `{cache: {url: ...}, sessions: "
   "{cluster: [...]}}` that actions pick with `target:`."},
  {"redis.url", String, "", kRestart, kSecret, kOptional,
   "The default target: `redis://[[user]:password@]host[:port][/db]`, the same with "
   "`rediss://` for TLS, or `unix:///path/redis.sock?db=N`."},
  {"redis.cluster", StringList, "", kRestart, kPlain, kOptional,
   "Instead of `url`: the default target is a Redis Cluster; its seed nodes as `host:port` "
   "(one reachable seed is enough: the slot map names every primary). Keys go to the primary "
   "of their hash slot; see docs/scaling.md."},
  {"redis.tls", Bool, "false", kRestart, kPlain, kOptional,
   "Cluster targets only: connect to every node over TLS (what rediss:// says for a url). The "
   "name checked in each node's certificate is the node's address, unless tls_server_name is "
   "given."},
  {"redis.password", String, "", kRestart, kSecret, kOptional,
   "Password of the default target (AUTH), overriding one in the url."},
  {"redis.tls_ca_file", String, "", kRestart, kPlain, kOptional,
   "TLS only (rediss:// or tls: true): PEM file of the CAs that may sign the server's "
   "certificate (default: the system's CA store). The certificate and its name are always "
   "verified. Files are read again on every connect, so a renewed certificate needs no restart."},
  {"redis.tls_cert_file", String, "", kRestart, kPlain, kOptional,
   "TLS only: client certificate (PEM, may hold the chain) for a server that asks for one "
   "(tls-auth-clients). Needs tls_key_file."},
  {"redis.tls_key_file", String, "", kRestart, kPlain, kOptional,
   "TLS only: the private key (PEM) of tls_cert_file."},
  {"redis.tls_server_name", String, "", kRestart, kPlain, kOptional,
   "TLS only: the name sent as SNI and required in the server's certificate (default: the "
   "url's host; an IP address is then checked against the certificate's IP entries)."},
  {"redis.queue_limit", Int, "100000", kRestart, kPlain, kOptional,
   "Keys, publishes and patterns a target may hold queued or in flight while Redis is down or "
   "slow. Beyond it new work is dropped, the action fails and the rule's on_gap actions run once "
   "Redis catches up.",
   config::field<&RedisConfig::queue_limit>(config::between(1, 100'000'000))},
  {"redis.batch_keys", Int, "512", kRestart, kPlain, kOptional,
   "Most keys in one pipelined UNLINK/DEL command.",
   config::field<&RedisConfig::batch_keys>(config::between(1, 100'000))},
  {"redis.scan_count", Int, "500", kRestart, kPlain, kOptional,
   "COUNT of each SCAN step of evict_pattern (one step in flight per target, round-robin).",
   config::field<&RedisConfig::scan_count>(config::between(1, 1'000'000))},
  {"redis.connect_timeout", Duration, "5s", kRestart, kPlain, kOptional,
   "How long connecting and logging in may take.",
   config::field<&RedisConfig::connect_timeout>(config::at_least(100, "must be at least 100ms"))},
  {"redis.command_timeout", Duration, "10s", kRestart, kPlain, kOptional,
   "A connection with commands in flight and no reply for this long is closed and re-opened.",
   config::field<&RedisConfig::command_timeout>(config::at_least(100, "must be at least 100ms"))},
  {"redis.reconnect_min", Duration, "100ms", kRestart, kPlain, kOptional,
   "First reconnect delay; doubles on each failure, with jitter.",
   config::field<&RedisConfig::reconnect_min>(config::kPositive)},
  {"redis.reconnect_max", Duration, "30s", kRestart, kPlain, kOptional, "Longest reconnect delay.",
   config::field<&RedisConfig::reconnect_max>()},
  {"redis.cluster_refresh", Duration, "10s", kRestart, kPlain, kOptional,
   "Cluster targets: how often the slot map is read again (CLUSTER SHARDS) when nothing else "
   "asked for it. A MOVED redirect or a lost node connection has it read within 100ms, and while a "
   "slot has no primary or a primary is unreachable it is read every second.",
   config::field<&RedisConfig::cluster_refresh>(config::at_least(1000, "must be at least 1s"))},
  {"redis.*", Map, "", kRestart, kPlain, kOptional,
   "A named target (any other key of `redis:`). A target named `default`, or the only one, "
   "serves actions without `target:`."},
  {"redis.*.url", String, "", kRestart, kSecret, kOptional,
   "The target's URL, as `redis.url` (a target has `url` or `cluster`)."},
  {"redis.*.cluster", StringList, "", kRestart, kPlain, kOptional,
   "The target's cluster seed nodes, as `redis.cluster`."},
  {"redis.*.tls", Bool, "false", kRestart, kPlain, kOptional,
   "TLS to every node of the target's cluster, as `redis.tls`."},
  {"redis.*.password", String, "", kRestart, kSecret, kOptional,
   "The target's password, overriding one in the url."},
  {"redis.*.tls_ca_file", String, "", kRestart, kPlain, kOptional,
   "The target's CA file, as `redis.tls_ca_file`."},
  {"redis.*.tls_cert_file", String, "", kRestart, kPlain, kOptional,
   "The target's client certificate, as `redis.tls_cert_file`."},
  {"redis.*.tls_key_file", String, "", kRestart, kPlain, kOptional,
   "The key of the target's client certificate, as `redis.tls_key_file`."},
  {"redis.*.tls_server_name", String, "", kRestart, kPlain, kOptional,
   "The target's TLS server name, as `redis.tls_server_name`."},
  };
  // clang-format on
  return kRows;
}

RedisConfig::RedisConfig() {
  config::apply_defaults(redis_keys(), *this);
}

const RedisTarget* RedisConfig::find(std::string_view name) const {
  for (const auto& t : targets) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const RedisTarget* RedisConfig::default_target() const {
  if (const auto* t = find("default")) return t;
  return targets.size() == 1 ? &targets.front() : nullptr;
}

void load_redis_config(config::MapReader& root, RedisConfig& out) {
  auto m = root.map("redis");
  if (!m) {
    out.configured = root.has("redis");  // present but not a mapping: reported already
    return;
  }
  out.configured = true;
  config::read_fields(*m, out);
  config::check_fields(*m, out);
  if (out.reconnect_max < out.reconnect_min) m->error("reconnect_max", "must be >= reconnect_min");

  if (m->has("url") || m->has("url_file") || m->has("cluster")) {
    read_target(*m, "default", out.targets);
  } else if (m->has("password") || m->has("password_file")) {
    m->error(m->has("password") ? "password" : "password_file",
             "a top-level password belongs to the default target: give \"url\" too, or move it "
             "into a named target");
  } else {
    for (const char* key :
         {"tls", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name"}) {
      if (m->has(key)) {
        m->error(key, std::string("a top-level ") + key +
                          " belongs to the default target: give \"url\" too, or move it into a "
                          "named target");
      }
    }
  }
  // Every other key names a target. The schema's `redis.*` wildcard lets them through the
  // reader, so unknown keys are caught here: a target must be a mapping.
  bool named = false;
  YAML::Node section = root.node("redis");
  for (auto it = section.begin(); it != section.end(); ++it) {
    if (!it->first.IsScalar()) continue;
    const std::string key = it->first.Scalar();
    if (is_setting(key)) continue;
    named = true;
    YAML::Node n = it->second;
    if (!n.IsMap()) {
      std::string message = "unknown key \"" + key + "\"";
      std::string_view best;
      std::size_t best_d = SIZE_MAX;
      for (std::string_view s : settings()) {
        auto d = config::edit_distance(key, s);
        if (d < best_d) {
          best_d = d;
          best = s;
        }
      }
      if (best_d <= std::max<std::size_t>(2, key.size() / 3)) {
        message += " (did you mean \"" + std::string(best) + "\"?)";
      } else {
        message += "; a named Redis target is a mapping such as {url: redis://host:6379/0}";
      }
      m->error_at(it->first, m->key_path(key), std::move(message));
      continue;
    }
    if (key == "default" && out.find("default") != nullptr) {
      m->error(key, "target \"default\" is given twice: by the top-level url and by this key");
      continue;
    }
    config::MapReader target(n, "redis.*", m->key_path(key), m->ctx());
    if (target.valid()) read_target(target, key, out.targets);
  }
  if (!named && !m->has("url") && !m->has("url_file") && !m->has("cluster")) {
    m->error_here(
        "give a url (redis: {url: redis://127.0.0.1:6379/0}), cluster seeds or named targets");
  }
}

}  // namespace pgfanout::redis
