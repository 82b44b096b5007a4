#include "hub/HubState.hpp"

#include <sys/random.h>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <random>

#include "hub/JwksRefresher.hpp"
#include "hub/ServerFrames.hpp"

namespace pgfanout::hub {

// 128 bits from the kernel's random source: a long-poll id is all that names a pipe, so another
// client must not be able to work it out from the ids it was given (as it could from a
// Mersenne Twister's output).
std::string random_client_id() {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char bytes[16];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    auto n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got < sizeof bytes) {  // no getrandom (an old kernel): std::random_device reads urandom
    std::random_device rd;
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  }
  std::string id(32, '0');
  for (std::size_t i = 0; i < sizeof bytes; ++i) {
    id[2 * i] = kHex[bytes[i] >> 4];
    id[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return id;
}

bool RateLimit::take() {
  auto now = std::chrono::steady_clock::now();
  std::chrono::duration<double> elapsed = now - last_;
  last_ = now;
  tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

HubState::HubState(boost::asio::io_context& i, Metrics& m, const HubConfig& hub_config,
                   const http::HttpConfig& http_config, const pg::PostgresConfig& postgres,
                   std::function<std::shared_ptr<const rules::RuleSet>()> r)
    : io(i),
      metrics(m),
      config(hub_config),
      http(http_config),
      sql(i, postgres, hub_config.pg_connections),
      rules(std::move(r)),
      subscribers_(m.gauge("pgfanout_subscribers", "Connected WebSocket and SSE subscribers")),
      delivered_(m.counter("pgfanout_hub_messages_delivered_total",
                           "Event messages queued to subscribers (one per subscriber)")),
      dropped_(m, "pgfanout_subscribers_dropped_total",
               "Subscribers closed by the hub, by reason (slow: send queue full)", {"reason"}),
      client_errors_(m, "pgfanout_hub_client_errors_total",
                     "Client messages refused before they reached a handler, by error code",
                     {"code"}),
      rejected_(m, "pgfanout_hub_connections_rejected_total",
                "Hub connections and requests refused (WebSocket, SSE and Hippie connections, "
                "Hippie long polls and publishes), by reason",
                {"reason"}),
      auth_(m, "pgfanout_hub_auth_total", "Token checks, by result", {"result"}),
      commands_(m, "pgfanout_hub_commands_total", "Client commands, by command and result",
                {"command", "result"}),
      logins_(m, "pgfanout_hub_logins_total", "SQL logins, by result", {"result"}),
      publishes_(m, "pgfanout_hub_publishes_total", "Client publishes, by result", {"result"}) {
  if (config.jwt_enabled) {
    std::string error;
    verifier = auth::JwtVerifier::create(config.jwt, error);
    if (!verifier) spdlog::error("auth.jwt: {}", error);  // the config check already refused it
    if (verifier && config.jwt.key_set) {
      jwks = std::make_shared<JwksRefresher>(io, metrics, config.jwks, *verifier);
    }
  }
  for (const char* reason : {"slow", "timeout", "too_big"}) dropped_.with({reason});
}

bool HubState::admit(HubConnection* c) {
  if (static_cast<int>(connections_.size()) >= config.max_connections) {
    rejected("limit");
    return false;
  }
  connections_.emplace(c, true);
  subscribers_.set(static_cast<double>(connections_.size()));
  return true;
}

void HubState::release(HubConnection* c) {
  connections_.erase(c);
  if (!detached) subscribers_.set(static_cast<double>(connections_.size()));
}

void HubState::shutdown_all() {
  std::vector<HubConnection*> open;
  for (auto& [c, _] : connections_) open.push_back(c);
  for (auto* c : open) c->shutdown();
}

bool HubState::origin_allowed(std::string_view origin) const {
  if (origin.empty() || http.allowed_origins.empty()) return true;
  for (const auto& o : http.allowed_origins) {
    if (o == origin) return true;
  }
  return false;
}

void HubState::dropped(std::string_view reason) {
  dropped_.with({reason}).inc();
}

void HubState::count_client_error(std::string_view code) {
  client_errors_.with({code}).inc();
}

void HubState::rejected(std::string_view reason) {
  rejected_.with({reason}).inc();
}

auth::JwtResult HubState::authenticate(std::string_view token) {
  if (!verifier) {
    auth::JwtResult r;
    r.reason = "disabled";
    r.message = "tokens are not accepted (no auth.jwt)";
    return r;
  }
  auto r = verifier->verify(token);
  if (jwks && r.reason == "unknown_key") jwks->unknown_kid(r.kid);
  auth_.with({r.ok ? std::string_view("ok") : std::string_view(r.reason)}).inc();
  return r;
}

}  // namespace pgfanout::hub
