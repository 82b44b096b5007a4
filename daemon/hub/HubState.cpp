#include "hub/HubState.hpp"

#include <sys/random.h>

#include <openssl/sha.h>
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

namespace {

// The id of a verifier's one key: a digest of the algorithm and the secret or public key, so a
// reload can tell whether a session's key is still the configured one without keeping the key.
std::string single_key_id(const auth::JwtOptions& jwt) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string material(auth::jwt_algorithm_name(jwt.algorithm));
  material += '\n';
  material += jwt.algorithm == auth::JwtAlgorithm::HS256 ? jwt.secret : jwt.public_key_pem;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(), digest);
  std::string id = "key:";
  for (std::size_t i = 0; i < 16; ++i) {
    id += kHex[digest[i] >> 4];
    id += kHex[digest[i] & 15];
  }
  return id;
}

std::shared_ptr<const Access> make_access(const AccessConfig& config) {
  auto a = std::make_shared<Access>();
  a->config = config;
  if (config.jwt_enabled) {
    std::string error;
    a->verifier = auth::JwtVerifier::create(config.jwt, error);
    if (!a->verifier) spdlog::error("auth.jwt: {}", error);  // the config check already refused it
    a->single_key_id = single_key_id(config.jwt);
  }
  return a;
}

}  // namespace

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
                   const AccessConfig& access, const http::HttpConfig& http_config,
                   const pg::PostgresConfig& postgres,
                   std::function<std::shared_ptr<const rules::RuleSet>()> r,
                   const std::vector<boost::asio::io_context*>& loops)
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
               "Subscribers closed by the hub, by reason (slow: send queue full; resume: in parts)",
               {"reason"}),
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
      publishes_(m, "pgfanout_hub_publishes_total", "Client publishes, by result", {"result"}),
      access_changes_(m, "pgfanout_hub_access_revoked_total",
                      "What reloads of auth:, topics: and commands: took away from open "
                      "connections: connection (closed, its token's key no longer trusted) or "
                      "subscription (removed with error forbidden)",
                      {"what"}) {
  for (auto* loop : loops) {
    auto& gauge = m.gauge("pgfanout_hub_loop_connections",
                          "Open hub connections per event loop (hub.threads; loop 0 is the "
                          "daemon's own)",
                          {{"loop", std::to_string(shards_.size())}});
    shards_.push_back(std::unique_ptr<HubShard>(new HubShard{shards_.size(), *loop, gauge, {}}));
  }
  access_ = make_access(access);
  renew_jwks(*access_, nullptr);  // started by Hub::start()
  for (const char* what : {"connection", "subscription"}) access_changes_.with({what});
  for (const char* reason : {"slow", "timeout", "too_big", "resume"}) dropped_.with({reason});
}

bool HubState::admit(HubConnection* c, HubShard& shard) {
  {
    std::lock_guard lock(connections_mutex_);
    if (static_cast<int>(connections_.size()) < config.max_connections) {
      connections_.emplace(c, &shard);
      subscribers_.set(static_cast<double>(connections_.size()));
      shard.connections.add(1);
      return true;
    }
  }
  rejected("limit");
  return false;
}

void HubState::release(HubConnection* c) {
  std::lock_guard lock(connections_mutex_);
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  if (!detached) it->second->connections.add(-1);
  connections_.erase(it);
  if (!detached) subscribers_.set(static_cast<double>(connections_.size()));
}

void HubState::shutdown_all() {
  on_each_loop([](std::vector<HubConnection*>& open) {
    for (auto* c : open) c->shutdown();
  });
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

void HubState::renew_jwks(const Access& access, const Access* previous) {
  if (jwks) jwks->stop();
  jwks.reset();
  const AccessConfig& c = access.config;
  if (!c.jwt_enabled || !c.jwt.key_set || !access.verifier) return;
  // A key set from the same URL starts with the keys fetched so far: connections verified with
  // them stay until a fetch no longer has their key. Another URL starts empty.
  const bool had_set = previous != nullptr && previous->verifier && previous->config.jwt.key_set;
  if (had_set && !c.jwks.url.empty() && previous->config.jwks.url == c.jwks.url) {
    access.verifier->replace_keys(previous->verifier->keys());
  } else if (had_set && c.jwks.url.empty()) {  // jwks_file, read again with the config
    std::string removed;
    for (const auto& kid : previous->verifier->keys()->kids()) {
      if (!access.verifier->has_key(kid)) removed += (removed.empty() ? "\"" : ", \"") + kid + "\"";
    }
    spdlog::info("auth.jwt: {} read again: {} key(s){}", c.jwks.file,
                 access.verifier->keys()->size(), removed.empty() ? "" : "; removed: " + removed);
  }
  jwks = std::make_shared<JwksRefresher>(io, metrics, c.jwks, *access.verifier);
  jwks->on_removed([this](const std::vector<std::string>& kids) {
    auto change = recheck_all();
    spdlog::info("auth.jwt: {} key(s) left the key set; {} connection(s) verified with them closed",
                 kids.size(), change.closed);
  });
  if (previous != nullptr && !detached) jwks->start();
}

HubState::~HubState() {
  // The refresher holds the verifier of access_ by reference: it goes first.
  if (jwks) jwks->stop();
  jwks.reset();
}

AccessChange HubState::set_access(const AccessConfig& next) {
  auto previous = access();
  auto fresh = make_access(next);
  renew_jwks(*fresh, previous.get());
  {
    std::lock_guard lock(access_mutex_);
    access_ = std::move(fresh);
  }
  return recheck_all();
}

AccessChange HubState::recheck_all() {
  closed_ = 0;
  unsubscribed_ = 0;
  std::atomic<std::size_t> checked{0};
  on_each_loop([&](std::vector<HubConnection*>& open) {
    for (auto* c : open) {
      {
        // One closing synchronously leaves the others in place; check it is still open.
        std::lock_guard lock(connections_mutex_);
        if (connections_.count(c) == 0) continue;
      }
      ++checked;
      c->recheck();
    }
  });
  AccessChange change{checked.load(), closed_.load(), unsubscribed_.load()};
  access_changes_.with({"connection"}).inc(change.closed);
  access_changes_.with({"subscription"}).inc(change.unsubscribed);
  return change;
}

bool HubState::key_trusted(std::string_view key_id) const {
  auto a = access();
  if (!a->verifier) return false;
  if (key_id.starts_with("kid:")) return a->verifier->has_key(key_id.substr(4));
  return key_id == a->single_key_id;
}

auth::JwtResult HubState::authenticate(std::string_view token, std::string* key_id) {
  auto a = access();
  const auto& verifier = a->verifier;
  if (!verifier) {
    auth::JwtResult r;
    r.reason = "disabled";
    r.message = "tokens are not accepted (no auth.jwt)";
    return r;
  }
  auto r = verifier->verify(token);
  if (r.reason == "unknown_key") {
    // The refresher lives on loop 0.
    boost::asio::post(io, [self = shared_from_this(), kid = r.kid] {
      if (self->jwks) self->jwks->unknown_kid(kid);
    });
  }
  auth_.with({r.ok ? std::string_view("ok") : std::string_view(r.reason)}).inc();
  if (r.ok && key_id != nullptr) {
    // A key of a key set by its kid; the one configured key (or the HS256 secret) by its digest.
    *key_id = r.kid.empty() ? a->single_key_id : "kid:" + r.kid;
  }
  return r;
}

}  // namespace pgfanout::hub
