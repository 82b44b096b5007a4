// HubState: what every hub connection shares — the config, the token verifier, the topic table,
// the SQL connections, the metrics — and the operations that do not depend on the transport
// (authenticate, check a topic, run a command or login, publish, on_subscribe, outbox replay).
//
// Held by shared_ptr by the Hub and by every session, so a session finishing after the Hub is
// gone still finds it (`detached` is then set and nothing is started any more). Results of SQL
// work come back through callbacks on the event loop as HubResults; sessions keep themselves
// alive in them. One file per job: connections and counters here (HubState.cpp), commands,
// publish and on_subscribe (HubCommands.cpp), SQL login (HubLogin.cpp), SSE resume
// (HubReplay.cpp); what they share in HubSql.hpp. Event loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/Jwt.hpp"
#include "http/HttpConfig.hpp"
#include "hub/ClientMessage.hpp"
#include "hub/EventHistory.hpp"
#include "hub/HubConfig.hpp"
#include "hub/HubResult.hpp"
#include "hub/SqlGateway.hpp"
#include "hub/TopicHub.hpp"
#include "metrics/Metrics.hpp"
#include "pg/PgConfig.hpp"
#include "rules/RuleSet.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout::hub {

class JwksRefresher;

// A hub connection that the Hub can close at shutdown.
class HubConnection {
 public:
  virtual ~HubConnection() = default;
  virtual void shutdown() = 0;
};

// A token bucket: `rate` per second, bursts of `burst`.
class RateLimit {
 public:
  RateLimit(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  bool take();

 private:
  double rate_, burst_, tokens_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

struct ReplayedEvent {
  std::string topic;
  std::string id;
  std::shared_ptr<const std::string> frame;
};

class HubState {
 public:
  HubState(boost::asio::io_context& io, Metrics& metrics, const HubConfig& config,
           const http::HttpConfig& http, const pg::PostgresConfig& postgres,
           std::function<std::shared_ptr<const rules::RuleSet>()> rules);

  boost::asio::io_context& io;
  Metrics& metrics;
  const HubConfig config;
  const http::HttpConfig http;
  std::unique_ptr<auth::JwtVerifier> verifier;  // null without auth.jwt
  std::shared_ptr<JwksRefresher> jwks;          // with auth.jwt.jwks_file or jwks_url
  TopicHub topics;
  EventHistory history{config.history_size};
  SqlGateway sql;
  std::function<std::shared_ptr<const rules::RuleSet>()> rules;
  bool detached = false;

  // ---- connections
  // Registers a new connection; false (and counted) when hub.max_connections are open.
  bool admit(HubConnection* c);
  void release(HubConnection* c);
  std::size_t connection_count() const { return connections_.size(); }
  void shutdown_all();
  // Whether `origin` (may be empty) passes http.allowed_origins.
  bool origin_allowed(std::string_view origin) const;
  void dropped(std::string_view reason);
  // A client message that did not parse (bad_message, too_large...): answered with an error.
  void count_client_error(std::string_view code);
  // A refused hub connection or request (WebSocket, SSE, Hippie stream, long poll or publish).
  void rejected(std::string_view reason);
  void delivered(std::size_t n) { delivered_.inc(n); }

  // ---- operations; `reply` gets the outcome (hub/HubResult.hpp), the caller makes the frame
  // A token with a kid the key set lacks also asks `jwks` to fetch the set again (rate-limited);
  // that token is refused all the same (`unknown_key`).
  auth::JwtResult authenticate(std::string_view token);
  // A declared command; on success the result is its rows as a JSON array.
  void call(const auth::Claims* claims, const ClientMessage& m,
            std::function<void(HubResult)> reply);
  // SQL login; on success the result is {"token","expires_in","claims"} and the claims are given.
  void login(const ClientMessage& m,
             std::function<void(HubResult, std::optional<auth::Claims>)> reply);
  void publish(const auth::Claims* claims, const std::string& topic, std::size_t entry,
               const std::string& data_json, std::function<void(HubResult)> reply);
  // Runs the topic entry's on_subscribe (if any); `done` gets the rows as event frames, or the
  // error.
  void on_subscribe(const auth::Claims* claims, const std::string& topic, std::size_t entry,
                    std::function<void(std::vector<std::shared_ptr<const std::string>> frames,
                                       std::optional<HubError> error)>
                        done);
  // The durable events after outbox id `after` that push to one of `topics`. `lost` names the
  // topics that cannot be resumed completely: no durable rule pushes to them, or more than
  // hub.resume_limit events were missed.
  void replay(
      std::vector<std::string> topics, std::int64_t after,
      std::function<void(std::vector<ReplayedEvent> events, std::vector<std::string> lost)> done);

 private:
  std::unordered_map<HubConnection*, bool> connections_;
  Gauge& subscribers_;
  Counter& delivered_;
  CounterFamily dropped_, client_errors_, rejected_, auth_, commands_, logins_, publishes_;
};

// A random identifier for a Hippie client (32 hex digits).
std::string random_client_id();

// Rows of a result as a JSON array of objects (numbers, booleans and json columns typed).
std::string rows_json(const pg::PgResult& r);

}  // namespace pgfanout::hub
