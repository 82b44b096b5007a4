#include "redis/RedisConfig.hpp"

#include <algorithm>
#include <array>

#include "config/YamlReader.hpp"

namespace pgfanout::redis {

namespace {

// Keys of `redis:` that are settings rather than target names.
constexpr std::array<std::string_view, 11> kSettings = {
    "url",          "url_file",   "password",        "password_file",   "queue_limit",
    "batch_keys",   "scan_count", "connect_timeout", "command_timeout", "reconnect_min",
    "reconnect_max"};

bool is_setting(std::string_view key) {
  return std::find(kSettings.begin(), kSettings.end(), key) != kSettings.end();
}

// Reads url + password of one target from `m` (the `redis` mapping or a named target's mapping).
bool read_target(config::MapReader& m, std::string name, std::vector<RedisTarget>& out) {
  if (!m.has("url") && !m.has("url_file")) {
    m.error_here(name == "default" ? "\"url\" is required"
                                   : "target \"" + name + "\" needs a \"url\"");
    return false;
  }
  std::string text = m.string("url");
  std::string password = m.string("password");
  std::string error;
  auto url = RedisUrl::parse(text, error);
  if (!url) {
    m.error(m.has("url") ? "url" : "url_file", error);
    return false;
  }
  if (!password.empty()) url->password = password;
  out.push_back(RedisTarget{std::move(name), std::move(*url)});
  return true;
}

}  // namespace

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
  out.queue_limit = static_cast<std::size_t>(m->integer("queue_limit", 1, 100'000'000));
  out.batch_keys = static_cast<std::size_t>(m->integer("batch_keys", 1, 100'000));
  out.scan_count = static_cast<std::size_t>(m->integer("scan_count", 1, 1'000'000));
  out.connect_timeout = m->duration("connect_timeout");
  out.command_timeout = m->duration("command_timeout");
  out.reconnect_min = m->duration("reconnect_min");
  out.reconnect_max = m->duration("reconnect_max");
  if (out.connect_timeout.count() < 100) m->error("connect_timeout", "must be at least 100ms");
  if (out.command_timeout.count() < 100) m->error("command_timeout", "must be at least 100ms");
  if (out.reconnect_min.count() <= 0) m->error("reconnect_min", "must be positive");
  if (out.reconnect_max < out.reconnect_min) m->error("reconnect_max", "must be >= reconnect_min");

  if (m->has("url") || m->has("url_file")) {
    read_target(*m, "default", out.targets);
  } else if (m->has("password") || m->has("password_file")) {
    m->error(m->has("password") ? "password" : "password_file",
             "a top-level password belongs to the default target: give \"url\" too, or move it "
             "into a named target");
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
      for (auto s : kSettings) {
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
  if (!named && !m->has("url") && !m->has("url_file")) {
    m->error_here("give a url (redis: {url: redis://127.0.0.1:6379/0}) or named targets");
  }
}

}  // namespace pgfanout::redis
