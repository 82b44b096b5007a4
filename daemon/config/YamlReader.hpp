// MapReader: reads one YAML mapping of a config file against the key schema.
//
// A MapReader is made for a mapping node and its schema path ("postgres", "rules[]"). On
// construction it reports keys the schema does not know (with a "did you mean" hint), duplicate
// keys, and a node that is not a mapping. The typed getters expand ${ENV}, apply the schema's
// default when a key is absent, read `KEY_file` for secret keys, and report type errors at the
// value's line and column. Problems go to the LoadContext's Diagnostics; getters then return a
// default-constructed value, so loading continues and every error is reported, not just the first.
// Used on one thread while a config is loaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/ConfigSchema.hpp"
#include "config/Diagnostics.hpp"
#include "config/EnvExpand.hpp"

namespace pgfanout::config {

struct LoadContext {
  const Schema& schema;  // the keys of the whole file
  Diagnostics& diags;
  EnvLookup env;
  std::string base_dir;  // relative *_file paths are resolved from here
  // When set, every value read for a key the schema marks restart-only is recorded here by YAML
  // path, so a reload can tell which of them changed.
  std::map<std::string, std::string>* restart_only_values = nullptr;
};

class MapReader {
 public:
  MapReader(YAML::Node node, std::string schema_path, std::string yaml_path, LoadContext& ctx);

  bool valid() const { return valid_; }
  bool has(std::string_view key) const;
  YAML::Node node(std::string_view key) const;
  std::vector<std::string> keys() const;
  // Keys present in the mapping that no getter (or node()) has read yet.
  std::vector<std::string> unread_keys() const;

  std::string string(std::string_view key);
  std::int64_t integer(std::string_view key, std::int64_t min, std::int64_t max);
  bool boolean(std::string_view key);
  std::chrono::milliseconds duration(std::string_view key);
  std::uint64_t size(std::string_view key);
  std::vector<std::string> string_list(std::string_view key);
  // The nested mapping at `key` (schema path `<this>.<key>`); nullopt when absent or not a map.
  std::optional<MapReader> map(std::string_view key);
  // Calls `fn` for every item of the list at `key`; items are read with schema path
  // `item_schema` (default `<this>.<key>[]`).
  void each(std::string_view key, const std::function<void(MapReader&, std::size_t)>& fn,
            std::string_view item_schema = {});

  // Reports an error at the value of `key` (or at this mapping when the key is absent).
  void error(std::string_view key, std::string message);
  void error_at(const YAML::Node& at, const std::string& yaml_path, std::string message);
  void warning(std::string_view key, std::string message);
  // Reports an error at this mapping itself.
  void error_here(std::string message);

  // Expands ${ENV} in a scalar node's text, reporting errors at the node.
  std::optional<std::string> scalar(const YAML::Node& n, const std::string& yaml_path);

  std::string key_path(std::string_view key) const;  // YAML path of a key: "rules[2].name"
  const std::string& yaml_path() const { return yaml_path_; }
  const std::string& schema_path() const { return schema_path_; }
  LoadContext& ctx() { return *ctx_; }
  int line() const;
  int column() const;

 private:
  const KeySpec* spec(std::string_view key) const;
  YAML::Node value_or_default(std::string_view key, std::string& yaml_path) const;
  std::optional<std::string> secret_from_file(std::string_view key);
  void remember(std::string_view key, const std::string& value);

  YAML::Node node_;
  mutable std::vector<std::string> read_;  // keys asked for through node() and the getters
  std::string schema_path_;
  std::string yaml_path_;
  LoadContext* ctx_;
  bool valid_ = false;
};

// Parses "500ms", "5s", "1.5m", "2h". Returns nullopt for anything else.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// Parses "8000", "64KiB", "1MB". Returns nullopt for anything else.
std::optional<std::uint64_t> parse_size(std::string_view text);
// Edit distance, for "did you mean" hints.
std::size_t edit_distance(std::string_view a, std::string_view b);

// Calls fn with the section `key` of `root` when it is a mapping, or with an empty mapping (so
// every key takes its default) when it is absent; an optional section that is absent yields the
// same values as one written with the defaults, so a reload that adds it changes nothing. A
// section present but not a mapping is already reported and fn is not called.
void read_section(MapReader& root, std::string_view key, const std::function<void(MapReader&)>& fn);

}  // namespace pgfanout::config
