// The `http:` section of the config: where the HTTP server listens and its limits. Plain values
// and their loader; the keys and defaults are declared in config/ConfigSchema.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "http/ListenAddress.hpp"

namespace pgfanout::config {
class MapReader;
}

namespace pgfanout::http {

struct HttpConfig {
  std::string listen = "127.0.0.1:8080";  // as written
  ListenAddress address{"127.0.0.1", 8080};
  int max_connections = 1024;
  std::uint64_t max_header_bytes = 8 * 1024;
  std::uint64_t max_body_bytes = 64 * 1024;
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::vector<std::string> allowed_origins;  // empty: any Origin
  std::string static_dir;                    // empty: no static files
};

void load_http_config(config::MapReader& root, HttpConfig& out);

}  // namespace pgfanout::http
