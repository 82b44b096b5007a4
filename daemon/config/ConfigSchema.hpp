// ConfigSchema: every configuration key, declared once.
//
// Each key has a path, a type, a default, whether a reload (SIGHUP) can change it, whether it is a
// secret, and a description. The YAML reader takes defaults and allowed keys from here (an unknown
// key is an error with a "did you mean" hint), and docs/configuration.md is generated from it
// (`pgfanout check --reference`), with a test that keeps the two equal.
//
// Paths: "postgres.dsn"; "rules[].name" for a key of every item of the rules list; "*" for a
// mapping whose keys are names chosen by the user ("commands.*.sql"). A secret key `k` also
// accepts `k_file`: the path of a file holding the value (one trailing newline is removed).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pgfanout::config {

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

struct KeySpec {
  std::string_view path;
  KeyType type;
  std::string_view default_value;  // as written in YAML; empty: none
  bool reloadable;
  bool secret;
  bool required;
  std::string_view description;
};

std::string_view type_name(KeyType t);

// All keys, in documentation order.
std::span<const KeySpec> schema();

// The key at `path` ("rules[].name"), or the wildcard entry that covers it; nullptr when unknown.
const KeySpec* find_key(std::string_view path);

// The names of the keys directly under `parent` ("" for the top level, "rules[]" for a rule).
std::vector<std::string_view> child_keys(std::string_view parent);

// Whether `parent` takes user-chosen names as keys ("commands" when "commands.*" exists).
bool has_wildcard_child(std::string_view parent);

// docs/configuration.md, generated from the schema.
std::string reference_markdown();

}  // namespace pgfanout::config
