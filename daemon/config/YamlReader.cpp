#include "config/YamlReader.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace pgfanout::config {

namespace {

std::string join_schema(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return std::string(parent) + "." + std::string(key);
}

int line_of(const YAML::Node& n) {
  return n.Mark().line + 1;
}
int column_of(const YAML::Node& n) {
  return n.Mark().column + 1;
}

const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "empty";
    default:
      return "a scalar";
  }
}

}  // namespace

MapReader::MapReader(YAML::Node node, std::string schema_path, std::string yaml_path,
                     LoadContext& ctx)
    : node_(std::move(node)),
      schema_path_(std::move(schema_path)),
      yaml_path_(std::move(yaml_path)),
      ctx_(&ctx) {
  if (!node_.IsMap()) {
    if (node_.IsDefined()) {
      error_at(node_, yaml_path_, std::string("expected a mapping, found ") + node_kind(node_));
    }
    return;
  }
  valid_ = true;
  const bool wildcard = ctx_->schema.has_wildcard_child(schema_path_);
  const auto known = ctx_->schema.child_keys(schema_path_);
  std::set<std::string> seen;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    // A copy: yaml-cpp's iterator hands out a temporary pair, so a reference would dangle.
    const YAML::Node k = it->first;
    if (!k.IsScalar()) {
      error_at(k, yaml_path_, "a key must be a plain string");
      continue;
    }
    const std::string& name = k.Scalar();
    if (!seen.insert(name).second) {
      error_at(k, key_path(name), "duplicate key \"" + name + "\"");
      continue;
    }
    if (wildcard) continue;
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    if (name.ends_with("_file")) {
      const KeySpec* base =
          ctx_->schema.find(join_schema(schema_path_, name.substr(0, name.size() - 5)));
      if (base != nullptr && base->secret) continue;
    }
    std::string message = "unknown key \"" + name + "\"";
    std::string_view best;
    std::size_t best_d = SIZE_MAX;
    for (auto candidate : known) {
      auto d = edit_distance(name, candidate);
      if (d < best_d) {
        best_d = d;
        best = candidate;
      }
    }
    if (!best.empty() && best_d <= std::max<std::size_t>(2, name.size() / 3)) {
      message += " (did you mean \"" + std::string(best) + "\"?)";
    } else if (!known.empty()) {
      message += "; expected one of:";
      for (std::size_t i = 0; i < known.size(); ++i) {
        message += (i == 0 ? " " : ", ");
        message += known[i];
      }
    }
    error_at(k, yaml_path_, std::move(message));
  }
}

int MapReader::line() const {
  return node_.IsDefined() ? line_of(node_) : 1;
}
int MapReader::column() const {
  return node_.IsDefined() ? column_of(node_) : 1;
}

std::string MapReader::key_path(std::string_view key) const {
  if (yaml_path_.empty()) return std::string(key);
  return yaml_path_ + "." + std::string(key);
}

bool MapReader::has(std::string_view key) const {
  if (!valid_) return false;
  auto n = node_[std::string(key)];
  return n.IsDefined() && !n.IsNull();
}

YAML::Node MapReader::node(std::string_view key) const {
  if (!valid_) return YAML::Node(YAML::NodeType::Undefined);
  if (std::find(read_.begin(), read_.end(), key) == read_.end()) read_.emplace_back(key);
  return node_[std::string(key)];
}

std::vector<std::string> MapReader::unread_keys() const {
  std::vector<std::string> out;
  for (const auto& k : keys()) {
    if (std::find(read_.begin(), read_.end(), k) == read_.end()) out.push_back(k);
  }
  return out;
}

std::vector<std::string> MapReader::keys() const {
  std::vector<std::string> out;
  if (!valid_) return out;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const YAML::Node k = it->first;
    if (k.IsScalar()) out.push_back(k.Scalar());
  }
  return out;
}

const KeySpec* MapReader::spec(std::string_view key) const {
  return ctx_->schema.find(join_schema(schema_path_, key));
}

