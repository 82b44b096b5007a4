// JwksRefresher: keeps the token verifier's key set current from auth.jwt.jwks_file or jwks_url.
//
// jwks_url: fetched (http/HttpsGet.hpp) at start(), every jwks_refresh after a good fetch and
// jwks_min_refresh after a failed one, and when a token names a kid the set lacks
// (unknown_kid()) — that last one at most once per jwks_min_refresh, and never while a fetch
// runs; such a token is refused meanwhile (`unknown_key`) and its client retries. A fetch that
// fails (no response, TLS, a status other than 200, not a usable JWKS) keeps the last good set;
// every attempt is counted in pgfanout_jwks_refresh_total{result} and the set's size is
// pgfanout_jwks_keys. A new set replaces the verifier's keys at once; the kids it no longer has
// go to the on_removed callback. jwks_file is read with the config (at start-up and on SIGHUP,
// when HubState makes a new verifier and a new refresher).
//
// Made with make_shared and owned by HubState; its timer and fetches hold it weakly, so nothing
// runs after it is gone. Event loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "auth/Jwt.hpp"
#include "hub/HubConfig.hpp"
#include "metrics/Metrics.hpp"

namespace pgfanout::http {
struct HttpsGetResult;
struct HealthStatus;
}  // namespace pgfanout::http

namespace pgfanout::hub {

class JwksRefresher : public std::enable_shared_from_this<JwksRefresher> {
 public:
  using Removed = std::function<void(const std::vector<std::string>& kids)>;

  // `verifier` must outlive this object.
  JwksRefresher(boost::asio::io_context& io, Metrics& metrics, JwksSource source,
                auth::JwtVerifier& verifier);

  // jwks_url: the first fetch, then the timer.
  void start();
  void stop();
  // A token named `kid`, which the key set lacks.
  void unknown_kid(const std::string& kid);
  // Called with the kids a new set no longer has.
  void on_removed(Removed callback) { removed_ = std::move(callback); }

  bool from_url() const { return !source_.url.empty(); }
  // For /healthz (jwks_url): ok once a good set has been fetched.
  http::HealthStatus health() const;
  std::uint64_t fetches() const { return fetches_; }

 private:
  void fetch(const char* why);
  void fetched(const http::HttpsGetResult& r);
  // Installs the set of a good `text`; false (and `error`) when it is not a usable JWKS.
  bool install(const std::string& text, std::string& error);
  void failed(std::string_view result, const std::string& error);
  void schedule(std::chrono::milliseconds after);
  std::string where() const { return from_url() ? source_.url : source_.file; }

  boost::asio::io_context& io_;
  JwksSource source_;
  auth::JwtVerifier& verifier_;
  CounterFamily refreshes_;
  Gauge& keys_gauge_;
  Gauge& last_ok_gauge_;
  boost::asio::steady_timer timer_;
  Removed removed_;
  bool running_ = false;
  bool in_flight_ = false;
  bool have_set_ = false;  // a good set was installed (jwks_file: at start-up already)
  std::string last_error_;
  std::uint64_t fetches_ = 0;
  std::chrono::steady_clock::time_point last_fetch_{};
  std::chrono::system_clock::time_point last_ok_{};
};

}  // namespace pgfanout::hub
