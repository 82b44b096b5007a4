// Diagnostics: config errors and warnings with their position in the YAML file.
//
// Every problem found while loading a config is collected (not just the first) so that
// `pgfanout check` can print them all as FILE:LINE:COL: message. Lines and columns are 1-based.
#pragma once

#include <string>
#include <vector>

namespace pgfanout::config {

struct Diagnostic {
  std::string file;
  int line = 0;
  int column = 0;
  std::string path;  // YAML path such as rules[2].actions[0], empty for file-level problems
  std::string message;

  // "FILE:LINE:COL: path: message"
  std::string to_string() const;
};

class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  void error(int line, int column, std::string path, std::string message);
  void warning(int line, int column, std::string path, std::string message);

  const std::string& file() const { return file_; }
  const std::vector<Diagnostic>& errors() const { return errors_; }
  const std::vector<Diagnostic>& warnings() const { return warnings_; }
  bool ok() const { return errors_.empty(); }

 private:
  std::string file_;
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
};

}  // namespace pgfanout::config
