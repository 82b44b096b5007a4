#include "config/Diagnostics.hpp"

namespace pgfanout::config {

std::string Diagnostic::to_string() const {
  std::string out = file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

void Diagnostics::error(int line, int column, std::string path, std::string message) {
  errors_.push_back({file_, line, column, std::move(path), std::move(message)});
}

void Diagnostics::warning(int line, int column, std::string path, std::string message) {
  warnings_.push_back({file_, line, column, std::move(path), std::move(message)});
}

}  // namespace pgfanout::config
