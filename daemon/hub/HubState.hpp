// HubState: what every hub connection shares — the config, the token verifier, the topic table,
// the SQL connections, the metrics — and the operations that do not depend on the transport
// (authenticate, check a topic, run a command or login, publish, on_subscribe, outbox replay).
//
// The hub's sessions run on several event loops (hub/HubLoops.hpp, `hub.threads`): each loop has
// a HubShard with the topic table of its own sessions, and a pushed event goes to every shard.
// What the sessions of all loops share is thread-safe here: the connection table and the access
// rules behind mutexes, the index of listened topics behind a shared mutex, the history and the
// metrics on their own. SQL work (commands, login, publish, on_subscribe, resume) runs on loop 0,
// where the SqlGateway lives; called from another loop it goes there, and its answer comes back
// to the caller's loop.
//
// Held by shared_ptr by the Hub and by every session, so a session finishing after the Hub is
// gone still finds it (`detached` is then set and nothing is started any more). Results of SQL
// work come back through callbacks on the event loop as HubResults; sessions keep themselves
// alive in them. One file per job: connections and counters here (HubState.cpp), commands,
// publish and on_subscribe (HubCommands.cpp), SQL login (HubLogin.cpp), SSE resume
// (HubReplay.cpp), delivery over the loops (HubShards.cpp); what they share in HubSql.hpp.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/Jwt.hpp"
#include "http/HttpConfig.hpp"
#include "hub/ClientMessage.hpp"
#include "hub/EventHistory.hpp"
#include "hub/HubConfig.hpp"
#include "hub/HubLoops.hpp"
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

  // Whether the `topics:` entry at `entry` has an on_subscribe query. An entry index found with
  // another snapshot (a reload in between, on another hub thread) may be past the end: false.
  bool on_subscribe_at(std::size_t entry) const {
    return entry < config.topics.size() && config.topics[entry].on_subscribe.has_value();
  }
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

// One event loop's part of the hub: the loop, and the topics its sessions subscribed to. Used on
// that loop's thread only.
struct HubShard {
  std::size_t index;
  boost::asio::io_context& io;
  Gauge& connections;  // pgfanout_hub_loop_connections{loop}
  TopicHub topics;
};

class HubState : public std::enable_shared_from_this<HubState> {
 public:
  // `loops`: the hub's event loops, loop 0 first (the daemon's `io`).
  HubState(boost::asio::io_context& io, Metrics& metrics, const HubConfig& config,
           const AccessConfig& access, const http::HttpConfig& http,
           const pg::PostgresConfig& postgres,
           std::function<std::shared_ptr<const rules::RuleSet>()> rules,
           const std::vector<boost::asio::io_context*>& loops);
  ~HubState();

  boost::asio::io_context& io;  // loop 0
  Metrics& metrics;
  const HubConfig config;
  const http::HttpConfig http;
  std::shared_ptr<JwksRefresher> jwks;  // with auth.jwt.jwks_file or jwks_url; loop 0 only
  EventHistory history{config.history_size};
  SqlGateway sql;  // loop 0 only
  std::function<std::shared_ptr<const rules::RuleSet>()> rules;
  std::atomic<bool> detached{false};

  // ---- loops and topics (HubShards.cpp)
  std::size_t loop_count() const { return shards_.size(); }
  HubShard& shard(std::size_t i) { return *shards_[i]; }
  // The shard of the calling thread's loop.
  HubShard& current_shard() { return *shards_[HubLoops::current()]; }
  // Where a new session goes: the loops in turn. Loop 0.
  HubShard& place();
  // On `shard`'s thread; keep the index of listened topics (listened()) up to date.
  bool subscribe(HubShard& shard, std::string_view topic, Subscriber* s);
  bool unsubscribe(HubShard& shard, std::string_view topic, Subscriber* s);
  // Whether a session of any loop listens to `topic`.
  bool listened(std::string_view topic) const;
  // Delivers `m` to the subscribers of its topic on every loop: loop 0's now, the others' in a
  // handler on their loop (the WebSocket frame encoded once, here, for all of them). Loop 0.
  void publish(const HubMessage& m);
  void resync_all();
  // The hub threads run (Hub::start) / are stopped: only while they run is work posted to them.
  void loops_running(bool running) { gone_->store(!running); }

  // ---- access rules
  // The rules in force; a snapshot, kept by whoever needs it past a reload.
  std::shared_ptr<const Access> access() const {
    std::lock_guard lock(access_mutex_);
    return access_;
  }
  // Replaces the access rules and checks every open connection against them (recheck()).
  AccessChange set_access(const AccessConfig& next);
  // Whether a token verified with `key_id` is still accepted.
  bool key_trusted(std::string_view key_id) const;
  // Checks every open connection against the access rules in force (recheck()).
  AccessChange recheck_all();
  // Called by connections from recheck().
  void closed_for_key() { ++closed_; }
  void unsubscribed_forbidden() { ++unsubscribed_; }

  // ---- connections
  // Registers a new connection of `shard`'s loop; false (and counted) when hub.max_connections
  // are open.
  bool admit(HubConnection* c, HubShard& shard);
  void release(HubConnection* c);
  std::size_t connection_count() const {
    std::lock_guard lock(connections_mutex_);
    return connections_.size();
  }
  // Shuts every connection down, each on its loop.
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
  // A new JwksRefresher for the key set of `access` (none without one), seeded with the keys of
  // `previous` for a URL; started unless this is start-up (Hub::start() starts it).
  void renew_jwks(const Access& access, const Access* previous);
  // Runs `task` on every loop with the connections of that loop (on loop 0 now; the others in a
  // handler there), and returns when all have run. Loop 0, holding no lock.
  void on_each_loop(const std::function<void(std::vector<HubConnection*>&)>& task);
  // Called on a hub thread other than loop 0: `op(reply)` runs on loop 0, and `reply` answers on
  // the calling loop; true then. False on loop 0 (the caller goes on itself).
  template <class Reply, class Op>
  bool hop(Reply& reply, Op op) {
    const std::size_t from = HubLoops::current();
    if (from == 0) return false;
    Reply back = BackTo<Reply>(shards_[from]->io, std::move(reply), gone_);
    boost::asio::post(
        io, [op = std::move(op), back = std::move(back)]() mutable { op(std::move(back)); });
    return true;
  }

  std::vector<std::unique_ptr<HubShard>> shards_;
  std::atomic<std::size_t> next_shard_{0};
  // True while the hub threads do not run: before Hub::start and after the hub stopped.
  std::shared_ptr<std::atomic<bool>> gone_ = std::make_shared<std::atomic<bool>>(true);
  mutable std::shared_mutex listened_mutex_;
  std::unordered_map<std::string, std::size_t, TopicHash, std::equal_to<>> listened_;
  mutable std::mutex access_mutex_;
  std::shared_ptr<const Access> access_;
  std::atomic<std::size_t> closed_{0}, unsubscribed_{0};  // of the recheck_all() running
  mutable std::mutex connections_mutex_;
  std::unordered_map<HubConnection*, HubShard*> connections_;
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
