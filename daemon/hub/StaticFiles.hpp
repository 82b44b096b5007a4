// StaticFiles: serves the files under one directory (`http.static`), so an example page can come
// from the daemon itself.
//
// A request path is percent-decoded once and refused (404) when it holds `..`, a segment starting
// with '.', a backslash or NUL; the file's real path (symlinks resolved) must lie inside the
// directory's real path, so no symlink leads out. A directory serves its index.html. Files are
// read whole (up to 16 MiB); the content type comes from the extension. Immutable; any thread.
#pragma once

#include <string>

#include "http/HttpMessage.hpp"

namespace pgfanout::hub {

class StaticFiles {
 public:
  explicit StaticFiles(const std::string& root);
  http::HttpResponse serve(const http::HttpRequest& request) const;

 private:
  std::string root_;  // real path, no trailing slash; empty when the directory is missing
};

}  // namespace pgfanout::hub
