#include "config/ConfigSchema.hpp"

#include <array>

namespace pgfanout::config {

namespace {

using enum KeyType;
constexpr bool kReload = true;
constexpr bool kRestart = false;
constexpr bool kSecret = true;
constexpr bool kPlain = false;
constexpr bool kRequired = true;
constexpr bool kOptional = false;

// clang-format off
const KeySpec kKeys[] = {
  {"version", Int, "1", kRestart, kPlain, kOptional,
   "Config format version. Only 1 exists."},
  {"consumer", String, "", kRestart, kPlain, kOptional,
   "This instance's name for outbox positions. Default: the host name."},

  // ---- log
  {"log", Map, "", kReload, kPlain, kOptional, "Logging."},
  {"log.level", String, "info", kReload, kPlain, kOptional,
   "trace, debug, info, warn, error or off. `--log-level` on the command line wins."},

  // ---- postgres
  {"postgres", Map, "", kRestart, kPlain, kRequired, "The PostgreSQL server to LISTEN on (a primary, not a standby)."},
  {"postgres.dsn", String, "postgresql:///postgres", kRestart, kSecret, kOptional,
   "libpq connection string or URI. Must reach the primary directly or through session pooling: "
   "a hot standby cannot LISTEN and PgBouncer transaction pooling cannot carry it."},
  {"postgres.password", String, "", kRestart, kSecret, kOptional,
   "Password, overriding any in the DSN. Prefer `password_file` or ${ENV}."},
  {"postgres.connect_timeout", Duration, "10s", kRestart, kPlain, kOptional,
   "How long one connection attempt may take."},
  {"postgres.heartbeat_interval", Duration, "5s", kRestart, kPlain, kOptional,
   "How often the listener NOTIFYs itself on a private channel to prove it still receives."},
  {"postgres.heartbeat_timeout", Duration, "15s", kRestart, kPlain, kOptional,
   "A heartbeat not back within this time marks the connection broken: it is closed and re-opened."},
  {"postgres.reconnect_min", Duration, "100ms", kRestart, kPlain, kOptional,
   "First reconnect delay; doubles on each failure, with jitter."},
  {"postgres.reconnect_max", Duration, "30s", kRestart, kPlain, kOptional,
   "Longest reconnect delay."},

  // ---- outbox
  {"outbox", Map, "", kRestart, kPlain, kOptional,
   "How durable rules read pgfanout.outbox (see docs/triggers.md)."},
  {"outbox.poll_interval", Duration, "1s", kRestart, kPlain, kOptional,
   "Read the outbox at least this often, even without a doorbell NOTIFY."},
  {"outbox.batch_size", Int, "500", kRestart, kPlain, kOptional, "Events read per fetch."},
  {"outbox.retry_delay", Duration, "1s", kRestart, kPlain, kOptional,
   "Wait before delivering again events whose actions failed."},
  {"outbox.trim_interval", Duration, "1m", kRestart, kPlain, kOptional,
   "How often consumed events are deleted (pgfanout.outbox_trim)."},
  {"outbox.max_age", Duration, "7d", kRestart, kPlain, kOptional,
   "A consumer not seen for this long no longer holds events back from deletion."},
  {"outbox.trim_batch", Int, "10000", kRestart, kPlain, kOptional,
   "Events deleted per trim statement."},
  // ---- http
  {"http", Map, "", kRestart, kPlain, kOptional,
   "The HTTP server: `/healthz`, `/metrics` (and the WebSocket / SSE endpoints)."},
  {"http.listen", String, "127.0.0.1:8080", kRestart, kPlain, kOptional,
   "HOST:PORT to listen on: `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`; `0.0.0.0:PORT` or "
   "`[::]:PORT` for every interface. Port 0 takes a free port (logged). Failing to bind is fatal "
   "at start-up."},
  {"http.max_connections", Int, "1024", kRestart, kPlain, kOptional,
   "Open connections beyond this are closed as soon as they are accepted (counted in "
   "`pgfanout_http_connections_rejected_total`)."},
  {"http.max_header_size", Size, "8KiB", kRestart, kPlain, kOptional,
   "Largest request line plus headers; a larger request gets 431 and the connection is closed."},
  {"http.max_body_size", Size, "64KiB", kRestart, kPlain, kOptional,
   "Largest request body; a larger one gets 413 and the connection is closed."},
  {"http.read_timeout", Duration, "10s", kRestart, kPlain, kOptional,
   "How long a new connection may take to send its first complete request, and a response to "
   "be written."},
  {"http.idle_timeout", Duration, "60s", kRestart, kPlain, kOptional,
   "How long a kept-alive connection may wait for (and send) its next request."},

  {"http.allowed_origins", StringList, "", kRestart, kPlain, kOptional,
   "WebSocket and SSE requests whose `Origin` header is not in this list get 403 (exact match, "
   "e.g. `https://chat.example.com`). Empty: any origin. Requests without `Origin` (not from a "
   "browser) are always allowed."},
  {"http.static", String, "", kRestart, kPlain, kOptional,
   "A directory whose files are served under `/` (GET and HEAD; `index.html` for a directory). "
   "Paths with `..`, hidden files and symlinks leading out of the directory are refused."},

  // ---- auth
  {"auth", Map, "", kRestart, kPlain, kOptional,
   "How WebSocket / SSE clients prove who they are (see docs/protocol.md)."},
  {"auth.jwt", Map, "", kRestart, kPlain, kOptional,
   "JSON Web Tokens. A token comes from `Authorization: Bearer`, the `Sec-WebSocket-Protocol` "
   "header (`bearer, TOKEN`), or an `auth` message."},
  {"auth.jwt.algorithm", String, "HS256", kRestart, kPlain, kOptional,
   "HS256, RS256 or ES256. Tokens signed with any other algorithm (`none` included) are refused."},
  {"auth.jwt.secret", String, "", kRestart, kSecret, kOptional,
   "HS256 secret, at least 32 bytes. Also signs the tokens that `auth.login` returns."},
  {"auth.jwt.public_key_file", String, "", kRestart, kPlain, kOptional,
   "RS256 / ES256: PEM file of the public key (`BEGIN PUBLIC KEY`)."},
  {"auth.jwt.audience", String, "", kRestart, kPlain, kOptional,
   "When set, a token's `aud` must be (or contain) this value."},
  {"auth.jwt.issuer", String, "", kRestart, kPlain, kOptional,
   "When set, a token's `iss` must equal this value."},
  {"auth.jwt.leeway", Duration, "30s", kRestart, kPlain, kOptional,
   "Clock skew allowed when checking `exp` and `nbf`."},
  {"auth.allow_query_token", Bool, "false", kRestart, kPlain, kOptional,
   "Also accept `?access_token=TOKEN` in the URL (it ends up in access logs; avoid)."},
  {"auth.login", Map, "", kRestart, kPlain, kOptional,
   "SQL login: a `login {username, password}` message runs this statement; one row mints a token "
   "whose claims are the row's columns, signed with `auth.jwt.algorithm` (needs `auth.jwt`): "
   "with `auth.jwt.secret` for HS256, with `auth.login.private_key_file` for RS256 / ES256."},
  {"auth.login.sql", String, "", kRestart, kPlain, kRequired,
   "Statement with $1 = username and $2 = password, e.g. `SELECT user_id, username FROM "
   "chat.login($1, $2)`. No row: `login_failed`."},
  {"auth.login.subject", String, "user_id", kRestart, kPlain, kOptional,
   "The column that becomes the token's `sub`."},
  {"auth.login.ttl", Duration, "12h", kRestart, kPlain, kOptional, "Lifetime of a minted token."},
  {"auth.login.attempts_per_minute", Int, "5", kRestart, kPlain, kOptional,
   "Login attempts allowed per connection per minute; more get `rate_limited`."},
  {"auth.login.private_key_file", String, "", kRestart, kPlain, kOptional,
   "RS256 / ES256: PEM file of the private key that signs minted tokens (`BEGIN PRIVATE KEY`), "
   "the pair of `auth.jwt.public_key_file`. Required for those algorithms; not used with HS256."},

  // ---- topics
  {"topics", List, "", kRestart, kPlain, kOptional,
   "Who may subscribe or publish to which topics. The first entry whose pattern matches decides; "
   "a topic no entry matches is refused."},
  {"topics[].pattern", String, "", kRestart, kPlain, kRequired,
   "Segments separated by `:`; a segment is a literal, `{claim}` (equal to that claim of the "
   "client's token, e.g. `user:{sub}`) or `*` (any one segment)."},
  {"topics[].allow", StringList, "[subscribe]", kRestart, kPlain, kOptional,
   "subscribe and/or publish."},
  {"topics[].anonymous", Bool, "false", kRestart, kPlain, kOptional,
   "Clients without a token may use these topics too."},
  {"topics[].publish_channel", String, "pgfanout_publish", kRestart, kPlain, kOptional,
   "Client `publish` runs `SELECT pg_notify(CHANNEL, {\"topic\", \"data\", \"sender\"})`; a rule "
   "on this channel pushes it back, on every instance. 1 to 63 bytes, no NUL, not starting with "
   "`pgfanout.`."},
  {"topics[].on_subscribe", Map, "", kRestart, kPlain, kOptional,
   "A statement whose rows are sent to a new subscriber as events before live ones."},
  {"topics[].on_subscribe.sql", String, "", kRestart, kPlain, kRequired,
   "E.g. `SELECT * FROM chat.unread($1)`."},
  {"topics[].on_subscribe.params", StringList, "", kRestart, kPlain, kOptional,
   "`$user` (the token's `sub`), `$claim.NAME`, `$topic`, or a bare claim name."},
  {"topics[].on_subscribe.event", String, "message", kRestart, kPlain, kOptional,
   "The `event` name of those rows."},

  // ---- commands
  {"commands", Map, "", kRestart, kPlain, kOptional,
   "Named SQL statements a client may `call`; no other SQL can be run from a client."},
  {"commands.*", Map, "", kRestart, kPlain, kOptional, "One command."},
  {"commands.*.sql", String, "", kRestart, kPlain, kRequired,
   "Statement with $1.. bound to `params` (never interpolated)."},
  {"commands.*.params", StringList, "", kRestart, kPlain, kOptional,
   "`$user` (the token's `sub`), `$claim.NAME`, or an argument name from the call's `args`."},
  {"commands.*.timeout", Duration, "5s", kRestart, kPlain, kOptional,
   "statement_timeout of one call."},
  {"commands.*.anonymous", Bool, "false", kRestart, kPlain, kOptional,
   "Clients without a token may call it (e.g. `register`)."},

  // ---- hub
  {"hub", Map, "", kRestart, kPlain, kOptional, "WebSocket and SSE subscribers."},
  {"hub.max_connections", Int, "10000", kRestart, kPlain, kOptional,
   "WebSocket, SSE and Hippie connections beyond this get 503. At most half of it can be Hippie "
   "long-poll pipes whose client has not polled yet."},
  {"hub.max_message_size", Size, "64KiB", kRestart, kPlain, kOptional,
   "Largest client message; a larger one closes the connection (1009)."},
  {"hub.max_subscriptions", Int, "100", kRestart, kPlain, kOptional,
   "Topics one connection may subscribe to."},
  {"hub.send_queue_size", Size, "1MiB", kRestart, kPlain, kOptional,
   "Bytes queued for one client; a client that falls further behind is closed (1013) and counted "
   "in `pgfanout_subscribers_dropped_total{reason=\"slow\"}`."},
  {"hub.idle_timeout", Duration, "60s", kRestart, kPlain, kOptional,
   "A WebSocket is pinged after half of this without traffic, and closed when nothing came back "
   "within it."},
  {"hub.message_timeout", Duration, "10s", kRestart, kPlain, kOptional,
   "A client message sent in fragments must be complete within this after its first fragment; a "
   "client that takes longer is closed (1008) and counted in "
   "`pgfanout_subscribers_dropped_total{reason=\"message_timeout\"}`."},
  {"hub.sse_heartbeat", Duration, "15s", kRestart, kPlain, kOptional,
   "An idle SSE stream gets a comment line this often."},
  {"hub.hippie_ping", Duration, "20s", kRestart, kPlain, kOptional,
   "Hippie clients get `{\"type\":\"ping\"}` this often. A long-poll pipe expires when not "
   "polled for three of these, or for one when its client never polled it."},
  {"hub.commands_per_second", Int, "20", kRestart, kPlain, kOptional,
   "Commands and publishes per connection per second (bursts of twice that); more get "
   "`rate_limited`."},
  {"hub.pg_connections", Int, "2", kRestart, kPlain, kOptional,
   "PostgreSQL connections for commands, logins, on_subscribe, publish and SSE resume."},
  {"hub.resume_limit", Int, "1000", kRestart, kPlain, kOptional,
   "Most outbox events replayed to one SSE client resuming with Last-Event-ID."},
  {"hub.history_size", Int, "10000", kRestart, kPlain, kOptional,
   "Pushed events from the WAL source kept in memory (over all topics) for clients that resume "
   "with the id of the last one they saw (SSE Last-Event-ID, WebSocket subscribe `after`); an "
   "older id gets `resync`. 0: none kept."},

  // ---- shutdown
  {"shutdown", Map, "", kReload, kPlain, kOptional, "SIGTERM / SIGINT handling."},
  {"shutdown.drain_timeout", Duration, "10s", kReload, kPlain, kOptional,
   "After SIGTERM, how long queued and in-flight actions may take to finish before the daemon "
   "exits anyway. Keep it below systemd's TimeoutStopSec."},
  // ---- redis
  {"redis", Map, "", kRestart, kPlain, kOptional,
   "Redis for the evict, evict_pattern and publish actions: `{url: ...}` for one target, or "
   "named targets `{cache: {url: ...}, sessions: {url: ...}}` that actions pick with `target:`."},
  {"redis.url", String, "", kRestart, kSecret, kOptional,
   "The default target: `redis://[[user]:password@]host[:port][/db]` or "
   "`unix:///path/redis.sock?db=N`. `rediss://` (TLS) is not supported by this build: run a TLS "
   "tunnel (stunnel, spiped, ssh -L) on loopback and point the url at it."},
  {"redis.password", String, "", kRestart, kSecret, kOptional,
   "Password of the default target (AUTH), overriding one in the url."},
  {"redis.queue_limit", Int, "100000", kRestart, kPlain, kOptional,
   "Keys, publishes and patterns a target may hold queued or in flight while Redis is down or "
   "slow. Beyond it new work is dropped, the action fails and the rule's on_gap actions run once "
   "Redis catches up."},
  {"redis.batch_keys", Int, "512", kRestart, kPlain, kOptional,
   "Most keys in one pipelined UNLINK/DEL command."},
  {"redis.scan_count", Int, "500", kRestart, kPlain, kOptional,
   "COUNT of each SCAN step of evict_pattern (one step in flight per target, round-robin)."},
  {"redis.connect_timeout", Duration, "5s", kRestart, kPlain, kOptional,
   "How long connecting and logging in may take."},
  {"redis.command_timeout", Duration, "10s", kRestart, kPlain, kOptional,
   "A connection with commands in flight and no reply for this long is closed and re-opened."},
  {"redis.reconnect_min", Duration, "100ms", kRestart, kPlain, kOptional,
   "First reconnect delay; doubles on each failure, with jitter."},
  {"redis.reconnect_max", Duration, "30s", kRestart, kPlain, kOptional, "Longest reconnect delay."},
  {"redis.*", Map, "", kRestart, kPlain, kOptional,
   "A named target (any other key of `redis:`). A target named `default`, or the only one, "
   "serves actions without `target:`."},
  {"redis.*.url", String, "", kRestart, kSecret, kRequired, "The target's URL, as `redis.url`."},
  {"redis.*.password", String, "", kRestart, kSecret, kOptional,
   "The target's password, overriding one in the url."},

  // ---- webhook (the sender shared by every rule's webhook actions)
  {"webhook", Map, "", kRestart, kPlain, kOptional,
   "The webhook sender: queues, connections and durable delivery (see docs/webhooks.md)."},
  {"webhook.queue_limit", Int, "10000", kRestart, kPlain, kOptional,
   "Webhook deliveries of non-durable rules held in memory (queued, in flight or waiting for a "
   "retry). A delivery beyond it is dropped and counted in "
   "`pgfanout_webhook_dropped_total{reason=\"overflow\"}`; use `durable: true` when that matters."},
  {"webhook.max_connections_per_endpoint", Int, "8", kRestart, kPlain, kOptional,
   "Requests in flight to one endpoint (scheme, host, port) at a time; more wait their turn. "
   "Idle connections are kept alive and reused."},
  {"webhook.connect_timeout", Duration, "5s", kRestart, kPlain, kOptional,
   "How long resolving, connecting and the TLS handshake may take."},
  {"webhook.idle_timeout", Duration, "30s", kRestart, kPlain, kOptional,
   "A kept-alive connection idle for longer is closed instead of reused."},
  {"webhook.group", String, "webhooks", kRestart, kPlain, kOptional,
   "Outbox consumer group whose position the instances share to record each durable event's "
   "deliveries once (pgfanout.outbox_claim)."},
  {"webhook.claim_batch", Int, "200", kRestart, kPlain, kOptional,
   "Outbox events claimed, and due deliveries taken, per query."},
  {"webhook.max_in_flight", Int, "256", kRestart, kPlain, kOptional,
   "Durable deliveries this instance sends at a time."},
  {"webhook.lease", Duration, "1m", kRestart, kPlain, kOptional,
   "A durable delivery taken by an instance is its own for this long; if the instance dies "
   "mid-delivery, another one (or the restarted one) sends it again after the lease. Must be "
   "longer than the webhooks' timeout."},
  {"webhook.poll_interval", Duration, "1s", kRestart, kPlain, kOptional,
   "Look for due durable deliveries (retries, expired leases) at least this often."},
  {"webhook.keep_done", Duration, "1d", kRestart, kPlain, kOptional,
   "Delivered rows stay in pgfanout.deliveries this long (for `pgfanout deliveries list`), then "
   "are deleted. Dead letters are kept until retried or deleted by hand."},

  // ---- wal
  {"wal", Map, "", kRestart, kPlain, kOptional,
   "The logical-replication source (needs wal_level = logical; see docs/wal.md). It runs when this "
   "section is present or a watch entry says `via: wal`."},
  {"wal.slot", String, "pgfanout", kRestart, kPlain, kOptional,
   "The permanent pgoutput slot, created by `pgfanout install`. One per instance (e.g. "
   "`pgfanout_${HOSTNAME}`): a slot is streamed by one connection at a time."},
  {"wal.publication", String, "pgfanout", kRestart, kPlain, kOptional,
   "The publication `pgfanout install` keeps in step with the `via: wal` watch entries."},
  {"wal.status_interval", Duration, "10s", kRestart, kPlain, kOptional,
   "Send the server the confirmed position at least this often (and whenever it asks)."},
  {"wal.max_pending", Int, "10000", kRestart, kPlain, kOptional,
   "Row events whose actions have not completed beyond which reading from the slot pauses."},
  {"wal.retry_delay", Duration, "1s", kRestart, kPlain, kOptional,
   "After an action failed, stream again from the confirmed position after this delay."},
  {"wal.monitor_interval", Duration, "5s", kRestart, kPlain, kOptional,
   "How often the slot's retained WAL, lag and status are read for the metrics and /healthz."},

  // ---- watch
  {"watch", List, "", kReload, kPlain, kOptional,
   "Tables that `pgfanout install` puts notification triggers on (pgfanout.watch)."},
  {"watch[].table", String, "", kReload, kPlain, kRequired, "Table name, optionally schema-qualified."},
  {"watch[].channel", String, "", kReload, kPlain, kOptional, "Channel; default `<table>_changed`. 1 to 63 bytes, no NUL, not starting with `pgfanout.`."},
  {"watch[].columns", StringList, "", kReload, kPlain, kOptional,
   "Columns carried in `new`/`old` (the primary key always is). Default: all."},
  {"watch[].ops", StringList, "[INSERT, UPDATE, DELETE]", kReload, kPlain, kOptional,
   "Operations that notify."},
  {"watch[].changed", StringList, "", kReload, kPlain, kOptional,
   "An UPDATE notifies only when one of these columns changed. Default: any watched column."},
  {"watch[].per_statement", Bool, "false", kReload, kPlain, kOptional,
   "One notification per statement carrying `rows`, split to fit NOTIFY's 8000-byte limit."},
  {"watch[].durable", Bool, "false", kReload, kPlain, kOptional,
   "Also write each event to pgfanout.outbox in the same transaction."},
  {"watch[].via", String, "notify", kRestart, kPlain, kOptional,
   "`notify`: a trigger NOTIFYs each change; `wal`: no trigger, the WAL source decodes the "
   "change from the publication (see docs/wal.md)."},

  // ---- rules
  {"rules", List, "", kReload, kPlain, kRequired, "What to do with notifications."},
  {"rules[].name", String, "", kReload, kPlain, kRequired, "Unique rule name (used in logs and metrics)."},
  {"rules[].channel", String, "", kReload, kPlain, kRequired,
   "NOTIFY channel (case-sensitive, as pg_notify sends it). 1 to 63 bytes, no NUL, not starting "
   "with `pgfanout.` (reserved for the daemon's own heartbeat)."},
  {"rules[].when", Map, "", kReload, kPlain, kOptional,
   "Filter: the rule runs only for notifications that match every given condition."},
  {"rules[].when.op", StringList, "", kReload, kPlain, kOptional,
   "INSERT, UPDATE, DELETE or TRUNCATE (the payload's `op`)."},
  {"rules[].when.table", StringList, "", kReload, kPlain, kOptional, "The payload's `table`."},
  {"rules[].when.schema", StringList, "", kReload, kPlain, kOptional, "The payload's `schema`."},
  {"rules[].when.fields", Map, "", kReload, kPlain, kOptional,
   "Equality on payload fields: `{path: value}` or `{path: [v1, v2]}`; paths as in templates."},
  {"rules[].when.fields.*", Any, "", kReload, kPlain, kOptional, "A value or a list of values."},
  {"rules[].durable", Bool, "false", kReload, kPlain, kOptional,
   "Read this channel's events from pgfanout.outbox (at-least-once); the NOTIFY only wakes the reader."},
  {"rules[].actions", List, "", kReload, kPlain, kRequired, "Actions run for each matching notification."},
  {"rules[].actions[].log", Any, "", kReload, kPlain, kOptional,
   "Log the event: a template string, or `{message: TEMPLATE, level: info}`. "
   "Default message: `{channel} {payload}`."},
  {"rules[].actions[].log.message", Template, "{channel} {payload}", kReload, kPlain, kOptional,
   "The line to log."},
  {"rules[].actions[].log.level", String, "info", kReload, kPlain, kOptional,
   "Level of the line: debug, info, warn or error."},
  {"rules[].actions[].evict", TemplateList, "", kReload, kPlain, kOptional,
   "Delete these Redis keys (UNLINK, pipelined and batched). On an UPDATE carrying `new` and "
   "`old`, a template that depends on the side is rendered for both and both keys go."},
  {"rules[].actions[].evict_pattern", TemplateList, "", kReload, kPlain, kOptional,
   "Delete the keys matching these glob patterns (SCAN MATCH + UNLINK, a bounded step at a "
   "time). Substituted values are glob-escaped."},
  {"rules[].actions[].publish", Map, "", kReload, kPlain, kOptional, "Redis PUBLISH."},
  {"rules[].actions[].publish.channel", Template, "", kReload, kPlain, kRequired,
   "The Redis channel."},
  {"rules[].actions[].publish.message", Template, "{payload}", kReload, kPlain, kOptional,
   "The message."},
  {"rules[].actions[].target", String, "", kReload, kPlain, kOptional,
   "Redis actions: the named `redis:` target. Default: the target named `default`, or the only one."},
  {"rules[].actions[].unlink", Bool, "true", kReload, kPlain, kOptional,
   "evict: UNLINK (frees memory in the background); false: DEL."},
  {"rules[].actions[].again_after", Duration, "", kReload, kPlain, kOptional,
   "evict: delete the same keys again after this delay, for readers that cached the old row "
   "just before the commit (see docs/cache-invalidation.md)."},
  {"rules[].actions[].webhook", Any, "", kReload, kPlain, kOptional,
   "Call a webhook: a URL, or the mapping below. Signed per Standard Webhooks when a secret is "
   "given, retried with backoff; on a durable rule delivered once across instances (see "
   "docs/webhooks.md)."},
  {"rules[].actions[].webhook.url", Template, "", kReload, kPlain, kRequired,
   "http:// or https:// URL. Placeholders only in the path and query, where values are "
   "percent-encoded (`/` too); scheme, host and port are fixed by the config."},
  {"rules[].actions[].webhook.method", String, "POST", kReload, kPlain, kOptional,
   "POST, PUT or PATCH."},
  {"rules[].actions[].webhook.headers", Map, "", kReload, kPlain, kOptional,
   "Extra request headers `{Name: value}` (${ENV} expands; no templates). Content-Type "
   "defaults to application/json."},
  {"rules[].actions[].webhook.headers.*", String, "", kReload, kPlain, kOptional,
   "A header value."},
  {"rules[].actions[].webhook.body", Template, "{payload}", kReload, kPlain, kOptional,
   "The request body."},
  {"rules[].actions[].webhook.secret", String, "", kReload, kSecret, kOptional,
   "Signing secret `whsec_<base64>`; several space-separated secrets sign with each (key "
   "rotation). Without one, requests are unsigned (but still carry webhook-id and "
   "webhook-timestamp)."},
  {"rules[].actions[].webhook.timeout", Duration, "10s", kReload, kPlain, kOptional,
   "Total time for one attempt, connecting included."},
  {"rules[].actions[].webhook.ca_file", String, "", kReload, kPlain, kOptional,
   "PEM file of the CA(s) that sign the endpoint's certificate, instead of the system store. "
   "The host name is always verified."},
  {"rules[].actions[].webhook.retry", Map, "", kReload, kPlain, kOptional, "Retries."},
  {"rules[].actions[].webhook.retry.schedule", StringList, "[0s, 5s, 5m, 30m, 2h, 5h, 10h, 10h]",
   kReload, kPlain, kOptional,
   "Delay before each attempt (the first entry is the first attempt): each retry waits a random "
   "time up to its entry (full jitter). 429 and 503 with Retry-After wait what it says instead. "
   "After the last attempt the delivery becomes a dead letter."},
  {"rules[].actions[].webhook.retry.permanent", StringList, "[400, 401, 403, 404, 422]", kReload,
   kPlain, kOptional,
   "Statuses that are not retried: the delivery becomes a dead letter at once. 410 Gone always "
   "disables the endpoint until the next reload."},
  {"rules[].actions[].push", Map, "", kReload, kPlain, kOptional,
   "Push the event to the WebSocket / SSE subscribers of a topic."},
  {"rules[].actions[].push.topic", Template, "", kReload, kPlain, kRequired,
   "The topic, e.g. `user:{to_user}`; a rendering that is not a valid topic skips the action."},
  {"rules[].actions[].push.event", Template, "message", kReload, kPlain, kOptional,
   "The `event` name clients see."},
  {"rules[].actions[].push.data", Template, "", kReload, kPlain, kOptional,
   "The `data`: a single `{path}` inserts that JSON value; other text becomes a JSON string. "
   "Default: the payload's `new` object, else the payload JSON, else its text."},
  {"rules[].on_reconnect", List, "", kReload, kPlain, kOptional,
   "Actions run after the listener (re)connects, when notifications may have been missed. "
   "Same action keys as `actions`; templates can use only {channel}."},
  {"rules[].on_gap", List, "", kReload, kPlain, kOptional,
   "Actions run when an action of this rule could not be queued (e.g. Redis down too long)."},
};
// clang-format on

bool is_parent_of(std::string_view parent, std::string_view path, std::string_view& child) {
  if (parent.empty()) {
    child = path;
  } else {
    if (path.size() <= parent.size() + 1 || path.substr(0, parent.size()) != parent ||
        path[parent.size()] != '.') {
      return false;
    }
    child = path.substr(parent.size() + 1);
  }
  if (child.ends_with("[]")) child.remove_suffix(2);
  return child.find('.') == std::string_view::npos && child.find("[]") == std::string_view::npos;
}

}  // namespace

std::string_view type_name(KeyType t) {
  switch (t) {
    case String:
      return "string";
    case Template:
      return "template";
    case Int:
      return "integer";
    case Bool:
      return "boolean";
    case Duration:
      return "duration";
    case Size:
      return "size";
    case StringList:
      return "list of strings";
    case TemplateList:
      return "list of templates";
    case Map:
      return "mapping";
    case List:
      return "list";
    case Any:
      return "see description";
  }
  return "?";
}

std::span<const KeySpec> schema() {
  return kKeys;
}

const KeySpec* find_key(std::string_view path) {
  for (const auto& k : kKeys) {
    if (k.path == path) return &k;
  }
  // A wildcard entry ("commands.*.sql") covers "commands.chat.sql".
  for (const auto& k : kKeys) {
    if (k.path.find('*') == std::string_view::npos) continue;
    std::string_view pat = k.path;
    std::string_view p = path;
    bool match = true;
    while (!pat.empty() && match) {
      auto pe = pat.find('.');
      auto segp = pat.substr(0, pe);
      auto qe = p.find('.');
      auto segq = p.substr(0, qe);
      if (segp != "*" && segp != segq) match = false;
      if ((pe == std::string_view::npos) != (qe == std::string_view::npos)) match = false;
      if (pe == std::string_view::npos) break;
      pat = pat.substr(pe + 1);
      p = p.substr(qe + 1);
    }
    if (match) return &k;
  }
  return nullptr;
}

std::vector<std::string_view> child_keys(std::string_view parent) {
  std::vector<std::string_view> out;
  for (const auto& k : kKeys) {
    std::string_view child;
    if (is_parent_of(parent, k.path, child) && child != "*") out.push_back(child);
  }
  return out;
}

bool has_wildcard_child(std::string_view parent) {
  for (const auto& k : kKeys) {
    std::string_view child;
    if (is_parent_of(parent, k.path, child) && child == "*") return true;
  }
  return false;
}

std::string reference_markdown() {
  std::string out =
      "# Configuration reference\n\n"
      "Generated from the key table in `daemon/config/ConfigSchema.cpp` by\n"
      "`pgfanout check --reference`; a test keeps this file equal to that output.\n\n"
      "Values may use `${VAR}` and `${VAR:-default}` (expanded from the environment after the "
      "YAML\n"
      "is parsed; `$${` is a literal `${`). A key marked *secret* also accepts `KEY_file:` naming "
      "a\n"
      "file that holds the value; secrets are never logged. `[]` marks a key of every item of a\n"
      "list, `*` a name of your choice. *Reload* says whether SIGHUP can change the key; a "
      "changed\n"
      "key that cannot is reported and keeps its old value until restart.\n\n"
      "| key | type | default | reload | description |\n"
      "|---|---|---|---|---|\n";
  for (const auto& k : kKeys) {
    out += "| `";
    out += k.path;
    out += "` | ";
    out += type_name(k.type);
    if (k.secret) out += ", secret";
    if (k.required) out += ", required";
    out += " | ";
    if (!k.default_value.empty()) {
      out += '`';
      out += k.default_value;
      out += '`';
    }
    out += " | ";
    out += k.reloadable ? "yes" : "restart";
    out += " | ";
    for (char c : k.description) {
      if (c == '|') {
        out += "\\|";
      } else {
        out += c;
      }
    }
    out += " |\n";
  }
  return out;
}

}  // namespace pgfanout::config
