// HubConfig: the validated `auth:`, `topics:`, `commands:` and `hub:` sections, which configure
// the WebSocket / SSE hub (`http.allowed_origins` and `http.static` are in HttpConfig).
//
// Plain values, built by load_hub_config() while the config file loads and immutable afterwards.
// These keys take effect at start-up only (a reload reports a change and keeps the running ones).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "auth/Jwt.hpp"
#include "auth/TopicAcl.hpp"

namespace pgfanout::config {
class MapReader;
}

namespace pgfanout::hub {

// One parameter of a command or on_subscribe statement: where its value comes from.
struct ParamRef {
  enum class Kind { Subject, Claim, Arg, Topic };
  Kind kind = Kind::Arg;
  std::string name;    // the claim or argument name
  std::string source;  // as written in the config
};

struct OnSubscribe {
  std::string sql;
  std::vector<ParamRef> params;
  std::string event = "message";
};

struct TopicEntry {
  std::string publish_channel = "pgfanout_publish";
  std::optional<OnSubscribe> on_subscribe;
};

struct CommandSpec {
  std::string sql;
  std::vector<ParamRef> params;
  std::chrono::milliseconds timeout{5'000};
  bool anonymous = false;
};

struct LoginSpec {
  std::string sql;
  std::string subject = "user_id";
  std::chrono::seconds ttl{12 * 3600};
  int attempts_per_minute = 5;
  // RS256 / ES256: the PEM private key that signs minted tokens (HS256 uses auth.jwt.secret).
  std::string private_key_pem;
};

struct HubConfig {
  bool jwt_enabled = false;  // auth.jwt configured
  auth::JwtOptions jwt;
  std::optional<LoginSpec> login;
  bool allow_query_token = false;

  auth::TopicAcl acl;
  std::vector<TopicEntry> topics;  // parallel to acl.entries()
  std::map<std::string, CommandSpec, std::less<>> commands;

  int max_connections = 10'000;
  std::uint64_t max_message_bytes = 64 * 1024;
  int max_subscriptions = 100;
  std::uint64_t send_queue_bytes = 1024 * 1024;
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds message_timeout{10'000};
  std::chrono::milliseconds sse_heartbeat{15'000};
  std::chrono::milliseconds hippie_ping{20'000};
  double commands_per_second = 20;
  int pg_connections = 2;
  int resume_limit = 1000;
  std::size_t history_size = 10'000;  // pushed WAL events kept for resume (EventHistory)
};

// Reads the hub's sections from the top-level mapping; problems go to the reader's diagnostics.
void load_hub_config(config::MapReader& root, HubConfig& out);

}  // namespace pgfanout::hub
