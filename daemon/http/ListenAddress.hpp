// ListenAddress: the HOST:PORT an HTTP server binds, parsed from `http.listen`.
//
// Accepted forms: an IPv4 literal (`127.0.0.1:8080`, `0.0.0.0:8080`), a bracketed IPv6 literal
// (`[::1]:8080`, `[::]:8080`) and `localhost:8080` (127.0.0.1). Other host names are refused:
// a daemon that binds should not depend on DNS at start-up. Port 0 asks the kernel for a free
// port (the server logs the one it got). Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgfanout::http {

struct ListenAddress {
  std::string host;  // an IP literal without brackets
  std::uint16_t port = 0;

  // "127.0.0.1:8080" or "[::1]:8080".
  std::string to_string() const;
  bool operator==(const ListenAddress&) const = default;
};

// Parses `text`; on failure returns nullopt and puts a message for the config error in `error`.
[[nodiscard]] std::optional<ListenAddress> parse_listen_address(std::string_view text,
                                                                std::string& error);

}  // namespace pgfanout::http
