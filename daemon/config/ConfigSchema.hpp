// ConfigSchema: every configuration key, declared once — the machinery. The rows themselves live
// with the code that reads them: each area declares its section's keys next to its loader
// (pg/PgConfig.cpp, http/HttpConfig.cpp, ...) and each action kind its keys next to its parser;
// the app puts them together into one Schema (app::config_schema()).
//
// Each key has a path, a type, a default, whether a reload (SIGHUP) can change it, whether it is a
// secret, and a description; a plain setting also names where its value is stored and the range
// it must be in (config/Fields.hpp), so that reading a section is reading its rows. The YAML
// reader takes defaults and allowed keys from here (an unknown key is an error with a "did you
// mean" hint), and docs/configuration.md is generated from it (`pgfanout check --reference`), with
// a test that keeps the two equal.
//
// Paths: "postgres.dsn"; "rules[].name" for a key of every item of the rules list; "*" for a
// mapping whose keys are names chosen by the user ("commands.*.sql"). A secret key `k` also
// accepts `k_file`: the path of a file holding the value (one trailing newline is removed).
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace pgfanout::config {

class MapReader;

enum class KeyType {
  String,
  Template,  // a string with {field} placeholders
  Int,
  Bool,
  Duration,      // 500ms, 5s, 2m, 1h
  Size,          // 8000, 64KiB, 1MiB
  StringList,    // a list of strings (a single string is accepted as a one-item list)
  TemplateList,  // a list of templates
  Map,           // a mapping with its own keys
  List,          // a list of mappings
  Any,           // a value whose shape the key's description gives
};

// The values a setting accepts: an integer is read within [min, max] (the reader reports a value
// outside); a duration (in milliseconds) or a size (in bytes) below `min` is reported with
// `below_min` by check_fields().
struct Range {
  std::int64_t min = std::numeric_limits<std::int64_t>::min();
  std::int64_t max = std::numeric_limits<std::int64_t>::max();
  std::string_view below_min;
};

struct KeySpec;

// Where a setting's value is stored: a member of the struct `section` (made by config::field()).
// Empty for a key its area reads by hand (mappings, lists, values with a syntax of their own).
struct Binding {
  const std::type_info* section = nullptr;
  void (*read)(MapReader& m, const KeySpec& spec, void* section) = nullptr;
  // The range check of a duration or size; nullptr for other types.
  bool (*below_min)(const KeySpec& spec, const void* section) = nullptr;
  void (*set_default)(const KeySpec& spec, void* section) = nullptr;
  Range range;
};

struct KeySpec {
  std::string_view path;
  KeyType type;
  std::string_view default_value;  // as written in YAML; empty: none
  bool reloadable;
  bool secret;
  bool required;
  std::string_view description;
  Binding bind = {};

  // The last segment of the path ("dsn" for "postgres.dsn").
  std::string_view name() const;
};

std::string_view type_name(KeyType t);

// The keys of a whole config file, in documentation order: the concatenation of the areas' rows.
class Schema {
 public:
  explicit Schema(const std::vector<std::span<const KeySpec>>& parts);

  std::span<const KeySpec> keys() const { return keys_; }
  // The key at `path` ("rules[].name"), or the wildcard entry that covers it; nullptr when unknown.
  const KeySpec* find(std::string_view path) const;
  // The keys directly under `parent` ("" for the top level, "rules[]" for a rule).
  std::vector<const KeySpec*> children(std::string_view parent) const;
  // Their names.
  std::vector<std::string_view> child_keys(std::string_view parent) const;
  // Whether `parent` takes user-chosen names as keys ("commands" when "commands.*" exists).
  bool has_wildcard_child(std::string_view parent) const;
  // docs/configuration.md, generated from the schema.
  std::string reference_markdown() const;

 private:
  std::vector<KeySpec> keys_;
};

// The rows' flags, for declaring them.
inline constexpr bool kReload = true;
inline constexpr bool kRestart = false;
inline constexpr bool kSecret = true;
inline constexpr bool kPlain = false;
inline constexpr bool kRequired = true;
inline constexpr bool kOptional = false;

}  // namespace pgfanout::config
