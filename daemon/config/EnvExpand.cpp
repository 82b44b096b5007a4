#include "config/EnvExpand.hpp"

#include <cctype>
#include <cstdlib>

namespace pgfanout::config {

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

namespace {
bool valid_name(std::string_view n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}
}  // namespace

Expanded expand_env(std::string_view text, const EnvLookup& env) {
  Expanded out;
  out.value.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out.value += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out.value += text[i++];
      continue;
    }
    std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      out.error = "unterminated ${ in value (write $${ for a literal ${)";
      return out;
    }
    std::string_view inner = text.substr(i + 2, close - i - 2);
    std::string_view name = inner;
    std::optional<std::string_view> fallback;
    if (auto sep = inner.find(":-"); sep != std::string_view::npos) {
      name = inner.substr(0, sep);
      fallback = inner.substr(sep + 2);
    }
    if (!valid_name(name)) {
      out.error = "invalid environment variable name \"" + std::string(name) + "\" in ${...}";
      return out;
    }
    auto value = env(name);
    if (fallback && (!value || value->empty())) {
      out.value += *fallback;
    } else if (value) {
      out.value += *value;
    } else {
      out.error = "environment variable " + std::string(name) + " is not set (use ${" +
                  std::string(name) + ":-default} to give a default)";
      return out;
    }
    i = close + 1;
  }
  return out;
}

}  // namespace pgfanout::config
