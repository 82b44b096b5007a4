// RedisUrl: where one Redis target lives and how to log in, parsed from a URL.
//
//   redis://[[user]:password@]host[:port][/db]      TCP; IPv6 hosts in brackets; port 6379
//   rediss://[[user]:password@]host[:port][/db]     the same over TLS (server always verified)
//   unix://[[user]:password@]/path/to/redis.sock[?db=N]
//
// User and password are percent-decoded. The TLS files and server name are not part of the URL:
// the `redis:` section's tls_* keys fill `tls` (see RedisConfig). describe() never contains the
// password. A plain value type; no threads involved.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pgfanout::redis {

// How a rediss:// target is reached. Verification of the server's certificate and name is always
// on; there is no switch to turn it off.
struct RedisTls {
  bool enabled = false;     // rediss://
  std::string ca_file;      // PEM file of the CAs to trust; empty: the system's store
  std::string cert_file;    // client certificate (PEM), for servers with tls-auth-clients
  std::string key_file;     // its private key (PEM); given together with cert_file
  std::string server_name;  // name sent as SNI and checked in the certificate; empty: the host

  // The name the server's certificate must carry.
  const std::string& expected_name(const std::string& host) const {
    return server_name.empty() ? host : server_name;
  }
  bool operator==(const RedisTls&) const = default;
};

struct RedisUrl {
  std::string host;  // empty for a Unix socket
  int port = 6379;
  std::string socket_path;  // set for unix://
  int db = 0;
  std::string user;      // ACL user; empty: the default user
  std::string password;  // empty: no AUTH
  RedisTls tls;

  bool is_unix() const { return !socket_path.empty(); }
  // "redis://127.0.0.1:6379/0" (or rediss://) or "unix:///run/redis.sock?db=0", with "user@" but no
  // password.
  std::string describe() const;

  // Parses `text`; on error returns nullopt and sets `error` to a message for the user.
  static std::optional<RedisUrl> parse(std::string_view text, std::string& error);

  bool operator==(const RedisUrl&) const = default;
};

}  // namespace pgfanout::redis
