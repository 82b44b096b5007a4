#include "config/ConfigSchema.hpp"

namespace pgfanout::config {

namespace {

using enum KeyType;

bool is_parent_of(std::string_view parent, std::string_view path, std::string_view& child) {
  if (parent.empty()) {
    child = path;
  } else {
    if (path.size() <= parent.size() + 1 || path.substr(0, parent.size()) != parent ||
        path[parent.size()] != '.') {
      return false;
    }
    child = path.substr(parent.size() + 1);
  }
  if (child.ends_with("[]")) child.remove_suffix(2);
  return child.find('.') == std::string_view::npos && child.find("[]") == std::string_view::npos;
}

}  // namespace

std::string_view type_name(KeyType t) {
  switch (t) {
    case String:
      return "string";
    case Template:
      return "template";
    case Int:
      return "integer";
    case Bool:
      return "boolean";
    case Duration:
      return "duration";
    case Size:
      return "size";
    case StringList:
      return "list of strings";
    case TemplateList:
      return "list of templates";
    case Map:
      return "mapping";
    case List:
      return "list";
    case Any:
      return "see description";
  }
  return "?";
}

std::string_view KeySpec::name() const {
  auto dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

Schema::Schema(const std::vector<std::span<const KeySpec>>& parts) {
  for (auto part : parts) keys_.insert(keys_.end(), part.begin(), part.end());
}

const KeySpec* Schema::find(std::string_view path) const {
  for (const auto& k : keys_) {
    if (k.path == path) return &k;
  }
  // A wildcard entry ("commands.*.sql") covers "commands.chat.sql".
  for (const auto& k : keys_) {
    if (k.path.find('*') == std::string_view::npos) continue;
    std::string_view pat = k.path;
    std::string_view p = path;
    bool match = true;
    while (!pat.empty() && match) {
      auto pe = pat.find('.');
      auto segp = pat.substr(0, pe);
      auto qe = p.find('.');
      auto segq = p.substr(0, qe);
      if (segp != "*" && segp != segq) match = false;
      if ((pe == std::string_view::npos) != (qe == std::string_view::npos)) match = false;
      if (pe == std::string_view::npos) break;
      pat = pat.substr(pe + 1);
      p = p.substr(qe + 1);
    }
    if (match) return &k;
  }
  return nullptr;
}

std::vector<const KeySpec*> Schema::children(std::string_view parent) const {
  std::vector<const KeySpec*> out;
  for (const auto& k : keys_) {
    std::string_view child;
    if (is_parent_of(parent, k.path, child) && child != "*") out.push_back(&k);
  }
  return out;
}

std::vector<std::string_view> Schema::child_keys(std::string_view parent) const {
  std::vector<std::string_view> out;
  for (const auto& k : keys_) {
    std::string_view child;
    if (is_parent_of(parent, k.path, child) && child != "*") out.push_back(child);
  }
  return out;
}

bool Schema::has_wildcard_child(std::string_view parent) const {
  for (const auto& k : keys_) {
    std::string_view child;
    if (is_parent_of(parent, k.path, child) && child == "*") return true;
  }
  return false;
}

std::string Schema::reference_markdown() const {
  std::string out =
      "# Configuration reference\n\n"
      "Generated from the key tables (each area declares its own, see `app::config_schema()`) by\n"
      "`pgfanout check --reference`; a test keeps this file equal to that output.\n\n"
      "Values may use `${VAR}` and `${VAR:-default}` (expanded from the environment after the "
      "YAML\n"
      "is parsed; `$${` is a literal `${`). A key marked *secret* also accepts `KEY_file:` naming "
      "a\n"
      "file that holds the value; secrets are never logged. `[]` marks a key of every item of a\n"
      "list, `*` a name of your choice. *Reload* says whether SIGHUP can change the key; a "
      "changed\n"
      "key that cannot is reported and keeps its old value until restart.\n\n"
      "| key | type | default | reload | description |\n"
      "|---|---|---|---|---|\n";
  for (const auto& k : keys_) {
    out += "| `";
    out += k.path;
    out += "` | ";
    out += type_name(k.type);
    if (k.secret) out += ", secret";
    if (k.required) out += ", required";
    out += " | ";
    if (!k.default_value.empty()) {
      out += '`';
      out += k.default_value;
      out += '`';
    }
    out += " | ";
    out += k.reloadable ? "yes" : "restart";
    out += " | ";
    for (char c : k.description) {
      if (c == '|') {
        out += "\\|";
      } else {
        out += c;
      }
    }
    out += " |\n";
  }
  return out;
}

}  // namespace pgfanout::config