void MapReader::error_at(const YAML::Node& at, const std::string& yaml_path, std::string message) {
  ctx_->diags.error(at.IsDefined() ? line_of(at) : line(),
                    at.IsDefined() ? column_of(at) : column(), yaml_path, std::move(message));
}

void MapReader::error(std::string_view key, std::string message) {
  auto n = node(key);
  error_at(n, key_path(key), std::move(message));
}

void MapReader::error_here(std::string message) {
  ctx_->diags.error(line(), column(), yaml_path_, std::move(message));
}

void MapReader::warning(std::string_view key, std::string message) {
  auto n = node(key);
  ctx_->diags.warning(n.IsDefined() ? line_of(n) : line(), n.IsDefined() ? column_of(n) : column(),
                      key_path(key), std::move(message));
}

std::optional<std::string> MapReader::scalar(const YAML::Node& n, const std::string& yaml_path) {
  if (!n.IsScalar()) {
    error_at(n, yaml_path, std::string("expected a string, found ") + node_kind(n));
    return std::nullopt;
  }
  auto expanded = expand_env(n.Scalar(), ctx_->env);
  if (!expanded.error.empty()) {
    error_at(n, yaml_path, expanded.error);
    return std::nullopt;
  }
  return std::move(expanded.value);
}

YAML::Node MapReader::value_or_default(std::string_view key, std::string& yaml_path) const {
  yaml_path = key_path(key);
  auto n = node(key);
  if (n.IsDefined() && !n.IsNull()) return n;
  const KeySpec* s = spec(key);
  if (s != nullptr && !s->default_value.empty()) {
    // Only list defaults are written as YAML; a string default ("{channel} {payload}") is text.
    if (s->type != KeyType::StringList && s->type != KeyType::TemplateList) {
      return YAML::Node(std::string(s->default_value));
    }
    try {
      return YAML::Load(std::string(s->default_value));
    } catch (const YAML::Exception&) {
      return YAML::Node(std::string(s->default_value));
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::optional<std::string> MapReader::secret_from_file(std::string_view key) {
  std::string file_key = std::string(key) + "_file";
  if (!has(file_key)) return std::nullopt;
  if (has(key)) {
    error(file_key, "give either \"" + std::string(key) + "\" or \"" + file_key + "\", not both");
    return std::string();
  }
  auto path = scalar(node(file_key), key_path(file_key));
  if (!path) return std::string();
  std::string full = (!path->empty() && (*path)[0] != '/' && !ctx_->base_dir.empty())
                         ? ctx_->base_dir + "/" + *path
                         : *path;
  std::ifstream in(full, std::ios::binary);
  if (!in) {
    error(file_key, "cannot read secret file \"" + full + "\"");
    return std::string();
  }
  std::stringstream buf;
  buf << in.rdbuf();
  std::string value = buf.str();
  if (value.ends_with("\r\n")) {
    value.resize(value.size() - 2);
  } else if (value.ends_with('\n')) {
    value.pop_back();
  }
  return value;
}

void MapReader::remember(std::string_view key, const std::string& value) {
  if (ctx_->restart_only_values == nullptr) return;
  const KeySpec* s = spec(key);
  if (s == nullptr || s->reloadable) return;
  (*ctx_->restart_only_values)[key_path(key)] = value;
}

std::string MapReader::string(std::string_view key) {
  const KeySpec* s = spec(key);
  if (s != nullptr && s->secret) {
    if (auto v = secret_from_file(key)) {
      remember(key, *v);
      return *v;
    }
  }
  std::string path;
  auto n = value_or_default(key, path);
  if (!n.IsDefined()) {
    if (s != nullptr && s->required) error(key, "\"" + std::string(key) + "\" is required");
    remember(key, {});
    return {};
  }
  std::string value = scalar(n, path).value_or(std::string());
  remember(key, value);
  return value;
}

std::int64_t MapReader::integer(std::string_view key, std::int64_t min, std::int64_t max) {
  std::string path;
  auto n = value_or_default(key, path);
  if (!n.IsDefined()) return 0;
  auto text = scalar(n, path);
  if (!text) return 0;
  remember(key, *text);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || p != text->data() + text->size()) {
    error_at(n, path, "expected an integer, found \"" + *text + "\"");
    return 0;
  }
  if (v < min || v > max) {
    error_at(n, path, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return std::clamp(v, min, max);
  }
  return v;
}

bool MapReader::boolean(std::string_view key) {
  std::string path;
  auto n = value_or_default(key, path);
  if (!n.IsDefined()) return false;
  auto text = scalar(n, path);
  if (!text) return false;
  remember(key, *text);
  if (*text == "true") return true;
  if (*text == "false") return false;
  error_at(n, path, "expected true or false, found \"" + *text + "\"");
  return false;
}

std::chrono::milliseconds MapReader::duration(std::string_view key) {
  std::string path;
  auto n = value_or_default(key, path);
  if (!n.IsDefined()) return {};
  auto text = scalar(n, path);
  if (!text) return {};
  remember(key, *text);
  auto d = parse_duration(*text);
  if (!d) {
    error_at(n, path, "expected a duration such as 500ms, 5s, 2m or 1h, found \"" + *text + "\"");
    return {};
  }
  return *d;
}

std::uint64_t MapReader::size(std::string_view key) {
  std::string path;
  auto n = value_or_default(key, path);
  if (!n.IsDefined()) return 0;
  auto text = scalar(n, path);
  if (!text) return 0;
  remember(key, *text);
  auto s = parse_size(*text);
  if (!s) {
    error_at(n, path, "expected a size such as 8000, 64KiB or 1MiB, found \"" + *text + "\"");
    return 0;
  }
  return *s;
}

std::vector<std::string> MapReader::string_list(std::string_view key) {
  std::string path;
  auto n = value_or_default(key, path);
  std::vector<std::string> out;
  if (!n.IsDefined()) return out;
  if (n.IsScalar()) {
    if (auto v = scalar(n, path)) {
      remember(key, *v + "\n");
      out.push_back(std::move(*v));
    }
    return out;
  }
  if (!n.IsSequence()) {
    error_at(n, path, std::string("expected a list of strings, found ") + node_kind(n));
    return out;
  }
  std::string joined;
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (auto v = scalar(n[i], path + "[" + std::to_string(i) + "]")) {
      joined += *v + "\n";
      out.push_back(std::move(*v));
    }
  }
  remember(key, joined);
  return out;
}

std::optional<MapReader> MapReader::map(std::string_view key) {
  auto n = node(key);
  if (!n.IsDefined() || n.IsNull()) {
    const KeySpec* s = spec(key);
    if (s != nullptr && s->required) error(key, "\"" + std::string(key) + "\" is required");
    return std::nullopt;
  }
  MapReader child(n, join_schema(schema_path_, key), key_path(key), *ctx_);
  if (!child.valid()) return std::nullopt;
  return child;
}

void MapReader::each(std::string_view key, const std::function<void(MapReader&, std::size_t)>& fn,
                     std::string_view item_schema) {
  auto n = node(key);
  if (!n.IsDefined() || n.IsNull()) {
    const KeySpec* s = spec(key);
    if (s != nullptr && s->required) error(key, "\"" + std::string(key) + "\" is required");
    return;
  }
  if (!n.IsSequence()) {
    error(key, std::string("expected a list, found ") + node_kind(n));
    return;
  }
  std::string schema =
      item_schema.empty() ? join_schema(schema_path_, key) + "[]" : std::string(item_schema);
  for (std::size_t i = 0; i < n.size(); ++i) {
    MapReader item(n[i], schema, key_path(key) + "[" + std::to_string(i) + "]", *ctx_);
    if (!item.valid()) continue;
    fn(item, i);
  }
}

void read_section(MapReader& root, std::string_view key,
                  const std::function<void(MapReader&)>& fn) {
  if (auto m = root.map(key)) {
    fn(*m);
    return;
  }
  if (root.has(key)) return;  // present but not a mapping: already reported
  MapReader defaults(YAML::Node(YAML::NodeType::Map), std::string(key), std::string(key),
                     root.ctx());
  fn(defaults);
}

}  // namespace pgfanout::config
