#include "hub/JwksRefresher.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>

#include "http/HealthChecks.hpp"
#include "http/HttpsGet.hpp"

namespace pgfanout::hub {

namespace {

// A kid (from a client's token, or a JWKS), for the log: printable ASCII only, at most 64
// characters.
std::string printable(std::string_view kid) {
  std::string out;
  for (char c : kid.substr(0, 64)) out += c >= 0x20 && c < 0x7f ? c : '?';
  return kid.size() > 64 ? out + "..." : out;
}

std::string join(const std::vector<std::string>& kids) {
  std::string out;
  for (const auto& k : kids) out += (out.empty() ? "\"" : ", \"") + printable(k) + "\"";
  return out.empty() ? "none" : out;
}

}  // namespace

JwksRefresher::JwksRefresher(boost::asio::io_context& io, Metrics& metrics, JwksSource source,
                             auth::JwtVerifier& verifier)
    : io_(io),
      source_(std::move(source)),
      verifier_(verifier),
      refreshes_(metrics, "pgfanout_jwks_refresh_total",
                 "Fetches of auth.jwt.jwks_url, by result (ok, network, "
                 "tls, status, invalid)",
                 {"result"}),
      keys_gauge_(metrics.gauge("pgfanout_jwks_keys", "Keys in the token verifier's key set")),
      last_ok_gauge_(metrics.gauge("pgfanout_jwks_last_success_timestamp_seconds",
                                   "Unix time of the last good JWKS fetch or read")),
      timer_(io) {
  for (const char* r : {"ok", "network", "tls", "status", "invalid"}) refreshes_.with({r});
  auto keys = verifier_.keys();
  have_set_ = keys->size() > 0;
  keys_gauge_.set(static_cast<double>(keys->size()));
  if (have_set_) {
    last_ok_ = std::chrono::system_clock::now();
    last_ok_gauge_.set(static_cast<double>(std::chrono::system_clock::to_time_t(last_ok_)));
  }
}

void JwksRefresher::start() {
  running_ = true;
  if (from_url()) fetch("start-up");
}

void JwksRefresher::stop() {
  running_ = false;
  timer_.cancel();
}

void JwksRefresher::unknown_kid(const std::string& kid) {
  if (!running_ || !from_url() || in_flight_) return;
  auto since = std::chrono::steady_clock::now() - last_fetch_;
  if (since < source_.min_refresh) {
    spdlog::debug("jwks: unknown kid \"{}\"; the last fetch was too recent to fetch again",
                  printable(kid));
    return;
  }
  spdlog::info("jwks: a token names the unknown kid \"{}\"; fetching {}", printable(kid),
               source_.url);
  fetch("unknown kid");
}

void JwksRefresher::fetch(const char* why) {
  std::string error;
  auto url = http::parse_https_url(source_.url, error);
  if (!url) return failed("invalid", "jwks_url " + error);  // the config check refuses it
  in_flight_ = true;
  ++fetches_;
  last_fetch_ = std::chrono::steady_clock::now();
  timer_.cancel();
  spdlog::debug("jwks: fetching {} ({})", source_.url, why);
  http::HttpsGetOptions options;
  options.ca_file = source_.ca_file;
  http::https_get(io_, *url, options, [weak = weak_from_this()](http::HttpsGetResult r) {
    if (auto self = weak.lock()) self->fetched(r);
  });
}

void JwksRefresher::fetched(const http::HttpsGetResult& r) {
  in_flight_ = false;
  if (!running_) return;
  std::string error;
  if (r.status == 0) {
    bool tls = r.error.starts_with("tls");
    failed(tls ? "tls" : "network", r.error);
  } else if (r.status != 200) {
    failed("status", "HTTP status " + std::to_string(r.status));
  } else if (!install(r.body, error)) {
    failed("invalid", error);
  }
  schedule(last_error_.empty() ? source_.refresh : std::min(source_.refresh, source_.min_refresh));
}

bool JwksRefresher::install(const std::string& text, std::string& error) {
  auto parsed = auth::parse_jwks(text);
  for (const auto& s : parsed.skipped) spdlog::warn("jwks: {}: key skipped: {}", where(), s);
  if (!parsed.set) {
    error = parsed.error;
    return false;
  }
  auto kids = parsed.set->kids();
  auto before = verifier_.keys()->kids();
  auto removed = verifier_.replace_keys(parsed.set);
  refreshes_.with({"ok"}).inc();
  keys_gauge_.set(static_cast<double>(kids.size()));
  last_ok_ = std::chrono::system_clock::now();
  last_ok_gauge_.set(static_cast<double>(std::chrono::system_clock::to_time_t(last_ok_)));
  last_error_.clear();
  have_set_ = true;
  if (kids != before) {
    spdlog::info("jwks: {} key(s) from {}: {}{}", kids.size(), where(), join(kids),
                 removed.empty() ? "" : "; removed: " + join(removed));
  }
  if (!removed.empty() && removed_) removed_(removed);
  return true;
}

void JwksRefresher::failed(std::string_view result, const std::string& error) {
  refreshes_.with({result}).inc();
  last_error_ = error;
  auto keys = verifier_.keys()->size();
  if (have_set_) {
    spdlog::error("jwks: {}: {}; keeping the last good set ({} key(s))", where(), error, keys);
  } else {
    spdlog::error("jwks: {}: {}; no keys yet, so tokens signed with keys are refused", where(),
                  error);
  }
}

void JwksRefresher::schedule(std::chrono::milliseconds after) {
  timer_.expires_after(after);
  timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || !self->running_ || self->in_flight_) return;
    self->fetch("timer");
  });
}

http::HealthStatus JwksRefresher::health() const {
  auto n = verifier_.keys()->size();
  if (!have_set_) {
    return {false, last_error_.empty() ? "fetching " + source_.url : "no keys yet: " + last_error_};
  }
  std::string detail = std::to_string(n) + " key(s)";
  if (!last_error_.empty()) detail += "; the last refresh failed: " + last_error_;
  return {true, detail};
}

}  // namespace pgfanout::hub
