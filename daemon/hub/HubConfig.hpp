// AccessConfig and HubConfig: the validated `auth:`, `topics:`, `commands:` (who may do what:
// AccessConfig) and `hub:` (limits and timers: HubConfig) sections, which configure the
// WebSocket / SSE hub (`http.allowed_origins` and `http.static` are in HttpConfig).
//
// Plain values, built by load_access_config() / load_hub_config() while the config file loads
// and immutable afterwards; access_keys() and hub_keys() declare the keys, each setting's
// default, range and member (config/Fields.hpp). A reload applies a new AccessConfig to the
// running hub (Hub::set_access: open connections are checked again, none is dropped for it);
// the `hub:` keys take effect at start-up only (a reload reports a change and keeps them).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "auth/Jwt.hpp"
#include "auth/TopicAcl.hpp"

namespace pgfanout::config {
class MapReader;
struct KeySpec;
}  // namespace pgfanout::config

namespace pgfanout::hub {

// One parameter of a command or on_subscribe statement: where its value comes from.
struct ParamRef {
  enum class Kind { Subject, Claim, Arg, Topic };
  Kind kind = Kind::Arg;
  std::string name;    // the claim or argument name
  std::string source;  // as written in the config
};

struct OnSubscribe {
  OnSubscribe();  // the defaults of hub_keys()
  std::string sql;
  std::vector<ParamRef> params;
  std::string event;
};

struct TopicEntry {
  TopicEntry();
  std::string publish_channel;
  std::optional<OnSubscribe> on_subscribe;
};

struct CommandSpec {
  CommandSpec();
  std::string sql;
  std::vector<ParamRef> params;
  std::chrono::milliseconds timeout;
  bool anonymous;
};

struct LoginSpec {
  LoginSpec();
  std::string sql;
  std::string subject;
  std::chrono::seconds ttl;
  int attempts_per_minute;
  // RS256 / ES256 / EdDSA: the PEM private key that signs minted tokens (HS256 uses
  // auth.jwt.secret).
  std::string private_key_pem;
};

// auth.jwt.jwks_*: where a key set comes from (jwt.key_set) and how often it is fetched again.
struct JwksSource {
  JwksSource();
  std::string file;     // jwks_file, resolved against the config's directory
  std::string url;      // jwks_url (https://)
  std::string ca_file;  // jwks_ca_file, resolved; "" for the system CA store
  std::chrono::milliseconds refresh;
  std::chrono::milliseconds min_refresh;
};

struct AccessConfig {
  AccessConfig();            // the defaults of access_keys()
  bool jwt_enabled = false;  // auth.jwt configured
  auth::JwtOptions jwt;
  JwksSource jwks;
  std::optional<LoginSpec> login;
  bool allow_query_token;

  auth::TopicAcl acl;
  std::vector<TopicEntry> topics;  // parallel to acl.entries()
  std::map<std::string, CommandSpec, std::less<>> commands;
};

struct HubConfig {
  HubConfig();
  int max_connections;
  std::uint64_t max_message_bytes;
  int max_subscriptions;
  std::uint64_t send_queue_bytes;
  std::chrono::milliseconds idle_timeout;
  std::chrono::milliseconds message_timeout;
  std::chrono::milliseconds sse_heartbeat;
  std::chrono::milliseconds hippie_ping;
  double commands_per_second;
  int pg_connections;
  int resume_limit;
  std::size_t history_size;  // pushed WAL events kept for resume (EventHistory)
  int threads;               // event loops for sessions; 0: one per core (HubLoops)
};

// What applying new access rules (a reload) did to the open connections.
struct AccessChange {
  std::size_t checked = 0;       // connections checked again
  std::size_t closed = 0;        // closed: their token's key is no longer trusted
  std::size_t unsubscribed = 0;  // subscriptions removed with `error forbidden`
};

// The keys of `auth:`, `topics:` and `commands:`, in documentation order (all reloadable).
std::span<const config::KeySpec> access_keys();
// The keys of `hub:` (restart-only).
std::span<const config::KeySpec> hub_keys();

// Read the sections from the top-level mapping; problems go to the reader's diagnostics.
void load_access_config(config::MapReader& root, AccessConfig& out);
void load_hub_config(config::MapReader& root, HubConfig& out);

}  // namespace pgfanout::hub
