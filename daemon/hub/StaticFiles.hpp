// StaticFiles: serves the files under one or more directories (`http.static`), so an example page
// can come from the daemon itself. A path is looked up in each directory in turn, the first that
// has it wins (the example pages list their own directory, then clients/js for the client module).
//
// A request path is percent-decoded once and refused (404) when it holds `..`, a segment starting
// with '.', a backslash or NUL; the file's real path (symlinks resolved) must lie inside the real
// path of the directory it was found in, so no symlink leads out. A directory serves its
// index.html. Files are read whole (up to 16 MiB); the content type comes from the extension.
// Immutable; any thread.
#pragma once

#include <string>
#include <vector>

#include "http/HttpMessage.hpp"

namespace pgfanout::hub {

class StaticFiles {
 public:
  explicit StaticFiles(const std::vector<std::string>& roots);
  http::HttpResponse serve(const http::HttpRequest& request) const;

 private:
  std::vector<std::string> roots_;  // real paths, no trailing slash; missing directories left out
};

}  // namespace pgfanout::hub
