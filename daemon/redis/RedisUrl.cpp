#include "redis/RedisUrl.hpp"

#include <charconv>

namespace pgfanout::redis {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex_digit(in[i + 1]);
    int lo = hex_digit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

bool parse_int(std::string_view s, int min, int max, int& out) {
  if (s.empty()) return false;
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) return false;
  out = v;
  return true;
}

// Splits "user:password@" off the front of `rest` (the part after "scheme://").
bool take_userinfo(std::string_view& rest, std::string_view stop_chars, RedisUrl& url,
                   std::string& error) {
  auto end = rest.find_first_of(stop_chars);
  auto at = rest.substr(0, end).rfind('@');
  if (at == std::string_view::npos) return true;
  std::string_view info = rest.substr(0, at);
  rest.remove_prefix(at + 1);
  auto colon = info.find(':');
  std::string_view user = info.substr(0, colon);
  std::string_view pass =
      colon == std::string_view::npos ? std::string_view{} : info.substr(colon + 1);
  if (colon == std::string_view::npos) {
    // "redis://secret@host": a lone userinfo is the password, as redis-cli reads it.
    pass = user;
    user = {};
  }
  if (!percent_decode(user, url.user) || !percent_decode(pass, url.password)) {
    error = "bad %-escape in the user or password of the Redis URL";
    return false;
  }
  return true;
}

}  // namespace

std::string RedisUrl::describe() const {
  std::string who = user.empty() ? "" : user + "@";
  if (is_unix()) return "unix://" + who + socket_path + "?db=" + std::to_string(db);
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return (tls.enabled ? "rediss://" : "redis://") + who + h + ":" + std::to_string(port) + "/" +
         std::to_string(db);
}

std::optional<RedisUrl> RedisUrl::parse(std::string_view text, std::string& error) {
  RedisUrl url;
  if (text.starts_with("unix://")) {
    std::string_view rest = text.substr(7);
    if (!take_userinfo(rest, "?", url, error)) return std::nullopt;
    auto q = rest.find('?');
    std::string_view path = rest.substr(0, q);
    if (path.empty() || path[0] != '/') {
      error = "a unix:// Redis URL needs an absolute socket path: unix:///run/redis/redis.sock";
      return std::nullopt;
    }
    url.socket_path = std::string(path);
    if (q != std::string_view::npos) {
      std::string_view query = rest.substr(q + 1);
      if (!query.starts_with("db=") || !parse_int(query.substr(3), 0, 1'000'000, url.db)) {
        error = "the only query parameter of a unix:// Redis URL is db=N (a number)";
        return std::nullopt;
      }
    }
    return url;
  }
  url.tls.enabled = text.starts_with("rediss://");
  if (!text.starts_with("redis://") && !url.tls.enabled) {
    error =
        "a Redis URL starts with redis://, rediss:// (TLS) or unix:// (e.g. "
        "redis://127.0.0.1:6379/0)";
    return std::nullopt;
  }
  std::string_view rest = text.substr(url.tls.enabled ? 9 : 8);
  if (!take_userinfo(rest, "/?", url, error)) return std::nullopt;
  auto slash = rest.find_first_of("/?");
  std::string_view hostport = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  std::string_view port_text;
  if (hostport.starts_with("[")) {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated [ in the host of the Redis URL";
      return std::nullopt;
    }
    url.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        error = "expected :port after ] in the Redis URL";
        return std::nullopt;
      }
      port_text = after.substr(1);
      if (port_text.empty()) port_text = "x";
    }
  } else {
    auto colon = hostport.rfind(':');
    url.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = hostport.substr(colon + 1);
      if (port_text.empty()) port_text = "x";
    }
  }
  if (url.host.empty()) {
    error = "the Redis URL has no host (e.g. redis://127.0.0.1:6379/0)";
    return std::nullopt;
  }
  if (!port_text.empty() && !parse_int(port_text, 1, 65535, url.port)) {
    error = "bad port \"" + std::string(port_text) + "\" in the Redis URL (1-65535)";
    return std::nullopt;
  }
  if (path.starts_with("?")) {
    error =
        "query parameters are not supported in a redis:// URL; give the database as /N (TLS "
        "settings are the tls_* keys next to the url)";
    return std::nullopt;
  }
  if (path.size() > 1) {
    std::string_view db = path.substr(1);
    if (db.find('?') != std::string_view::npos) {
      error =
          "query parameters are not supported in a redis:// URL; give the database as /N (TLS "
          "settings are the tls_* keys next to the url)";
      return std::nullopt;
    }
    if (!parse_int(db, 0, 1'000'000, url.db)) {
      error = "bad database \"" + std::string(db) + "\" in the Redis URL (a number: /0)";
      return std::nullopt;
    }
  }
  return url;
}

}  // namespace pgfanout::redis
