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

// A hub connection that the Hub can close at shutdown, and check again when the access rules
// change.
class HubConnection {
 public:
  virtual ~HubConnection() = default;
  virtual void shutdown() = 0;
  // The access rules were replaced (HubState::set_access): a connection whose token was verified
  // with a key that is no longer trusted closes with a reason; every subscription the new rules
  // no longer allow gets `error forbidden` and is removed; the rest keeps flowing.
  virtual void recheck() = 0;
};

// Who a client proved to be: its token's claims and the key that verified the token.
struct Identity {
  auth::Claims claims;
  std::string key_id;  // HubState::key_trusted() tells whether it still is
};

// The access rules in force (auth:, topics:, commands:) and the verifier made of them; replaced
// as a whole by a reload. Operations that outlive a reload keep the snapshot they started with.
struct Access {
  AccessConfig config;
  std::unique_ptr<auth::JwtVerifier> verifier;  // null without auth.jwt
  // The id of the one key of a verifier without key ids (a digest of the secret or public key).
  std::string single_key_id;
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

// A place in the outbox's delivery order, (txid, id).
struct OutboxPosition {
  std::uint64_t txid = 0;
  std::int64_t id = 0;
  bool operator<(const OutboxPosition& o) const {
    return txid != o.txid ? txid < o.txid : id < o.id;
  }
};

class HubState {
 public:
  HubState(boost::asio::io_context& io, Metrics& metrics, const HubConfig& config,
           const AccessConfig& access, const http::HttpConfig& http,
           const pg::PostgresConfig& postgres,
           std::function<std::shared_ptr<const rules::RuleSet>()> rules);
  ~HubState();

  boost::asio::io_context& io;
  Metrics& metrics;
  const HubConfig config;
  const http::HttpConfig http;
  std::shared_ptr<JwksRefresher> jwks;  // with auth.jwt.jwks_file or jwks_url
  TopicHub topics;
  EventHistory history{config.history_size};
  SqlGateway sql;
  std::function<std::shared_ptr<const rules::RuleSet>()> rules;
  bool detached = false;

  // ---- access rules
  const Access& access() const { return *access_; }
  std::shared_ptr<const Access> access_snapshot() const { return access_; }
  // Replaces the access rules and checks every open connection against them (recheck()).
  AccessChange set_access(const AccessConfig& next);
  // Whether a token verified with `key_id` is still accepted.
  bool key_trusted(std::string_view key_id) const;
  // Checks every open connection against the access rules in force (recheck()).
  AccessChange recheck_all();
  // Called by connections from recheck().
  void closed_for_key() { ++change_.closed; }
  void unsubscribed_forbidden() { ++change_.unsubscribed; }

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
  // On success `key_id` names the key that verified the token. A token with a kid the key set
  // lacks also asks `jwks` to fetch the set again (rate-limited); that token is refused all the
  // same (`unknown_key`).
  auth::JwtResult authenticate(std::string_view token, std::string* key_id = nullptr);
  // A declared command; on success the result is its rows as a JSON array.
  void call(const auth::Claims* claims, const ClientMessage& m,
            std::function<void(HubResult)> reply);
  // SQL login; on success the result is {"token","expires_in","claims"} and the identity (the
  // minted token's claims) is given.
  void login(const ClientMessage& m, std::function<void(HubResult, std::optional<Identity>)> reply);
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
  // hub.resume_limit events were missed. `seen`: the position the client has now seen up to
  // (the last event replayed, or `after` itself), when `after` is still in the outbox.
  void replay(std::vector<std::string> topics, std::int64_t after,
              std::function<void(std::vector<ReplayedEvent> events, std::vector<std::string> lost,
                                 std::optional<OutboxPosition> seen)>
                  done);

 private:
  // A new JwksRefresher for the key set of access_ (none without one), seeded with the keys of
  // `previous` for a URL; started unless this is start-up (Hub::start() starts it).
  void renew_jwks(const Access* previous);

  std::shared_ptr<const Access> access_;
  AccessChange change_;  // of the set_access() running
  std::unordered_map<HubConnection*, bool> connections_;
  Gauge& subscribers_;
  Counter& delivered_;
  CounterFamily dropped_, client_errors_, rejected_, auth_, commands_, logins_, publishes_,
      access_changes_;
};

// A random identifier for a Hippie client (32 hex digits).
std::string random_client_id();

// Rows of a result as a JSON array of objects (numbers, booleans and json columns typed).
std::string rows_json(const pg::PgResult& r);

}  // namespace pgfanout::hub
