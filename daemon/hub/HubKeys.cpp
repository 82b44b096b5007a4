// The keys of the hub's sections — `auth:`, `topics:`, `commands:` (access_keys(), reloadable)
// and `hub:` (hub_keys(), restart-only) — and the defaults of the structs their rows store into;
// hub/HubConfigLoader.cpp reads them.
#include "config/Fields.hpp"
#include "hub/HubConfig.hpp"

namespace pgfanout::hub {

std::span<const config::KeySpec> access_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"auth", Map, "", kReload, kPlain, kOptional,
   "How WebSocket / SSE clients prove who they are (see docs/protocol.md)."},
  {"auth.jwt", Map, "", kReload, kPlain, kOptional,
   "JSON Web Tokens. A token comes from `Authorization: Bearer`, the `Sec-WebSocket-Protocol` "
   "header (`bearer, TOKEN`), or an `auth` message."},
  {"auth.jwt.algorithm", String, "HS256", kReload, kPlain, kOptional,
   "HS256, RS256, ES256 or EdDSA (Ed25519). Tokens signed with any other algorithm (`none` "
   "included) are refused. Not used with a JWKS, where each key's type decides."},
  {"auth.jwt.secret", String, "", kReload, kSecret, kOptional,
   "HS256 secret, at least 32 bytes. Also signs the tokens that `auth.login` returns. With a "
   "JWKS it is optional: when set, HS256 tokens are accepted too."},
  {"auth.jwt.public_key_file", String, "", kReload, kPlain, kOptional,
   "RS256 / ES256 / EdDSA: PEM file of the public key (`BEGIN PUBLIC KEY`)."},
  {"auth.jwt.jwks_file", String, "", kReload, kPlain, kOptional,
   "A JSON Web Key Set file (`{\"keys\": [...]}`): RSA (RS256), EC P-256 (ES256) and OKP "
   "Ed25519 (EdDSA) keys; a token's `kid` selects the key and its `alg` must be that key's. "
   "Read at start-up and again on SIGHUP. Not with `public_key_file` or `jwks_url`."},
  {"auth.jwt.jwks_url", String, "", kReload, kPlain, kOptional,
   "An https:// URL of a JSON Web Key Set (an identity provider's `jwks_uri`), fetched at start-up, "
   "every `jwks_refresh`, on SIGHUP and when a token names an unknown `kid` (at most once per "
   "`jwks_min_refresh`). A failed fetch keeps the last good set. Until the first good set, tokens "
   "signed with keys are refused (`unknown_key`) and /healthz reports `jwks` failing."},
  {"auth.jwt.jwks_ca_file", String, "", kReload, kPlain, kOptional,
   "PEM file of the CA certificates that `jwks_url`'s server certificate is checked against "
   "instead of the system store (a private CA). The host name is always verified."},
  {"auth.jwt.jwks_refresh", Duration, "10m", kReload, kPlain, kOptional,
   "How often `jwks_url` is fetched again (at least 10s).",
   config::field<&JwksSource::refresh>(config::at_least(10'000, "must be at least 10s"))},
  {"auth.jwt.jwks_min_refresh", Duration, "30s", kReload, kPlain, kOptional,
   "Least time between two fetches of `jwks_url` that a token with an unknown `kid` or a failed "
   "fetch starts (at least 1s).",
   config::field<&JwksSource::min_refresh>(config::at_least(1'000, "must be at least 1s"))},
  {"auth.jwt.audience", String, "", kReload, kPlain, kOptional,
   "When set, a token's `aud` must be (or contain) this value."},
  {"auth.jwt.issuer", String, "", kReload, kPlain, kOptional,
   "When set, a token's `iss` must equal this value."},
  {"auth.jwt.leeway", Duration, "30s", kReload, kPlain, kOptional,
   "Clock skew allowed when checking `exp` and `nbf`."},
  {"auth.allow_query_token", Bool, "false", kReload, kPlain, kOptional,
   "Also accept `?access_token=TOKEN` in the URL (it ends up in access logs; avoid).",
   config::field<&AccessConfig::allow_query_token>()},
  {"auth.login", Map, "", kReload, kPlain, kOptional,
   "SQL login: a `login {username, password}` message runs this statement; one row mints a token "
   "whose claims are the row's columns, signed with `auth.jwt.algorithm` (needs `auth.jwt`): "
   "with `auth.jwt.secret` for HS256 (always, with a JWKS), with `auth.login.private_key_file` for "
   "RS256 / ES256 / EdDSA."},
  {"auth.login.sql", String, "", kReload, kPlain, kRequired,
   "Statement with $1 = username and $2 = password, e.g. `SELECT user_id, username FROM "
   "chat.login($1, $2)`. No row: `login_failed`.",
   config::field<&LoginSpec::sql>()},
  {"auth.login.subject", String, "user_id", kReload, kPlain, kOptional,
   "The column that becomes the token's `sub`.",
   config::field<&LoginSpec::subject>()},
  {"auth.login.ttl", Duration, "12h", kReload, kPlain, kOptional, "Lifetime of a minted token.",
   config::field<&LoginSpec::ttl>(config::at_least(60'000, "must be at least 1m"))},
  {"auth.login.attempts_per_minute", Int, "5", kReload, kPlain, kOptional,
   "Login attempts allowed per connection per minute; more get `rate_limited`.",
   config::field<&LoginSpec::attempts_per_minute>(config::between(1, 1000))},
  {"auth.login.private_key_file", String, "", kReload, kPlain, kOptional,
   "RS256 / ES256 / EdDSA: PEM file of the private key that signs minted tokens (`BEGIN PRIVATE "
   "KEY`), the pair of `auth.jwt.public_key_file`. Required for those algorithms; not used with "
   "HS256."},
  {"topics", List, "", kReload, kPlain, kOptional,
   "Who may subscribe or publish to which topics. The first entry whose pattern matches decides; "
   "a topic no entry matches is refused."},
  {"topics[].pattern", String, "", kReload, kPlain, kRequired,
   "Segments separated by `:`; a segment is a literal, `{claim}` (equal to that claim of the "
   "client's token, e.g. `user:{sub}`) or `*` (any one segment)."},
  {"topics[].allow", StringList, "[subscribe]", kReload, kPlain, kOptional,
   "subscribe and/or publish."},
  {"topics[].anonymous", Bool, "false", kReload, kPlain, kOptional,
   "Clients without a token may use these topics too."},
  {"topics[].publish_channel", String, "pgfanout_publish", kReload, kPlain, kOptional,
   "Client `publish` runs `SELECT pg_notify(CHANNEL, {\"topic\", \"data\", \"sender\"})`; a rule "
   "on this channel pushes it back, on every instance. 1 to 63 bytes, no NUL, not starting with "
   "`pgfanout.`.",
   config::field<&TopicEntry::publish_channel>()},
  {"topics[].on_subscribe", Map, "", kReload, kPlain, kOptional,
   "A statement whose rows are sent to a new subscriber as events before live ones."},
  {"topics[].on_subscribe.sql", String, "", kReload, kPlain, kRequired,
   "E.g. `SELECT * FROM chat.unread($1)`.",
   config::field<&OnSubscribe::sql>()},
  {"topics[].on_subscribe.params", StringList, "", kReload, kPlain, kOptional,
   "`$user` (the token's `sub`), `$claim.NAME`, `$topic`, or a bare claim name."},
  {"topics[].on_subscribe.event", String, "message", kReload, kPlain, kOptional,
   "The `event` name of those rows.",
   config::field<&OnSubscribe::event>()},
  {"commands", Map, "", kReload, kPlain, kOptional,
   "Named SQL statements a client may `call`; no other SQL can be run from a client."},
  {"commands.*", Map, "", kReload, kPlain, kOptional, "One command."},
  {"commands.*.sql", String, "", kReload, kPlain, kRequired,
   "Statement with $1.. bound to `params` (never interpolated).",
   config::field<&CommandSpec::sql>()},
  {"commands.*.params", StringList, "", kReload, kPlain, kOptional,
   "`$user` (the token's `sub`), `$claim.NAME`, or an argument name from the call's `args`."},
  {"commands.*.timeout", Duration, "5s", kReload, kPlain, kOptional,
   "statement_timeout of one call.",
   config::field<&CommandSpec::timeout>(config::kPositive)},
  {"commands.*.anonymous", Bool, "false", kReload, kPlain, kOptional,
   "Clients without a token may call it (e.g. `register`).",
   config::field<&CommandSpec::anonymous>()},
  };
  // clang-format on
  return kRows;
}

std::span<const config::KeySpec> hub_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"hub", Map, "", kRestart, kPlain, kOptional, "WebSocket and SSE subscribers."},
  {"hub.max_connections", Int, "10000", kRestart, kPlain, kOptional,
   "WebSocket, SSE and Hippie connections beyond this get 503. At most half of it can be Hippie "
   "long-poll pipes whose client has not polled yet.",
   config::field<&HubConfig::max_connections>(config::between(1, 1'000'000))},
  {"hub.max_message_size", Size, "64KiB", kRestart, kPlain, kOptional,
   "Largest client message; a larger one closes the connection (1009).",
   config::field<&HubConfig::max_message_bytes>(config::at_least(256, "must be at least 256 bytes"))},
  {"hub.max_subscriptions", Int, "100", kRestart, kPlain, kOptional,
   "Topics one connection may subscribe to.",
   config::field<&HubConfig::max_subscriptions>(config::between(1, 100'000))},
  {"hub.send_queue_size", Size, "1MiB", kRestart, kPlain, kOptional,
   "Bytes queued for one client; a client that falls further behind is closed (1013) and counted "
   "in `pgfanout_subscribers_dropped_total{reason=\"slow\"}`.",
   config::field<&HubConfig::send_queue_bytes>(config::at_least(4096, "must be at least 4KiB"))},
  {"hub.idle_timeout", Duration, "60s", kRestart, kPlain, kOptional,
   "A WebSocket is pinged after half of this without traffic, and closed when nothing came back "
   "within it.",
   config::field<&HubConfig::idle_timeout>(config::at_least(1000, "must be at least 1s"))},
  {"hub.message_timeout", Duration, "10s", kRestart, kPlain, kOptional,
   "A client message sent in fragments must be complete within this after its first fragment; a "
   "client that takes longer is closed (1008) and counted in "
   "`pgfanout_subscribers_dropped_total{reason=\"message_timeout\"}`.",
   config::field<&HubConfig::message_timeout>(config::at_least(100, "must be at least 100ms"))},
  {"hub.sse_heartbeat", Duration, "15s", kRestart, kPlain, kOptional,
   "An idle SSE stream gets a comment line this often.",
   config::field<&HubConfig::sse_heartbeat>(config::at_least(100, "must be at least 100ms"))},
  {"hub.hippie_ping", Duration, "20s", kRestart, kPlain, kOptional,
   "Hippie clients get `{\"type\":\"ping\"}` this often. A long-poll pipe expires when not "
   "polled for three of these, or for one when its client never polled it.",
   config::field<&HubConfig::hippie_ping>(config::at_least(100, "must be at least 100ms"))},
  {"hub.commands_per_second", Int, "20", kRestart, kPlain, kOptional,
   "Commands and publishes per connection per second (bursts of twice that); more get "
   "`rate_limited`.",
   config::field<&HubConfig::commands_per_second>(config::between(1, 100'000))},
  {"hub.pg_connections", Int, "2", kRestart, kPlain, kOptional,
   "PostgreSQL connections for commands, logins, on_subscribe, publish and SSE resume.",
   config::field<&HubConfig::pg_connections>(config::between(1, 64))},
  {"hub.resume_limit", Int, "1000", kRestart, kPlain, kOptional,
   "Most outbox events replayed to one SSE client resuming with Last-Event-ID.",
   config::field<&HubConfig::resume_limit>(config::between(1, 1'000'000))},
  {"hub.history_size", Int, "10000", kRestart, kPlain, kOptional,
   "Pushed events from the WAL source kept in memory (over all topics) for clients that resume "
   "with the id of the last one they saw (SSE Last-Event-ID, WebSocket subscribe `after`); an "
   "older id gets `resync`. 0: none kept.",
   config::field<&HubConfig::history_size>(config::between(0, 10'000'000))},
  {"hub.threads", Int, "0", kRestart, kPlain, kOptional,
   "Event loops the WebSocket, SSE and Hippie sessions are spread over: the daemon's own and "
   "`threads - 1` threads of the hub. 0: one per core. A pushed event is encoded once and handed "
   "to every loop; Hippie long-poll pipes stay on the daemon's loop.",
   config::field<&HubConfig::threads>(config::between(0, 256))},
  };
  // clang-format on
  return kRows;
}

OnSubscribe::OnSubscribe() {
  config::apply_defaults(access_keys(), *this);
}

TopicEntry::TopicEntry() {
  config::apply_defaults(access_keys(), *this);
}

CommandSpec::CommandSpec() {
  config::apply_defaults(access_keys(), *this);
}

JwksSource::JwksSource() {
  config::apply_defaults(access_keys(), *this);
}

LoginSpec::LoginSpec() {
  config::apply_defaults(access_keys(), *this);
}

AccessConfig::AccessConfig() {
  config::apply_defaults(access_keys(), *this);
}

HubConfig::HubConfig() {
  config::apply_defaults(hub_keys(), *this);
}

}  // namespace pgfanout::hub
