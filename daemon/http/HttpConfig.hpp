// The `http:` section of the config: where the HTTP server listens and its limits. Plain values
// and their loader; http_keys() declares the keys, each setting's default, range and member
// (config/Fields.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "http/ListenAddress.hpp"

namespace pgfanout::config {
class MapReader;
struct KeySpec;
}  // namespace pgfanout::config

namespace pgfanout::http {

struct HttpConfig {
  HttpConfig();           // the defaults of http_keys()
  std::string listen;     // as written
  ListenAddress address;  // parsed from `listen`
  int max_connections;
  std::uint64_t max_header_bytes;
  std::uint64_t max_body_bytes;
  std::chrono::milliseconds read_timeout;
  std::chrono::milliseconds idle_timeout;
  std::vector<std::string> allowed_origins;  // empty: any Origin
  std::vector<std::string> static_dir;       // empty: no static files
};

// The keys of `http:`, in documentation order.
std::span<const config::KeySpec> http_keys();

void load_http_config(config::MapReader& root, HttpConfig& out);

}  // namespace pgfanout::http
