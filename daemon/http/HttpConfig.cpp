#include "http/HttpConfig.hpp"

#include "config/YamlReader.hpp"

namespace pgfanout::http {

void load_http_config(config::MapReader& root, HttpConfig& http) {
  config::read_section(root, "http", [&](config::MapReader& m) {
    const std::size_t errors_before = m.ctx().diags.errors().size();
    http.listen = m.string("listen");
    std::string error;
    if (auto address = parse_listen_address(http.listen, error)) {
      http.address = *address;
    } else {
      m.error("listen", "invalid listen address \"" + http.listen + "\": " + error);
    }
    http.max_connections = static_cast<int>(m.integer("max_connections", 1, 1'000'000));
    http.max_header_bytes = m.size("max_header_size");
    http.max_body_bytes = m.size("max_body_size");
    http.read_timeout = m.duration("read_timeout");
    http.idle_timeout = m.duration("idle_timeout");
    http.allowed_origins = m.string_list("allowed_origins");
    http.static_dir = m.string("static");
    if (m.ctx().diags.errors().size() == errors_before) {
      if (http.max_header_bytes < 1024) m.error("max_header_size", "must be at least 1KiB");
      if (http.read_timeout.count() < 100) m.error("read_timeout", "must be at least 100ms");
      if (http.idle_timeout.count() < 100) m.error("idle_timeout", "must be at least 100ms");
    }
  });
}

}  // namespace pgfanout::http
