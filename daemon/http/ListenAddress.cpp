#include "http/ListenAddress.hpp"

#include <charconv>

#include <boost/asio/ip/address.hpp>

namespace pgfanout::http {

namespace {

constexpr const char* kExpected = "expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080";

std::optional<std::uint16_t> parse_port(std::string_view text, std::string& error) {
  unsigned value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) {
    error = "port \"" + std::string(text) + "\" is not a number; " + kExpected;
    return std::nullopt;
  }
  if (value > 65535) {
    error = "port " + std::string(text) + " is out of range (0-65535)";
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::string ListenAddress::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string& error) {
  ListenAddress out;
  std::string_view port_text;
  boost::system::error_code ec;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      error = "missing \"]\" after the IPv6 address; " + std::string(kExpected);
      return std::nullopt;
    }
    std::string host(text.substr(1, close - 1));
    auto rest = text.substr(close + 1);
    if (!rest.starts_with(':')) {
      error = "missing \":PORT\" after \"]\"; " + std::string(kExpected);
      return std::nullopt;
    }
    auto v6 = boost::asio::ip::make_address_v6(host, ec);
    if (ec) {
      error = "\"" + host + "\" is not an IPv6 address";
      return std::nullopt;
    }
    out.host = v6.to_string();
    port_text = rest.substr(1);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      error = kExpected;
      return std::nullopt;
    }
    if (text.find(':') != colon) {
      error = "an IPv6 address needs brackets, as in [::1]:8080";
      return std::nullopt;
    }
    std::string host(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (host.empty()) {
      error = "missing host; use 0.0.0.0:PORT or [::]:PORT for every interface";
      return std::nullopt;
    }
    if (host == "localhost") {
      out.host = "127.0.0.1";
    } else {
      auto v4 = boost::asio::ip::make_address_v4(host, ec);
      if (ec) {
        error = "host \"" + host + "\" is not an IP address (host names other than localhost " +
                "are not resolved)";
        return std::nullopt;
      }
      out.host = v4.to_string();
    }
  }
  auto port = parse_port(port_text, error);
  if (!port) return std::nullopt;
  out.port = *port;
  return out;
}

}  // namespace pgfanout::http
