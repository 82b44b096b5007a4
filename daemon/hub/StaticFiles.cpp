#include "hub/StaticFiles.hpp"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "hub/QueryString.hpp"

namespace pgfanout::hub {

namespace {

constexpr std::size_t kMaxFile = 16 * 1024 * 1024;

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return {};
  return buf;
}

std::string content_type(const std::string& path) {
  auto dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "gif") return "image/gif";
  if (ext == "ico") return "image/x-icon";
  if (ext == "txt") return "text/plain; charset=utf-8";
  if (ext == "wasm") return "application/wasm";
  return "application/octet-stream";
}

bool safe_relative(const std::string& path) {
  if (path.find('\0') != std::string::npos || path.find('\\') != std::string::npos) return false;
  std::size_t start = 0;
  while (start < path.size()) {
    auto slash = path.find('/', start);
    std::string seg = path.substr(start, slash == std::string::npos ? slash : slash - start);
    if (!seg.empty() && seg[0] == '.') return false;  // "..", ".git", ".env"
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

}  // namespace

StaticFiles::StaticFiles(const std::vector<std::string>& roots) {
  for (const auto& root : roots) {
    std::string real = real_path(root);
    if (real.empty()) {
      spdlog::warn("http.static: {} does not exist; no static files from it", root);
    } else {
      roots_.push_back(std::move(real));
    }
  }
}

http::HttpResponse StaticFiles::serve(const http::HttpRequest& request) const {
  auto not_found = http::HttpResponse::text(404, "not found\n");
  std::string path = percent_decode(request.path);
  if (path.empty() || path[0] != '/' || !safe_relative(path)) return not_found;
  std::string real;
  struct stat st {};
  for (const auto& root : roots_) {
    std::string full = root + path;
    if (::stat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      if (full.back() != '/') full += '/';
      full += "index.html";
    }
    std::string candidate = real_path(full);
    if (candidate.empty() || candidate.compare(0, root.size() + 1, root + "/") != 0) continue;
    if (::stat(candidate.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    real = std::move(candidate);
    break;
  }
  if (real.empty()) return not_found;
  if (static_cast<std::size_t>(st.st_size) > kMaxFile) return not_found;
  std::ifstream in(real, std::ios::binary);
  if (!in) return not_found;
  std::stringstream body;
  body << in.rdbuf();
  http::HttpResponse r;
  r.content_type = content_type(real);
  r.body = body.str();
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

}  // namespace pgfanout::hub
