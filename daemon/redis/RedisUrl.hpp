// RedisUrl: where one Redis target lives and how to log in, parsed from a URL.
//
//   redis://[[user]:password@]host[:port][/db]      TCP; IPv6 hosts in brackets; port 6379
//   unix://[[user]:password@]/path/to/redis.sock[?db=N]
//
// User and password are percent-decoded. `rediss://` (TLS) is refused: the hiredis this daemon
// links (Debian's 0.14) has no TLS, so parse() says how to put a TLS tunnel in front instead.
// describe() never contains the password. A plain value type; no threads involved.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pgfanout::redis {

struct RedisUrl {
  std::string host;  // empty for a Unix socket
  int port = 6379;
  std::string socket_path;  // set for unix://
  int db = 0;
  std::string user;      // ACL user; empty: the default user
  std::string password;  // empty: no AUTH

  bool is_unix() const { return !socket_path.empty(); }
  // "redis://127.0.0.1:6379/0" or "unix:///run/redis.sock?db=0", with "user@" but no password.
  std::string describe() const;

  // Parses `text`; on error returns nullopt and sets `error` to a message for the user.
  static std::optional<RedisUrl> parse(std::string_view text, std::string& error);

  bool operator==(const RedisUrl&) const = default;
};

}  // namespace pgfanout::redis
