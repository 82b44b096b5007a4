// Expansion of ${VAR} and ${VAR:-default} in config values.
//
// Expansion happens on scalar values after YAML parsing, so an environment variable can never
// change the structure of the file. "$${" writes a literal "${". A ${VAR} whose variable is unset
// (and has no default) is an error naming the variable. ${VAR:-default} uses the default when VAR
// is unset or empty, as in the shell.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace pgfanout::config {

using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// The process environment.
EnvLookup process_env();

struct Expanded {
  std::string value;
  std::string error;  // empty on success
};

Expanded expand_env(std::string_view text, const EnvLookup& env);

}  // namespace pgfanout::config
