#include "http/HttpConfig.hpp"

#include "config/Fields.hpp"

namespace pgfanout::http {

std::span<const config::KeySpec> http_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"http", Map, "", kRestart, kPlain, kOptional,
   "The HTTP server: `/healthz`, `/metrics` (and the WebSocket / SSE endpoints)."},
  {"http.listen", String, "127.0.0.1:8080", kRestart, kPlain, kOptional,
   "HOST:PORT to listen on: `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`; `0.0.0.0:PORT` or "
   "`[::]:PORT` for every interface. Port 0 takes a free port (logged). Failing to bind is fatal "
   "at start-up.",
   config::field<&HttpConfig::listen>()},
  {"http.max_connections", Int, "1024", kRestart, kPlain, kOptional,
   "Open connections beyond this are closed as soon as they are accepted (counted in "
   "`pgfanout_http_connections_rejected_total`).",
   config::field<&HttpConfig::max_connections>(config::between(1, 1'000'000))},
  {"http.max_header_size", Size, "8KiB", kRestart, kPlain, kOptional,
   "Largest request line plus headers; a larger request gets 431 and the connection is closed.",
   config::field<&HttpConfig::max_header_bytes>(config::at_least(1024, "must be at least 1KiB"))},
  {"http.max_body_size", Size, "64KiB", kRestart, kPlain, kOptional,
   "Largest request body; a larger one gets 413 and the connection is closed.",
   config::field<&HttpConfig::max_body_bytes>()},
  {"http.read_timeout", Duration, "10s", kRestart, kPlain, kOptional,
   "How long a new connection may take to send its first complete request, and a response to "
   "be written.",
   config::field<&HttpConfig::read_timeout>(config::at_least(100, "must be at least 100ms"))},
  {"http.idle_timeout", Duration, "60s", kRestart, kPlain, kOptional,
   "How long a kept-alive connection may wait for (and send) its next request.",
   config::field<&HttpConfig::idle_timeout>(config::at_least(100, "must be at least 100ms"))},
  {"http.allowed_origins", StringList, "", kRestart, kPlain, kOptional,
   "WebSocket and SSE requests whose `Origin` header is not in this list get 403 (exact match, "
   "e.g. `https://chat.example.com`). Empty: any origin. Requests without `Origin` (not from a "
   "browser) are always allowed.",
   config::field<&HttpConfig::allowed_origins>()},
  {"http.static", StringList, "", kRestart, kPlain, kOptional,
   "A directory whose files are served under `/` (GET and HEAD; `index.html` for a directory), "
   "or a list of them: a path is looked up in each in turn and the first that has it wins (the "
   "examples list their page's directory, then `clients/js` for the JavaScript client). Paths "
   "with `..`, hidden files and symlinks leading out of the directory are refused.",
   config::field<&HttpConfig::static_dir>()},
  };
  // clang-format on
  return kRows;
}

HttpConfig::HttpConfig() {
  config::apply_defaults(http_keys(), *this);
  std::string error;
  if (auto parsed = parse_listen_address(listen, error)) address = *parsed;
}

void load_http_config(config::MapReader& root, HttpConfig& http) {
  config::read_section(root, "http", [&](config::MapReader& m) {
    const std::size_t errors_before = m.ctx().diags.errors().size();
    config::read_fields(m, http);
    std::string error;
    if (auto address = parse_listen_address(http.listen, error)) {
      http.address = *address;
    } else {
      m.error("listen", "invalid listen address \"" + http.listen + "\": " + error);
    }
    if (m.ctx().diags.errors().size() == errors_before) config::check_fields(m, http);
  });
}

}  // namespace pgfanout::http
